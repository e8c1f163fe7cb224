namespace LabMesh.ResultsInterpretation.Domain;

/// <summary>How results are read. Bound from configuration section <c>LabMesh:Results</c>.</summary>
/// <remarks>
/// <code>
/// "LabMesh": { "Results": {
///   "UseDefaultCriticalLimits": true,
///   "CriticalLimits": [ { "Analyte": "potassium", "Unit": "mmol/L", "Low": 3.0, "High": 6.0, "Source": "our lab" } ] } }
/// </code>
/// or as environment variables: <c>LabMesh__Results__CriticalLimits__0__Analyte=potassium</c>.
/// </remarks>
public sealed class ResultsOptions
{
    public const string SectionName = "LabMesh:Results";

    /// <summary>Start from <see cref="CriticalLimitCatalog.Defaults"/>; false uses only <see cref="CriticalLimits"/>. Default true.</summary>
    public bool UseDefaultCriticalLimits { get; set; } = true;

    /// <summary>
    /// Entries to add, or to put in place of the default entry of the same analyte. An entry that
    /// replaces a default and lists no alias keeps the default's aliases.
    /// </summary>
    public List<CriticalLimitOptions> CriticalLimits { get; set; } = [];
}

/// <summary>One configured critical-limit entry (see <see cref="CriticalLimitEntry"/>).</summary>
public sealed class CriticalLimitOptions
{
    /// <summary>The marker slug it applies to, e.g. <c>potassium</c>. Required.</summary>
    public string Analyte { get; set; } = "";

    /// <summary>Other slugs and marker names of the same analyte, e.g. <c>k</c>, <c>potassium, serum</c>.</summary>
    public List<string> Aliases { get; set; } = [];

    /// <summary>The unit of <see cref="Low"/> and <see cref="High"/>; "" for a ratio such as the INR.</summary>
    public string Unit { get; set; } = "";

    /// <summary>Values at or below it are critical.</summary>
    public double? Low { get; set; }

    /// <summary>Values at or above it are critical.</summary>
    public double? High { get; set; }

    /// <summary>Where the figures come from. Default "configuration".</summary>
    public string Source { get; set; } = "";
}
