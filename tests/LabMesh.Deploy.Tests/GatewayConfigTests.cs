using System.Globalization;
using System.Text.Json;

namespace LabMesh.Deploy.Tests;

/// <summary>
/// The gateway of deploy/local and compose (services/LabMesh.Gateway, YARP): its routes send each call where nginx's
/// did, its clusters keep long streams open, and each deployment gives every cluster its service.
/// </summary>
public sealed class GatewayConfigTests
{
    private const string ReflectionScopeHeader = "x-labmesh-reflection";

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
    public void Gateway_RoutesEachLabMeshService_ToTheClusterOfTheServiceThatServesIt(string fullName)
    {
        var service = Protos.LabMesh.Single(s => s.FullName == fullName);

        var route = GatewayConfig.Match(service.PathOf("AnyMethod"));

        Assert.False(route is null, $"no route of {GatewayConfig.File} takes {fullName}.");
        Assert.Equal(GatewayConfig.GrpcCluster(Code.Owner(service)), route.Cluster);
        // Whatever a caller puts in x-labmesh-service, a service's own calls go to the service.
        Assert.Equal(route, GatewayConfig.Match(service.PathOf("AnyMethod"), new Dictionary<string, string> { [GatewayConfig.ServiceHeader] = "notification" }));
    }

    [Theory]
    [MemberData(nameof(PerProcess))]
    public void Gateway_RoutesPerProcessServices_ToTheServiceTheHeaderNames_AndByDefaultToOne(string fullName)
    {
        var path = Protos.PerProcess.Single(s => s.FullName == fullName).PathOf("AnyMethod");

        foreach (var project in Repository.DeployableProjects)
        {
            var named = GatewayConfig.Match(path, new Dictionary<string, string> { [GatewayConfig.ServiceHeader] = Repository.ShortName(project) });
            Assert.False(named is null, $"{fullName} with {GatewayConfig.ServiceHeader}: {Repository.ShortName(project)} is not routed.");
            Assert.Equal(GatewayConfig.GrpcCluster(project), named.Cluster);
        }

        var unnamed = GatewayConfig.Match(path);
        Assert.False(unnamed is null, $"{fullName} without {GatewayConfig.ServiceHeader} is not routed.");
        Assert.Contains(unnamed.Cluster, Repository.DeployableProjects.Select(GatewayConfig.GrpcCluster));
        // A header naming no service is as good as none (nginx's map default).
        Assert.Equal(unnamed, GatewayConfig.Match(path, new Dictionary<string, string> { [GatewayConfig.ServiceHeader] = "nothing" }));
    }

    [Theory]
    [InlineData("grpc.reflection.v1.ServerReflection")]
    [InlineData("grpc.reflection.v1alpha.ServerReflection")]
    public void Reflection_WithNoHeader_AsksForTheWholeApi_AndNamingAProcessDropsThatAsk(string fullName)
    {
        var path = $"/{fullName}/ServerReflectionInfo";

        // Without the header: x-labmesh-reflection: api (GrpcReflectionDescriptors answers for every contract), over
        // whatever the caller sent.
        var unnamed = GatewayConfig.Match(path)!;
        Assert.Equal("api", GatewayConfig.SetsHeader(unnamed, ReflectionScopeHeader));

        // Naming a process: its own services; a caller's x-labmesh-reflection is removed, so it cannot ask for more.
        foreach (var project in Repository.DeployableProjects)
        {
            var named = GatewayConfig.Match(path, new Dictionary<string, string> { [GatewayConfig.ServiceHeader] = Repository.ShortName(project) })!;
            Assert.True(GatewayConfig.RemovesHeader(named, ReflectionScopeHeader), $"{named} lets a caller's {ReflectionScopeHeader} through.");
            Assert.Null(GatewayConfig.SetsHeader(named, ReflectionScopeHeader));
        }
    }

    [Fact]
    public void Gateway_RoutesNoOtherPath()
    {
        // No route: the gateway's own answer, UNIMPLEMENTED for a gRPC call (the end-to-end tests check it).
        Assert.Null(GatewayConfig.Match("/grpc.testing.TestService/UnaryCall"));
        Assert.Null(GatewayConfig.Match("/labmesh.unknown.v1.UnknownService/Call"));
    }

