namespace LabMesh.Bench;

/// <summary>One scenario: a measured side and a baseline, run back to back.</summary>
/// <param name="Name">What <c>--scenario</c> selects it by.</param>
/// <param name="Description">One line for the console.</param>
/// <param name="Ratio">What the ratio divides, e.g. <c>LabMesh/bare</c>.</param>
/// <param name="HasTarget">Whether DESIGN.md's 0.80-of-bare-Kestrel target applies to the ratio.</param>
/// <param name="OwnServers">Whether it starts servers of its own (<see cref="OwnServerScenario"/>) instead of the two shared ones.</param>
/// <param name="UsesH2Load">Whether it needs h2load.</param>
internal sealed record ScenarioInfo(string Name, string Description, string Ratio, bool HasTarget, bool OwnServers, bool UsesH2Load)
{
    /// <summary>Every scenario of the bench, in the order a run measures them.</summary>
    public static readonly ScenarioInfo[] All =
    [
        new("h2load-unary", "h2load -> server, unary (server side only, neutral client)", "LabMesh/bare", true, false, true),
        new("h2load-stream", "h2load -> server, server-streaming (server side only, neutral client)", "LabMesh/bare", true, false, true),
        new("e2e-unary", "unary, client + server end to end", "LabMesh/bare", true, false, false),
        new("e2e-stream", "server-streaming, client + server end to end", "LabMesh/bare", true, false, false),
        new("client-unary", "unary, both clients -> the bare server (client side only)", "LabMesh/bare", true, false, false),
        new("server-unary", "unary, HttpClient -> both servers (server side only, .NET client)", "LabMesh/bare", true, false, false),
        new("gzip-unary", "unary, LabMesh end to end, gzip both ways against no compression (text-like payload)", "gzip/identity", false, true, false),
        new("gzip-stream", "server-streaming, LabMesh end to end, gzip both ways against no compression", "gzip/identity", false, true, false),
        new("large-unary", "unary with large request and response, client + server end to end", "LabMesh/bare", true, true, false),
        new("many-streams", "server-streaming, many calls open at once over one connection; p50/p99 per message", "LabMesh/bare", true, true, false),
        new("grpcio-unary", "h2load -> LabMesh server vs Python grpcio server, unary", "LabMesh/grpcio", false, true, true),
        new("grpcio-stream", "h2load -> LabMesh server vs Python grpcio server, server-streaming", "LabMesh/grpcio", false, true, true),
    ];

    /// <summary>Words that select every scenario whose name contains them.</summary>
    public static readonly string[] Groups = ["h2load", "e2e", "unary", "stream", "gzip", "grpcio"];

    public static IEnumerable<string> Names => All.Select(s => s.Name);

    public static ScenarioInfo Get(string name) =>
        All.FirstOrDefault(s => s.Name == name) ?? throw new ArgumentException($"Unknown scenario '{name}'.");
}
