using System.Data.Common;

namespace LabMesh.Deploy.Tests;

/// <summary>docker-compose.yml: the four services as built images with PostgreSQL, Redis and the gateway (services/LabMesh.Gateway).</summary>
public sealed class ComposeTests
{
    public static TheoryData<string> Projects => new(Repository.DeployableProjects);

    [Fact]
    public void Compose_RunsEveryService_WithPostgresRedisAndAGateway()
    {
        foreach (var project in Repository.DeployableProjects)
        {
            Assert.Equal(Repository.ShortName(project), Compose.ServiceOf(project).Name);
        }

        Compose.ServiceWithImage("postgres");
        Compose.ServiceWithImage("redis");
        Compose.ServiceOf(Repository.Gateway);
    }

    [Fact]
    public void Compose_EveryBuild_UsesAnExistingDockerfile_OfAnExistingProject_FromTheRepositoryRoot()
    {
        var built = Compose.Services.Where(s => s.DockerfilePath is not null).ToList();

        Assert.NotEmpty(built);
        foreach (var service in built)
        {
            Assert.Equal(".", service.BuildContext);
            Assert.True(Repository.Exists(service.DockerfilePath!), $"{service}: {service.DockerfilePath} does not exist.");
            Assert.NotNull(service.Project);
            Assert.True(Repository.Exists(Repository.ProjectFile(service.Project)), $"{service}: {Repository.ProjectFile(service.Project)} does not exist.");
        }
    }

    [Theory]
    [MemberData(nameof(Projects))]
    public void Compose_Environment_SetsOnlyKeysTheServiceReads(string project)
    {
        var service = Compose.ServiceOf(project);

        Assert.All(service.Environment.Keys, name =>
            Assert.True(Code.WhyRead(project, name) is not null, $"{service}: {name} ({Code.KeyOf(name)}) is no configuration key {project} reads."));
    }

    [Theory]
    [MemberData(nameof(Projects))]
    public void Compose_Service_UsesPostgresAndRedis_OfThisFile(string project)
    {
        var service = Compose.ServiceOf(project);
        var environment = service.Environment;
        var postgres = Compose.ServiceWithImage("postgres");
        var redis = Compose.ServiceWithImage("redis");

        // Without them each service would keep SQLite files in its tmpfs and an in-process bus.
        var postgresSetting = environment.GetValueOrDefault("ConnectionStrings__Postgres") ?? environment.GetValueOrDefault("LabMesh__Storage__PostgresConnectionString");
        Assert.False(postgresSetting is null, $"{service} is given no PostgreSQL connection string.");
        var connection = new DbConnectionStringBuilder { ConnectionString = postgresSetting };
        Assert.Equal(postgres.Name, connection["Host"]);
        Assert.Equal(postgres.Environment["POSTGRES_PASSWORD"], connection["Password"]);
        Assert.Equal(postgres.Environment["POSTGRES_USER"], connection["Username"]);
        Assert.Equal(postgres.Environment["POSTGRES_DB"], connection["Database"]);

        var redisSetting = environment.GetValueOrDefault("ConnectionStrings__Redis");
        Assert.False(redisSetting is null, $"{service} is given no Redis configuration.");
        var parts = redisSetting.Split(',');
        Assert.Equal($"{redis.Name}:6379", parts[0]);
        // Redis has no default user; the services sign in as the ACL user the command line makes, with its password.
        var user = parts.FirstOrDefault(p => p.StartsWith("user=", StringComparison.Ordinal))?["user=".Length..];
        var password = parts.FirstOrDefault(p => p.StartsWith("password=", StringComparison.Ordinal))?["password=".Length..];
        var command = redis.Command.ToList();
        var rules = command.Select((word, i) => (word, i)).Where(w => w.word == "--user").Select(w => command.Skip(w.i + 1).TakeWhile(r => !r.StartsWith("--", StringComparison.Ordinal)).ToList()).ToList();
        Assert.Contains(rules, r => r.SequenceEqual(["default", "off"]));
        var rule = Assert.Single(rules, r => r[0] == user);
        Assert.Contains(">" + password, rule);
        Assert.Contains("~labmesh:*", rule);
        Assert.Contains("-@dangerous", rule);
        Assert.Contains("--appendonly", command);

        // Migrations run at start-up and must reach PostgreSQL; its health check says when it can.
        Assert.Equal("service_healthy", service.DependsOn.GetValueOrDefault(postgres.Name));
        Assert.NotNull(postgres.Body.At("healthcheck"));
    }

    [Theory]
    [MemberData(nameof(Projects))]
    public void Compose_Caller_ReachesEachServiceItCalls_AtItsComposeNameAndPort(string project)
    {
        var service = Compose.ServiceOf(project);
        var environment = service.Environment.ToDictionary(p => Code.KeyOf(p.Key), p => p.Value, StringComparer.OrdinalIgnoreCase);

        foreach (var callee in Code.Callees(project))
        {
            var key = Code.PeerKey(callee);
            Assert.True(environment.TryGetValue(key, out var address), $"{service} calls {callee} but sets no {key} (the default is the all-in-one host's own port).");
            var uri = new Uri(address);
            Assert.Equal("http", uri.Scheme);
            Assert.Equal(Compose.ServiceOf(callee).Name, uri.Host);
            Assert.Equal(ImagePort(callee), uri.Port);
        }
    }