    [Fact]
    public void EveryRoute_GoesToAClusterThatExists_AndEveryClusterIsUsed()
    {
        var clusters = GatewayConfig.ClusterIds.ToList();

        Assert.All(GatewayConfig.Routes, route => Assert.Contains(route.Cluster, clusters));
        Assert.All(clusters, cluster => Assert.Contains(cluster, GatewayConfig.Routes.Select(r => r.Cluster)));
        Assert.Equal(
            Repository.DeployableProjects.SelectMany(p => new[] { GatewayConfig.GrpcCluster(p), GatewayConfig.RestCluster(p) }).Order(StringComparer.Ordinal),
            clusters.Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Projects))]
    public void GrpcClusters_SpeakH2c_MultiplexOnSeveralConnections_KeepQuietStreamsAnHour_AndPassOverAFailedReplica(string project)
    {
        var cluster = GatewayConfig.Cluster(GatewayConfig.GrpcCluster(project));
        var request = cluster.GetProperty("HttpRequest");

        Assert.Equal("2", request.GetProperty("Version").GetString());
        Assert.Equal("RequestVersionExact", request.GetProperty("VersionPolicy").GetString());
        Assert.True(cluster.GetProperty("HttpClient").GetProperty("EnableMultipleHttp2Connections").GetBoolean());
        // A Subscribe stream may be quiet between heartbeats it chose (YARP's default is 100 s of no activity).
        Assert.True(TimeSpan.Parse(request.GetProperty("ActivityTimeout").GetString()!, CultureInfo.InvariantCulture) >= TimeSpan.FromHours(1));
        AssertPassiveHealth(cluster);
    }

    [Theory]
    [MemberData(nameof(Projects))]
    public void GrpcClusters_CapConnectionsPerReplica_AndShedCallsPastACap_BeforeTheReplicasStreamsRunOut(string project)
    {
        // Under an overload the gateway opened ever more HTTP/2 connections to the replicas, the callers' deadlines
        // reset their streams, and Kestrel closed the connections with every call on them (bench/README.md, "The
        // gateway under overload"). Now the connections per replica are capped and the calls in flight per cluster
        // are capped below what those connections carry (Kestrel's 100 streams each), so a call past the cap is
        // shed at the gateway (RESOURCE_EXHAUSTED) instead of waiting in the HttpClient for a stream until its deadline.
        var cluster = GatewayConfig.Cluster(GatewayConfig.GrpcCluster(project));
        var connections = cluster.GetProperty("HttpClient").GetProperty("MaxConnectionsPerServer").GetInt32();
        var perCluster = GatewayConfig.Root.GetProperty("LabMesh").GetProperty("Gateway").GetProperty("CallsInFlight").GetProperty("PerCluster").GetInt32();
        const int kestrelStreamsPerConnection = 100;

        Assert.InRange(connections, 1, 4);
        Assert.InRange(perCluster, 16, connections * kestrelStreamsPerConnection);

        var route = GatewayConfig.Root.GetProperty("ReverseProxy").GetProperty("Routes").GetProperty(GatewayConfig.GrpcCluster(project));
        var policy = route.TryGetProperty("RateLimiterPolicy", out var p) ? p.GetString() : null;
        var streams = Protos.LabMesh.Where(s => GatewayConfig.Match(s.PathOf("Any"))?.Cluster == GatewayConfig.GrpcCluster(project))
            .Any(s => System.Text.RegularExpressions.Regex.IsMatch(Repository.Read(s.File), @"returns\s*\(\s*stream\s"));
        if (streams)
        {
            // A stream (Notification's Subscribe) stays open for an hour: a cap on calls in flight would cap subscribers.
            Assert.Null(policy);
        }
        else
        {
            Assert.Equal("grpc-calls-in-flight", policy);
        }
    }

    [Theory]
    [MemberData(nameof(Projects))]
    public void RestClusters_SpeakHttp11_AndPassOverAFailedReplica(string project)
    {
        var cluster = GatewayConfig.Cluster(GatewayConfig.RestCluster(project));

        Assert.Equal("1.1", cluster.GetProperty("HttpRequest").GetProperty("Version").GetString());
        AssertPassiveHealth(cluster);
    }

    [Fact]
    public void Gateway_ListensH2cForGrpc_AndHttp11ForRest_AndBoundsAStop()
    {
        var endpoints = GatewayConfig.Root.GetProperty("Kestrel").GetProperty("Endpoints");

        Assert.Equal("Http2", endpoints.GetProperty("Grpc").GetProperty("Protocols").GetString());
        Assert.Equal("Http1", endpoints.GetProperty("Rest").GetProperty("Protocols").GetString());
        Assert.Equal(8080, Port(endpoints.GetProperty("Grpc")));
        Assert.Equal(8081, Port(endpoints.GetProperty("Rest")));
        // Open Subscribe streams are closed by the gateway itself within Docker's stop grace period (10 s by default).
        Assert.InRange(GatewayConfig.Root.GetProperty("shutdownTimeoutSeconds").GetInt32(), 1, 9);
    }

    [Fact]
    public void Compose_GatewayIsBuiltFromItsProject_PublishesBothListeners_AndStartsAfterTheServices()
    {
        var gateway = Compose.ServiceOf(Repository.Gateway);

        Assert.Equal("services/LabMesh.Gateway/Dockerfile", gateway.DockerfilePath);
        Assert.Contains(gateway.PublishedPorts, port => port.Target == "8080");
        Assert.Contains(gateway.PublishedPorts, port => port.Target == "8081");
        Assert.All(Repository.DeployableProjects, project => Assert.Contains(Compose.ServiceOf(project).Name, gateway.DependsOn.Keys));
        Assert.True(gateway.ReadOnly);
        Assert.Contains("/tmp", gateway.Tmpfs);
    }

    [Theory]
    [MemberData(nameof(Projects))]
    public void Compose_GivesEachClusterItsServicesGrpcAndRestPorts_AndNothingElse(string project)
    {
        var gateway = Compose.ServiceOf(Repository.Gateway);
        var service = Compose.ServiceOf(project);
        var destinations = Destinations(gateway.Environment);

        Assert.Equal([$"http://{service.Name}:{ComposeTests.ImagePort(project)}"], destinations[GatewayConfig.GrpcCluster(project)]);
        Assert.True(service.Environment.TryGetValue("LabMesh__Rest__Url", out var rest), $"{service} has no REST listener (LabMesh__Rest__Url).");
        var restPort = new Uri(rest.Replace("+", "localhost", StringComparison.Ordinal)).Port;
        Assert.Equal([$"http://{service.Name}:{restPort}"], destinations[GatewayConfig.RestCluster(project)]);
        Assert.All(destinations.Keys, cluster => Assert.Contains(cluster, GatewayConfig.ClusterIds));
    }

    [Fact]
    public void DeployLocal_GivesEveryClusterBothReplicas_TheListeners_AndTheStopBound()
    {
        var lib = Repository.Read("deploy/local/lib.sh");

        // Every cluster of appsettings.json is named "$service" or "$service-rest" for the four SERVICES of lib.sh.
        Assert.Contains("SERVICES=(requisition servicerequest resultsinterpretation notification)", lib, StringComparison.Ordinal);
        Assert.Contains("--ReverseProxy:Clusters:$service:Destinations:$service-$r:Address \"http://127.0.0.1:$(replica_port \"$service\" \"$r\")\"", lib, StringComparison.Ordinal);
        Assert.Contains("--ReverseProxy:Clusters:$service-rest:Destinations:$service-$r:Address \"http://127.0.0.1:$(rest_port \"$service\" \"$r\")\"", lib, StringComparison.Ordinal);
        Assert.Contains("--Kestrel:Endpoints:Grpc:Url \"http://127.0.0.1:$GATEWAY_PORT\"", lib, StringComparison.Ordinal);
        Assert.Contains("--Kestrel:Endpoints:Rest:Url \"http://127.0.0.1:$GATEWAY_REST_PORT\"", lib, StringComparison.Ordinal);
        Assert.Contains("--shutdownTimeoutSeconds \"$GATEWAY_SHUTDOWN_TIMEOUT\"", lib, StringComparison.Ordinal);
        Assert.Contains("--LabMesh:Rest:Url", lib, StringComparison.Ordinal);
    }

    public static TheoryData<string> Projects => new(Repository.DeployableProjects);

    private static void AssertPassiveHealth(JsonElement cluster)
    {
        var passive = cluster.GetProperty("HealthCheck").GetProperty("Passive");
        Assert.True(passive.GetProperty("Enabled").GetBoolean());
        Assert.True(TimeSpan.Parse(passive.GetProperty("ReactivationPeriod").GetString()!, CultureInfo.InvariantCulture) <= TimeSpan.FromSeconds(10));
    }

    private static int Port(JsonElement endpoint) =>
        new Uri(endpoint.GetProperty("Url").GetString()!.Replace("+", "localhost", StringComparison.Ordinal)).Port;

    /// <summary>ReverseProxy__Clusters__ID__Destinations__NAME__Address variables: cluster id → addresses.</summary>
    private static Dictionary<string, List<string>> Destinations(IReadOnlyDictionary<string, string> environment)
    {
        var destinations = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var (name, value) in environment)
        {
            var parts = name.Split("__");
            Assert.True(parts is ["ReverseProxy", "Clusters", _, "Destinations", _, "Address"], $"the gateway is given {name}, which is no cluster destination.");
            (destinations.TryGetValue(parts[2], out var list) ? list : destinations[parts[2]] = []).Add(value);
        }

        return destinations;
    }
}
