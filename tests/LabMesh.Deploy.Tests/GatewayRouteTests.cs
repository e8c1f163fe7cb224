namespace LabMesh.Deploy.Tests;

/// <summary>The Gateway API entrance: one Gateway, a GRPCRoute per service.</summary>
public sealed class GatewayRouteTests
{
    private const string AdminHeader = "x-labmesh-service";

    public static TheoryData<string> Overlays => Kustomize.OverlayData;

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task EveryGrpcRoute_AttachesToTheGateway_AndPointsAtAnExistingServicePort(string overlay)
    {
        var rendered = await Kustomize.RenderAsync(overlay);
        var routes = rendered.OfKind("GRPCRoute").ToList();

        Assert.NotEmpty(routes);
        foreach (var route in routes)
        {
            Assert.All(route.Spec.List("parentRefs"), parent =>
                Assert.False(rendered.Find("Gateway", parent.Text("name")!) is null, $"{overlay}: {route} attaches to no rendered Gateway."));
            Assert.NotEmpty(route.Spec.List("parentRefs"));
            foreach (var backend in route.Spec.List("rules").SelectMany(rule => rule.List("backendRefs")))
            {
                Assert.True(backend.Text("kind") is null or "Service", $"{overlay}: {route} sends to a {backend.Text("kind")}, not a Service.");
                var service = rendered.Find("Service", backend.Text("name")!);
                Assert.False(service is null, $"{overlay}: {route} sends to Service {backend.Text("name")}, which is not rendered.");
                var port = service.Spec.List("ports").SingleOrDefault(p => p.Text("port") == backend.Text("port"));
                Assert.False(port is null, $"{overlay}: {route} sends to port {backend.Text("port")}, which {service} lacks.");
                var workload = Assert.Single(rendered.WorkloadsSelectedBy(service.Spec.Strings("selector")));
                Assert.NotNull(WorkloadTests.TargetPort(workload, port));
                Assert.Equal("kubernetes.io/h2c", port.Text("appProtocol")); // the gateway must speak HTTP/2 in clear to it
            }
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task EveryLabMeshGrpcService_IsRoutedByName_ToTheDeploymentThatServesIt(string overlay)
    {
        var rendered = await Kustomize.RenderAsync(overlay);

        Assert.All(Protos.LabMesh, service =>
        {
            var backends = Backends(rendered, service.FullName, header: null);
            Assert.False(backends.Count == 0, $"{overlay}: no GRPCRoute rule matches {service} by service name.");
            Assert.All(backends, backend => Assert.Equal(rendered.DeploymentOf(Code.Owner(service)), backend));
        });
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task PerProcessServices_AreRouted_ToTheServiceTheHeaderNames_AndByDefaultToOne(string overlay)
    {
        var rendered = await Kustomize.RenderAsync(overlay);
        var deployments = Repository.DeployableProjects.Select(rendered.DeploymentOf).ToList();

        Assert.NotEmpty(Protos.PerProcess);
        foreach (var service in Protos.PerProcess)
        {
            foreach (var project in Repository.DeployableProjects)
            {
                var backends = Backends(rendered, service.FullName, Repository.ShortName(project));
                Assert.False(backends.Count == 0, $"{overlay}: {service} with {AdminHeader}: {Repository.ShortName(project)} is not routed.");
                Assert.All(backends, backend => Assert.Equal(rendered.DeploymentOf(project), backend));
            }

            var fallback = Assert.Single(Backends(rendered, service.FullName, header: null).Distinct());
            Assert.Contains(fallback, deployments);
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Reflection_WithNoHeader_AsksForTheWholeApi_AndNamingAProcessDropsThatAsk(string overlay)
    {
        var rendered = await Kustomize.RenderAsync(overlay);
        var rules = rendered.OfKind("GRPCRoute").SelectMany(route => route.Spec.List("rules")).ToList();
        string[] reflection = ["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"];

        foreach (var service in reflection)
        {
            // Without the header: x-labmesh-reflection: api is set (GrpcReflectionDescriptors answers for every contract).
            var unnamed = Assert.Single(rules, rule => MatchesService(rule, service, header: null));
            Assert.Contains(HeaderFilters(unnamed, "set"), h => h.Text("name") == ReflectionScopeHeader && h.Text("value") == "api");

            // Naming a process: its own services; a caller's x-labmesh-reflection is removed, so it cannot ask for more.
            foreach (var project in Repository.DeployableProjects)
            {
                var named = Assert.Single(rules, rule => MatchesService(rule, service, Repository.ShortName(project)));
                Assert.Contains(ReflectionScopeHeader, HeaderFilters(named, "remove").OfType<string>());
                Assert.DoesNotContain(HeaderFilters(named, "set"), h => h.Text("name") == ReflectionScopeHeader);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Gateway_HasAClass_AndListenersThatAdmitGrpcRoutes(string overlay)
    {
        var rendered = await Kustomize.RenderAsync(overlay);
        var gateway = Assert.Single(rendered.OfKind("Gateway"));

        Assert.False(string.IsNullOrEmpty(gateway.Spec.Text("gatewayClassName")));
        var listeners = gateway.Spec.List("listeners");
        Assert.NotEmpty(listeners);
        Assert.All(listeners, listener =>
        {
            Assert.Contains(listener.Text("protocol"), new[] { "HTTP", "HTTPS" });
            Assert.Contains("GRPCRoute", listener.List("allowedRoutes", "kinds").Select(k => k.Text("kind")));
            if (listener.Text("protocol") == "HTTPS")
            {
                Assert.NotEmpty(listener.List("tls", "certificateRefs"));
            }
        });
    }

    [Fact]
    public async Task ProductionGateway_TerminatesTls()
    {
        var rendered = await Kustomize.RenderAsync("k8s/overlays/production");

        var gateway = Assert.Single(rendered.OfKind("Gateway"));

        Assert.All(gateway.Spec.List("listeners"), listener => Assert.Equal("HTTPS", listener.Text("protocol")));
    }

    private const string ReflectionScopeHeader = "x-labmesh-reflection";

    private static bool MatchesService(object? rule, string fullName, string? header) =>
        rule.List("matches").Any(match =>
        {
            var headers = match.List("headers").Select(h => (Name: h.Text("name"), Value: h.Text("value"))).ToList();
            return match.Text("method", "service") == fullName
                && (header is null ? headers.Count == 0 : headers.Count == 1 && headers[0] == (AdminHeader, header));
        });

    /// <summary>The entries of a rule's RequestHeaderModifier filters under <paramref name="kind"/> (set, add or remove).</summary>
    private static List<object?> HeaderFilters(object? rule, string kind) =>
        [.. rule.List("filters").Where(f => f.Text("type") == "RequestHeaderModifier").SelectMany(f => f.List("requestHeaderModifier", kind))];

    /// <summary>
    /// The workloads behind the rules that match calls to <paramref name="fullName"/>: with the admin header set to
    /// <paramref name="header"/>, or, when it is null, the rules that need no header. A rule that also restricts
    /// the method does not count: it would not route the whole service.
    /// </summary>
    private static List<K8sObject> Backends(Rendered rendered, string fullName, string? header)
    {
        var backends = new List<K8sObject>();
        foreach (var rule in rendered.OfKind("GRPCRoute").SelectMany(route => route.Spec.List("rules")))
        {
            var matches = rule.List("matches").Any(match =>
            {
                var headers = match.List("headers").Select(h => (Name: h.Text("name"), Value: h.Text("value"), Type: h.Text("type") ?? "Exact")).ToList();
                var headerOk = header is null
                    ? headers.Count == 0
                    : headers.Count == 1 && headers[0] == (AdminHeader, header, "Exact");
                return (match.Text("method", "type") ?? "Exact") == "Exact"
                    && match.Text("method", "service") == fullName
                    && match.Text("method", "method") is null
                    && headerOk;
            });
            if (!matches)
            {
                continue;
            }

            foreach (var backend in rule.List("backendRefs"))
            {
                var service = rendered.Find("Service", backend.Text("name")!)!;
                backends.AddRange(rendered.WorkloadsSelectedBy(service.Spec.Strings("selector")));
            }
        }

        return backends;
    }
}
