namespace LabMesh.Deploy.Tests;

/// <summary>The compose gateway: nginx routing gRPC calls by service name (deploy/compose/nginx/).</summary>
public sealed class ComposeGatewayTests
{
    private const string AdminHeader = "$http_x_labmesh_service";

    public static TheoryData<string> LabMeshServices => new(Protos.LabMesh.Select(s => s.FullName));

    public static TheoryData<string> PerProcess => new(Protos.PerProcess.Select(s => s.FullName));

    [Fact]
    public void Protos_DefineTheServicesTheGatewayMustRoute()
    {
        // The routing tests below are only as good as this list.
        Assert.Contains("labmesh.requisition.v1.RequisitionService", Protos.LabMesh.Select(s => s.FullName));
        Assert.Contains("labmesh.servicerequest.v1.ServiceRequestService", Protos.LabMesh.Select(s => s.FullName));
        Assert.Contains("labmesh.results.v1.ResultsInterpretationService", Protos.LabMesh.Select(s => s.FullName));
        Assert.Contains("grpc.health.v1.Health", Protos.PerProcess.Select(s => s.FullName));
        Assert.Contains("grpc.reflection.v1.ServerReflection", Protos.PerProcess.Select(s => s.FullName));
        Assert.Contains("labmesh.audit.v1.AuditService", Protos.PerProcess.Select(s => s.FullName));
    }

    [Theory]
    [MemberData(nameof(LabMeshServices))]
    public void Gateway_RoutesEachLabMeshService_ToTheComposeServiceThatServesIt(string fullName)
    {
        var service = Protos.LabMesh.Single(s => s.FullName == fullName);
        var owner = Code.Owner(service);

        var target = GrpcPass(service.PathOf("AnyMethod"));

        Assert.Equal(Upstream(owner), Upstreams()[target]);
    }

    [Theory]
    [MemberData(nameof(PerProcess))]
    public void Gateway_RoutesPerProcessServices_ToTheServiceTheHeaderNames(string fullName)
    {
        var service = Protos.PerProcess.Single(s => s.FullName == fullName);

        var target = GrpcPass(service.PathOf("AnyMethod"));

        Assert.StartsWith("$", target, StringComparison.Ordinal);
        var map = Http().Children("map").SingleOrDefault(m => m.Args.Count == 2 && m.Args[1] == target);
        Assert.False(map is null, $"{target} is not set by a map.");
        Assert.Equal(AdminHeader, map.Args[0]);
        var entries = map.Block!.ToDictionary(d => d.Name, d => d.Args.Single(), StringComparer.Ordinal);
        var upstreams = Upstreams();
        foreach (var project in Repository.DeployableProjects)
        {
            var name = Repository.ShortName(project);
            Assert.True(entries.TryGetValue(name, out var upstream), $"x-labmesh-service: {name} does not reach {project}.");
            Assert.Equal(Upstream(project), upstreams[upstream]);
        }

        Assert.Contains(upstreams[entries["default"]], Repository.DeployableProjects.Select(Upstream));
    }

    [Theory]
    [InlineData("grpc.reflection.v1.ServerReflection")]
    [InlineData("grpc.reflection.v1alpha.ServerReflection")]
    public void Reflection_WithNoHeader_AsksForTheWholeApi_AndNamingAProcessDropsThatAsk(string fullName)
    {
        var location = Match($"/{fullName}/ServerReflectionInfo");

        // x-labmesh-reflection is set from a map on the same header that picks the process: "api" by default,
        // empty (nginx then sends no such header, whatever the caller sent) when it names a service.
        var set = Assert.Single(location.Children("grpc_set_header"), d => d.Args[0].Equals("x-labmesh-reflection", StringComparison.OrdinalIgnoreCase));
        var variable = set.Args[1];
        var map = Http().Children("map").SingleOrDefault(m => m.Args.Count == 2 && m.Args[1] == variable);
        Assert.False(map is null, $"{variable} is not set by a map.");
        Assert.Equal(AdminHeader, map.Args[0]);
        var entries = map.Block!.ToDictionary(d => d.Name, d => d.Args.Single(), StringComparer.Ordinal);
        Assert.Equal("api", entries["default"]);
        Assert.All(Repository.DeployableProjects, project => Assert.Equal("", entries[Repository.ShortName(project)]));
    }

