using System.Text.Json;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Template;

namespace LabMesh.Deploy.Tests;

/// <summary>One YARP route of the gateway's configuration.</summary>
internal sealed record GatewayRoute(string Id, string Cluster, string Path, int Order, IReadOnlyList<(string Name, string[] Values, string Mode)> Headers,
    IReadOnlyList<IReadOnlyDictionary<string, string>> Transforms)
{
    public override string ToString() => $"route {Id} ({Path} -> {Cluster})";
}

/// <summary>
/// services/LabMesh.Gateway/appsettings.json: YARP's routes and clusters (section ReverseProxy), the listeners and
/// the shutdown timeout, and which route a request takes, matched as ASP.NET Core's routing matches YARP's routes.
/// </summary>
internal static class GatewayConfig
{
    public const string File = "services/LabMesh.Gateway/appsettings.json";

    public const string ServiceHeader = "x-labmesh-service";

    private static readonly Lazy<JsonElement> Document = new(() =>
        JsonDocument.Parse(Repository.Read(File), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true }).RootElement);

    public static JsonElement Root => Document.Value;

    public static IReadOnlyList<GatewayRoute> Routes { get; } = LoadRoutes();

    /// <summary>A cluster's settings by id (the destinations are each deployment's: compose, deploy/local).</summary>
    public static JsonElement Cluster(string id) =>
        Root.GetProperty("ReverseProxy").GetProperty("Clusters").TryGetProperty(id, out var cluster) ? cluster
            : throw new Xunit.Sdk.XunitException($"{File} has no cluster {id}.");

    public static IEnumerable<string> ClusterIds => Root.GetProperty("ReverseProxy").GetProperty("Clusters").EnumerateObject().Select(c => c.Name);

    /// <summary>The gRPC cluster of a service project (requisition for LabMesh.Requisition) and its REST cluster.</summary>
    public static string GrpcCluster(string project) => Repository.ShortName(project);

    public static string RestCluster(string project) => Repository.ShortName(project) + "-rest";

    /// <summary>
    /// The route a request on <paramref name="path"/> with <paramref name="headers"/> takes, or null when none does (the
    /// gateway's NoRoute answers): of the routes whose path and headers match, the lowest Order, then the one with more
    /// header matches (YARP ranks those first). Two candidates left is a configuration error.
    /// </summary>
    public static GatewayRoute? Match(string path, IReadOnlyDictionary<string, string>? headers = null)
    {
        headers ??= new Dictionary<string, string>();
        var matching = Routes.Where(r => PathMatches(r.Path, path) && r.Headers.All(h => HeaderMatches(h, headers))).ToList();
        if (matching.Count == 0)
        {
            return null;
        }

        var best = matching.GroupBy(r => (r.Order, -r.Headers.Count)).OrderBy(g => g.Key.Order).ThenBy(g => g.Key.Item2).First().ToList();
        return best.Count == 1 ? best[0] : throw new Xunit.Sdk.XunitException($"{path} matches {string.Join(", ", best)} alike.");
    }

    /// <summary>The value a route's transforms set a request header to, or null; and whether they remove it.</summary>
    public static string? SetsHeader(GatewayRoute route, string name) =>
        route.Transforms.Where(t => t.TryGetValue("RequestHeader", out var h) && h.Equals(name, StringComparison.OrdinalIgnoreCase) && t.ContainsKey("Set"))
            .Select(t => t["Set"]).SingleOrDefault();

    public static bool RemovesHeader(GatewayRoute route, string name) =>
        route.Transforms.Any(t => t.TryGetValue("RequestHeaderRemove", out var h) && h.Equals(name, StringComparison.OrdinalIgnoreCase));

    private static bool PathMatches(string template, string path) =>
        new TemplateMatcher(TemplateParser.Parse(template), new RouteValueDictionary()).TryMatch(path, new RouteValueDictionary());

    private static bool HeaderMatches((string Name, string[] Values, string Mode) header, IReadOnlyDictionary<string, string> headers)
    {
        var value = headers.FirstOrDefault(h => h.Key.Equals(header.Name, StringComparison.OrdinalIgnoreCase)).Value;
        return header.Mode switch
        {
            "ExactHeader" => value is not null && header.Values.Any(v => v.Equals(value, StringComparison.OrdinalIgnoreCase)),
            "Exists" => value is not null,
            "NotExists" => value is null,
            _ => throw new Xunit.Sdk.XunitException($"{File}: header match mode {header.Mode} is not one these tests read."),
        };
    }

    private static List<GatewayRoute> LoadRoutes() =>
    [
        .. Root.GetProperty("ReverseProxy").GetProperty(nameof(Routes)).EnumerateObject().Select(route =>
        {
            var body = route.Value;
            var match = body.GetProperty("Match");
            var headers = match.TryGetProperty("Headers", out var h)
                ? h.EnumerateArray().Select(x => (x.GetProperty("Name").GetString()!, x.GetProperty("Values").EnumerateArray().Select(v => v.GetString()!).ToArray(),
                    x.TryGetProperty("Mode", out var mode) ? mode.GetString()! : "ExactHeader")).ToList()
                : [];
            var transforms = body.TryGetProperty("Transforms", out var t)
                ? t.EnumerateArray().Select(x => (IReadOnlyDictionary<string, string>)x.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!)).ToList()
                : [];
            return new GatewayRoute(route.Name, body.GetProperty("ClusterId").GetString()!, match.GetProperty("Path").GetString()!,
                body.TryGetProperty("Order", out var order) ? order.GetInt32() : 0, headers, transforms);
        }),
    ];
}