    [Theory]
    [MemberData(nameof(Projects))]
    public void Compose_Ports_AreThePortTheImageListensOn(string project)
    {
        var service = Compose.ServiceOf(project);
        var port = ImagePort(project).ToString(System.Globalization.CultureInfo.InvariantCulture);

        // And the REST listener's port (LabMesh:Rest:Url), when the service is given one.
        string[] expected = service.Environment.TryGetValue("LabMesh__Rest__Url", out var rest) ? [port, new Uri(rest.Replace("+", "localhost", StringComparison.Ordinal)).Port.ToString(System.Globalization.CultureInfo.InvariantCulture)] : [port];
        Assert.Equal(expected, service.ExposedPorts);
        Assert.All(service.PublishedPorts, published => Assert.Equal(port, published.Target));
        if (service.Environment.TryGetValue("ASPNETCORE_URLS", out var urls))
        {
            Assert.EndsWith($":{port}", urls, StringComparison.Ordinal);
        }
    }

    [Theory]
    [MemberData(nameof(Projects))]
    public void Compose_Service_RunsReadOnly_WithEveryPathTheImageWritesOnTmpfs(string project)
    {
        var service = Compose.ServiceOf(project);
        var dockerfile = DockerfileTests.Load(project);

        Assert.True(service.ReadOnly, $"{service} does not set read_only: true.");
        foreach (var path in dockerfile.Final.All("VOLUME").SelectMany(v => v.Words))
        {
            Assert.True(
                service.Tmpfs.Contains(path) || service.Volumes.Any(v => v.Target == path && !v.ReadOnly),
                $"{service}: {path} (a VOLUME of {dockerfile}) is neither tmpfs nor a writable volume.");
        }
    }

    [Theory]
    [MemberData(nameof(Projects))]
    public void Compose_Service_ExportsTelemetry_UnderItsName_ToTheViewerOfThisFile_OnThePortItListensOn(string project)
    {
        var service = Compose.ServiceOf(project);
        var environment = service.Environment;

        // The standard variables only (issue 21): nothing LabMesh-specific turns telemetry on.
        Assert.Equal(Repository.ShortName(project), environment.GetValueOrDefault("OTEL_SERVICE_NAME"));
        Assert.True(environment.TryGetValue("OTEL_EXPORTER_OTLP_ENDPOINT", out var endpoint), $"{service} sets no OTEL_EXPORTER_OTLP_ENDPOINT: it exports nothing.");
        var uri = new Uri(endpoint);
        Assert.Equal("http", uri.Scheme);
        var viewer = Compose.Service(uri.Host);

        // OTLP/gRPC is the .NET exporter's default protocol; the viewer listens for each on its own port.
        var protocol = environment.GetValueOrDefault("OTEL_EXPORTER_OTLP_PROTOCOL") ?? "grpc";
        var listenVariable = protocol switch
        {
            "grpc" => "ASPIRE_DASHBOARD_OTLP_ENDPOINT_URL",
            "http/protobuf" => "ASPIRE_DASHBOARD_OTLP_HTTP_ENDPOINT_URL",
            var other => throw new Xunit.Sdk.XunitException($"{service}: OTEL_EXPORTER_OTLP_PROTOCOL={other} is neither grpc nor http/protobuf."),
        };
        Assert.True(viewer.Environment.TryGetValue(listenVariable, out var listen), $"{viewer} does not say where it listens for OTLP over {protocol} ({listenVariable}).");
        Assert.Equal(listen[(listen.LastIndexOf(':') + 1)..], uri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains(uri.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), viewer.ExposedPorts);
        Assert.True(service.DependsOn.ContainsKey(viewer.Name), $"{service} does not start after {viewer}.");
    }

    [Fact]
    public void Compose_TheTelemetryViewer_PublishesOnlyItsUi_OnTheHostsLoopback()
    {
        var viewer = Compose.ServiceWithImage("mcr.microsoft.com/dotnet/aspire-dashboard");
        var ui = viewer.Environment["ASPNETCORE_URLS"];

        // No login (anonymous) and no OTLP key: only this machine's users may reach the UI, and nobody the OTLP ports.
        Assert.Equal("true", viewer.Environment.GetValueOrDefault("ASPIRE_DASHBOARD_UNSECURED_ALLOW_ANONYMOUS"));
        var published = Assert.Single(viewer.Body.List("ports").OfType<string>());
        Assert.StartsWith("127.0.0.1:", published, StringComparison.Ordinal);
        Assert.Equal(ui[(ui.LastIndexOf(':') + 1)..], published[(published.LastIndexOf(':') + 1)..]);
    }

    /// <summary>The one port <paramref name="project"/>'s image exposes.</summary>
    internal static int ImagePort(string project) =>
        int.Parse(DockerfileTests.Load(project).Final.All("EXPOSE").Single().Words.Single(), System.Globalization.CultureInfo.InvariantCulture);
}
