namespace LabMesh.Bench;

/// <summary>One scenario: the LabMesh side and the bare grpc-dotnet side, run back to back.</summary>
/// <param name="Name">What <c>--scenario</c> selects it by.</param>
/// <param name="Description">One line for the console.</param>
/// <param name="UsesH2Load">Whether it needs h2load.</param>
internal sealed record ScenarioInfo(string Name, string Description, bool UsesH2Load)
{
    /// <summary>Every scenario of the bench, in the order a run measures them.</summary>
    public static readonly ScenarioInfo[] All =
    [
        new("status-client", "(a) GetRequisitionStatus, LabMesh's channel (MeshChannels) -> all-in-one host vs bare grpc-dotnet method", false),
        new("status-h2load", "(b) GetRequisitionStatus, h2load -> all-in-one host vs bare grpc-dotnet server (server side only, neutral client)", true),
    ];

    public static IEnumerable<string> Names => All.Select(s => s.Name);

    public static ScenarioInfo Get(string name) =>
        All.FirstOrDefault(s => s.Name == name) ?? throw new ArgumentException($"Unknown scenario '{name}'.");
}