    [Fact]
    public void Gateway_MainConfiguration_BoundsAStop_HasConnectionsForABurst_AndIncludesTheRoutes()
    {
        var gateway = Compose.ServiceWithImage("nginx");
        var main = gateway.HostPathOf("/etc/nginx/nginx.conf");
        Assert.False(main is null, "the gateway's /etc/nginx/nginx.conf is not mounted from the repository.");
        var directives = Nginx.Load(main, gateway.HostPathOf);

        // Open Subscribe streams are closed within Docker's stop grace period (10 s by default), by nginx itself.
        var shutdown = Assert.Single(directives, d => d.Name == "worker_shutdown_timeout").Args.Single();
        Assert.Matches("^[1-9]s$", shutdown);
        var connections = int.Parse(Assert.Single(directives, d => d.Name == "events").Child("worker_connections")!.Args.Single(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(connections >= 8192, $"worker_connections {connections}");
        Assert.True(int.Parse(Assert.Single(directives, d => d.Name == "worker_rlimit_nofile").Args.Single(), System.Globalization.CultureInfo.InvariantCulture) >= 2 * connections);

        // The conf.d file with the servers (gRPC on 8080, REST on 8081) and their routes is what the main configuration includes.
        var http = Assert.Single(directives, d => d.Name == "http");
        Assert.Equal(["8080", "8081"], http.Children("server").Select(s => s.Child("listen")!.Args[0]).Order(StringComparer.Ordinal));
        Assert.NotEmpty(http.Children("upstream"));
    }

    [Fact]
    public void Gateway_AnswersNoOtherPath()
    {
        var location = Match("/grpc.testing.TestService/UnaryCall");

        Assert.Null(location.Child("grpc_pass"));
        Assert.Equal(["404"], location.Child("return")?.Args);
    }

    [Fact]
    public void Gateway_ListensH2c_OnThePortComposePublishes()
    {
        var gateway = Compose.ServiceWithImage("nginx");
        var server = Server();

        var listen = Assert.Single(server.Children("listen")).Args[0];
        Assert.Equal(["on"], server.Child("http2")?.Args);
        Assert.Contains(gateway.PublishedPorts, port => port.Target == listen);
        Assert.True(Repository.Exists(ConfigFile), $"{ConfigFile} is not in the repository.");
        Assert.Contains(gateway.Volumes, v => v.Target.StartsWith("/etc/nginx/conf.d/", StringComparison.Ordinal) && v.Target.EndsWith(".conf", StringComparison.Ordinal));
    }

    [Fact]
    public void Gateway_StartsAfterTheServices_AndRunsReadOnly()
    {
        var gateway = Compose.ServiceWithImage("nginx");

        Assert.All(Repository.DeployableProjects, project => Assert.Contains(Compose.ServiceOf(project).Name, gateway.DependsOn.Keys));
        Assert.True(gateway.ReadOnly);
        Assert.All(gateway.Volumes, v => Assert.True(v.ReadOnly, $"{v.Target} is mounted writable."));
    }

    /// <summary>The host file the gateway's conf.d/*.conf is mounted from.</summary>
    private static string ConfigFile =>
        Compose.ServiceWithImage("nginx").Volumes
            .Where(v => v.Target.StartsWith("/etc/nginx/conf.d/", StringComparison.Ordinal))
            .Select(v => Repository.Relative(Repository.PathOf(v.Source)))
            .Single();

    /// <summary>The http-context directives (conf.d files are included in http {}).</summary>
    private static NginxDirective Http() =>
        new("http", [], Nginx.Load(ConfigFile, Compose.ServiceWithImage("nginx").HostPathOf), ConfigFile);

    /// <summary>The gRPC server: the one listening h2c (the other, rest-routes.conf's, is RestRouteTests').</summary>
    private static NginxDirective Server() => Assert.Single(Http().Children("server"), s => s.Child("http2")?.Args is ["on"]);

    /// <summary>Upstream name → the compose project its one server runs, checked against the compose service and port.</summary>
    private static Dictionary<string, string> Upstreams()
    {
        var upstreams = new Dictionary<string, string>(StringComparer.Ordinal);
        // The REST upstreams (name_rest, the services' REST port) are RestRouteTests'.
        foreach (var upstream in Http().Children("upstream").Where(u => !u.Args[0].EndsWith("_rest", StringComparison.Ordinal)))
        {
            var address = Assert.Single(upstream.Children("server")).Args[0];
            var host = address.Split(':')[0];
            var service = Compose.Service(host);
            Assert.NotNull(service.Project);
            Assert.Equal($"{host}:{ComposeTests.ImagePort(service.Project)}", address);
            upstreams[upstream.Args[0]] = Upstream(service.Project);
        }

        return upstreams;
    }

    private static string Upstream(string project) => $"{Compose.ServiceOf(project).Name} ({project})";

    /// <summary>The location nginx picks for a path: the longest matching prefix (regular-expression locations are not used).</summary>
    private static NginxDirective Match(string path)
    {
        var locations = Server().Children("location").ToList();
        Assert.All(locations, l => Assert.True(l.Args.Count == 1, $"{l}: only prefix locations are expected."));
        return locations.Where(l => path.StartsWith(l.Args[0], StringComparison.Ordinal)).MaxBy(l => l.Args[0].Length)
            ?? throw new Xunit.Sdk.XunitException($"No location matches {path}.");
    }

    /// <summary>The upstream (or variable) the call on <paramref name="path"/> is passed to.</summary>
    private static string GrpcPass(string path)
    {
        var location = Match(path);
        var pass = location.Child("grpc_pass");
        Assert.False(pass is null, $"{path} matches {location}, which has no grpc_pass.");
        var target = pass.Args.Single();
        Assert.StartsWith("grpc://", target, StringComparison.Ordinal); // h2c to the services
        return target["grpc://".Length..];
    }
}
