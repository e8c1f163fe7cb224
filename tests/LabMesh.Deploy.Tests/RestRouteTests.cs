using System.Text.RegularExpressions;

namespace LabMesh.Deploy.Tests;

/// <summary>
/// REST (issue 19): every path of a <c>google.api.http</c> option in protos/ reaches the service that owns it, through
/// the Kubernetes HTTPRoutes (k8s/base/rest-routes.yaml) and through nginx's REST routes
/// (deploy/compose/nginx/rest-routes.conf, which deploy/local's gateway includes).
/// </summary>
public sealed partial class RestRouteTests
{
    private const string NginxRoutes = "deploy/compose/nginx/rest-routes.conf";

    public static TheoryData<string> Overlays => Kustomize.OverlayData;

    /// <summary>Every HTTP path of the protos (variables as <c>x</c>) and the project that serves it.</summary>
    public static TheoryData<string, string> Paths()
    {
        var data = new TheoryData<string, string>();
        foreach (var service in Protos.LabMesh)
        {
            var text = File.ReadAllText(Repository.PathOf(service.File));
            foreach (Match rule in HttpRule().Matches(text))
            {
                data.Add(Variable().Replace(rule.Groups[1].Value, "x"), Code.Owner(service));
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
    public void NginxRestRoutes_SendEveryPath_ToItsServicesRestUpstream(string path, string project)
    {
        var locations = Nginx.Load(NginxRoutes, _ => null).Where(d => d.Name == "location").ToList();
        Assert.All(locations, l => Assert.True(l.Args.Count == 1, $"{l}: only prefix locations are expected."));

        var location = locations.Where(l => path.StartsWith(l.Args[0], StringComparison.Ordinal)).MaxBy(l => l.Args[0].Length);

        Assert.False(location is null, $"No location of {NginxRoutes} matches {path}.");
        Assert.Equal($"http://{Repository.ShortName(project)}_rest", location.Child("proxy_pass")?.Args.Single());
    }

    [Fact]
    public void NginxRestRoutes_AnswerNoOtherPath()
    {
        var locations = Nginx.Load(NginxRoutes, _ => null).Where(d => d.Name == "location").ToList();

        var other = locations.Where(l => "/labmesh.requisition.v1.RequisitionService/GetRequisition".StartsWith(l.Args[0], StringComparison.Ordinal)).MaxBy(l => l.Args[0].Length)!;

        Assert.Equal(["404"], other.Child("return")?.Args);
    }

    [Fact]
    public void DeployLocal_GatewayIncludesTheRestRoutes_WithAnUpstreamPerService()
    {
        var lib = Repository.Read("deploy/local/lib.sh");

        Assert.Contains("include $LABMESH_ROOT/" + NginxRoutes, lib, StringComparison.Ordinal);
        Assert.Contains("upstream ${service}_rest {", lib, StringComparison.Ordinal);
        Assert.Contains("--LabMesh:Rest:Url", lib, StringComparison.Ordinal);
    }

    [Fact]
    public void ComposeGateway_ServesTheRestRoutes_OnAPublishedPort_ToEachServicesRestListener()
    {
        var gateway = Compose.ServiceWithImage("nginx");
        var config = gateway.Volumes.Where(v => v.Target.StartsWith("/etc/nginx/conf.d/", StringComparison.Ordinal))
            .Select(v => Repository.Relative(Repository.PathOf(v.Source))).Single();
        var http = Nginx.Load(config, gateway.HostPathOf);

        var rest = Assert.Single(http, d => d.Name == "server" && d.Children("location").Any(l => l.Args[0] == "/v2/partner/"));
        Assert.Null(rest.Child("http2"));
        var listen = Assert.Single(rest.Children("listen")).Args[0];
        Assert.Contains(gateway.PublishedPorts, port => port.Target == listen);
        foreach (var project in Repository.DeployableProjects)
        {
            var service = Compose.ServiceOf(project);
            Assert.True(service.Environment.TryGetValue("LabMesh__Rest__Url", out var url), $"{service} has no REST listener (LabMesh__Rest__Url).");
            var port = new Uri(url.Replace("+", "localhost", StringComparison.Ordinal)).Port;
            var upstream = Assert.Single(http, d => d.Name == "upstream" && d.Args[0] == $"{Repository.ShortName(project)}_rest");
            Assert.Equal($"{service.Name}:{port}", Assert.Single(upstream.Children("server")).Args[0]);
        }
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
