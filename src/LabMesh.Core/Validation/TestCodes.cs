namespace LabMesh.Core.Validation;

/// <summary>What a test code may look like: "LIPID_PANEL", "CBC", "HBA1C" (seed 000's <c>code</c>).</summary>
public static class TestCodes
{
    public const string Rule = "is required: 1 to 64 of A-Z, 0-9, '_', '-', '.'.";

    public static bool IsValid(string code) =>
        code.Length is > 0 and <= 64 && code.All(c => c is (>= 'A' and <= 'Z') or (>= '0' and <= '9') or '_' or '-' or '.');
}
