using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Testing;

namespace LabMesh.Security.Tests;

/// <summary>The four services in one host on a loopback port (as the all-in-one runs them), and clients for a caller.</summary>
public sealed class AllInOne : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly List<GrpcChannel> _channels = [];

    private AllInOne(ServiceHost host) => Host = host;

    public ServiceHost Host { get; }

    public static async Task<AllInOne> StartAsync(IReadOnlyDictionary<string, string?>? extra = null, Backend backend = Backend.Sqlite)
    {
        var settings = await TestSettings.CreateAsync(backend);
        settings["LabMesh:Notification:HeartbeatInterval"] = "00:00:00.050";
        settings["LabMesh:Notification:IngestPollInterval"] = "00:00:00.050";
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return new AllInOne(await MeshHosts.StartAllInOneAsync(settings, FreePort.Next()).WaitAsync(TimeSpan.FromMinutes(2)));
    }

    /// <summary>A call invoker acting as <paramref name="subject"/> of <paramref name="team"/> (a partner when given).</summary>
    public CallInvoker Invoker(string team, string subject = "test-user", string? partner = null)
    {
        var channel = Host.CreateChannel();
        _channels.Add(channel);
        return TestCaller.Invoker(channel, team, partner, subject);
    }

    public Clients For(string team, string subject = "test-user") => new(Invoker(team, subject));

    /// <summary>The standard health check of the whole host.</summary>
    public async Task<HealthCheckResponse.Types.ServingStatus> HealthAsync()
    {
        var channel = Host.CreateChannel();
        _channels.Add(channel);
        var response = await new Health.HealthClient(channel).CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow + Timeout);
        return response.Status;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var channel in _channels)
        {
            channel.Dispose();
        }

        await Host.DisposeAsync();
    }

    /// <summary>A placed testkit requisition for <paramref name="patient"/> with one test per code.</summary>
    public static CreateRequisitionRequest Order(Patient patient, params string[] codes)
    {
        var request = new CreateRequisitionRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            Patient = patient,
            OrderingProvider = new Provider { Id = "prov-1", Name = "Dr. Jack Smith" },
            Lab = "LabCorp",
            Modality = TestModality.Testkit,
            Place = true,
        };
        request.Tests.AddRange(codes.Select(code => new OrderedTest { Code = code, PartnerId = "partner-1" }));
        return request;
    }

    public sealed class Clients(CallInvoker invoker)
    {
        public RequisitionService.RequisitionServiceClient Requisitions { get; } = new(invoker);

        public ServiceRequestService.ServiceRequestServiceClient ServiceRequests { get; } = new(invoker);

        public ResultsInterpretationService.ResultsInterpretationServiceClient Results { get; } = new(invoker);

        public NotificationService.NotificationServiceClient Notifications { get; } = new(invoker);

        public CallInvoker Invoker { get; } = invoker;
    }
}

/// <summary>
/// One all-in-one host shared by the tests of a class, for tests that write nothing, or under teams of their own:
/// a host started per test case costs seconds and shows nothing more.
/// </summary>
public class AllInOneFixture : IAsyncLifetime
{
    public AllInOne Mesh { get; private set; } = null!;

    protected virtual Backend Backend => Backend.Sqlite;

    public async Task InitializeAsync() => Mesh = await AllInOne.StartAsync(backend: Backend);

    public async Task DisposeAsync() => await Mesh.DisposeAsync();
}

/// <summary>The shared all-in-one host on PostgreSQL (a fresh database).</summary>
public sealed class PostgresAllInOneFixture : AllInOneFixture
{
    protected override Backend Backend => Backend.Postgres;
}
