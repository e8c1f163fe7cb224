using System.Text.RegularExpressions;

namespace LabMesh.Deploy.Tests;

/// <summary>
/// REST (issue 19): every path of a <c>google.api.http</c> option in protos/ reaches the service that owns it, through
/// the Kubernetes HTTPRoutes (k8s/base/rest-routes.yaml) and through the REST routes of deploy/local's and compose's
/// gateway (services/LabMesh.Gateway/appsettings.json).
/// </summary>
public sealed partial class RestRouteTests
{
    public static TheoryData<string> Overlays => Kustomize.OverlayData;

    /// <summary>Every HTTP path of the protos (variables as <c>x</c>) and the project that serves it.</summary>
    public static TheoryData<string, string> Paths()
    {
        // One case per path: several verbs share a path (GET and POST /v1/requisitions), and xunit skips a repeated case.
        var data = new TheoryData<string, string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var service in Protos.LabMesh)
        {
            var text = File.ReadAllText(Repository.PathOf(service.File));
            foreach (Match rule in HttpRule().Matches(text))
            {
                var path = Variable().Replace(rule.Groups[1].Value, "x");
                if (seen.Add(path))
                {
                    data.Add(path, Code.Owner(service));
                }
            }
        }

        return data;
    }

    [Fact]
    public void Protos_MapSeed000sPartnerPaths()
    {
        var paths = Paths().Select(row => (string)row[0]).ToList();

        Assert.Contains("/v2/partner/service-request/x/status", paths);
        Assert.Contains("/v2/partner/requisition/x", paths);
        Assert.True(paths.Count >= 30, $"Only {paths.Count} REST paths were read from protos/.");
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public async Task HttpRoutes_SendEveryPath_ToTheDeploymentThatServesIt_OnItsH2cPort(string path, string project)
    {
        foreach (var overlay in Kustomize.Overlays)
        {
            var rendered = await Kustomize.RenderAsync(overlay);
            var candidates = rendered.OfKind("HTTPRoute")
                .SelectMany(route => route.Spec.List("rules").Select(rule => (Route: route, Rule: rule)))
                .SelectMany(r => r.Rule.List("matches").Select(match => (r.Route, r.Rule, Score: Score(path, match.Text("path", "type"), match.Text("path", "value")))))
                .Where(r => r.Score > 0)
                .ToList();
            Assert.True(candidates.Count > 0, $"{overlay}: no HTTPRoute matches {path}.");
            var (route, rule, _) = candidates.MaxBy(c => c.Score);
            Assert.All(route.Spec.List("parentRefs"), parent => Assert.NotNull(rendered.Find("Gateway", parent.Text("name")!)));
            var backend = Assert.Single(rule.List("backendRefs"));
            var service = rendered.Find("Service", backend.Text("name")!);
            Assert.False(service is null, $"{overlay}: {route} sends {path} to Service {backend.Text("name")}, which is not rendered.");
            var port = service.Spec.List("ports").Single(p => p.Text("port") == backend.Text("port"));
            Assert.Equal("kubernetes.io/h2c", port.Text("appProtocol"));
            Assert.Equal(rendered.DeploymentOf(project), Assert.Single(rendered.WorkloadsSelectedBy(service.Spec.Strings("selector"))));
            var gateway = Assert.Single(rendered.OfKind("Gateway"));
            Assert.All(gateway.Spec.List("listeners"), listener =>
                Assert.Contains("HTTPRoute", listener.List("allowedRoutes", "kinds").Select(k => k.Text("kind"))));
        }
    }

    [Theory]
    [MemberData(nameof(Paths))]
    public void GatewayRestRoutes_SendEveryPath_ToItsServicesRestCluster(string path, string project)
    {
        var route = GatewayConfig.Match(path);

        Assert.False(route is null, $"No route of {GatewayConfig.File} takes {path}.");
        Assert.Equal(GatewayConfig.RestCluster(project), route.Cluster);
    }

    [Fact]
    public void GatewayRestRoutes_TakeNoOtherPath()
    {
        Assert.Null(GatewayConfig.Match("/v1/nothing-here"));
        Assert.Null(GatewayConfig.Match("/v2/other/thing"));
        // A gRPC path is no REST route's.
        Assert.DoesNotContain("-rest", GatewayConfig.Match("/labmesh.requisition.v1.RequisitionService/GetRequisition")!.Cluster, StringComparison.Ordinal);
    }

    [Fact]
    public void GatewayRestCluster_OfNotifications_KeepsTheEventStreamOpenAnHour()
    {
        // GET /v1/notifications/events:subscribe stays open and may be quiet for long.
        var request = GatewayConfig.Cluster(GatewayConfig.RestCluster("LabMesh.Notification")).GetProperty("HttpRequest");

        Assert.True(TimeSpan.Parse(request.GetProperty("ActivityTimeout").GetString()!, System.Globalization.CultureInfo.InvariantCulture) >= TimeSpan.FromHours(1));
    }

    /// <summary>How specifically a Gateway API path match takes <paramref name="path"/>: 0 not at all; an exact match beats any prefix.</summary>
    private static int Score(string path, string? type, string? value) => (type ?? "PathPrefix", value ?? "/") switch
    {
        ("Exact", var exact) => path == exact ? int.MaxValue : 0,
        ("PathPrefix", var prefix) => path == prefix || path.StartsWith(prefix.TrimEnd('/') + "/", StringComparison.Ordinal) ? prefix.Length : 0,
        _ => 0,
    };

    [GeneratedRegex(@"^\s*(?:get|put|post|delete|patch):\s*""([^""]+)""", RegexOptions.Multiline)]
    private static partial Regex HttpRule();

    [GeneratedRegex(@"\{[^}]*\}")]
    private static partial Regex Variable();
}
