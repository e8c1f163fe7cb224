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

    private readonly MeshChannelSet? _channels;
    private readonly Func<GrpcChannel> _channel;

    private AllInOne(ServiceHost host, Func<GrpcChannel>? channel)
    {
        Host = host;
        if (channel is null)
        {
            _channels = new MeshChannelSet();
            _channel = () => _channels.Channel(host);
        }
        else
        {
            _channel = channel;
        }
    }

    public ServiceHost Host { get; }

    /// <summary>A host of its own, started with <paramref name="extra"/> settings on <paramref name="backend"/>, stopped when disposed.</summary>
    public static async Task<AllInOne> StartAsync(IReadOnlyDictionary<string, string?>? extra = null, Backend backend = Backend.Sqlite)
    {
        var settings = await TestSettings.CreateAsync(backend);
        Configure(settings);
        foreach (var (key, value) in extra ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return new AllInOne(await MeshHosts.StartAllInOneAsync(settings, FreePort.Next()).WaitAsync(TimeSpan.FromMinutes(2)), null);
    }

    /// <summary>Clients of a shared host (<see cref="AllInOneFixture"/>): their channels are the fixture's, and it stops the host.</summary>
    public static AllInOne Of(HostFixture fixture) => new(fixture.Host, fixture.Channel);

    /// <summary>The settings these tests start every host with: fast Notification timers.</summary>
    public static void Configure(Dictionary<string, string?> settings)
    {
        settings["LabMesh:Notification:HeartbeatInterval"] = "00:00:00.050";
        settings["LabMesh:Notification:IngestPollInterval"] = "00:00:00.050";
    }

    /// <summary>A call invoker acting as <paramref name="subject"/> of <paramref name="team"/> (a partner when given).</summary>
    public CallInvoker Invoker(string team, string subject = "test-user", string? partner = null) => TestCaller.Invoker(_channel(), team, partner, subject);

    public Clients For(string team, string subject = "test-user") => new(Invoker(team, subject));

    /// <summary>The standard health check of the whole host.</summary>
    public async Task<HealthCheckResponse.Types.ServingStatus> HealthAsync()
    {
        var response = await new Health.HealthClient(_channel()).CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow + Timeout);
        return response.Status;
    }

    public async ValueTask DisposeAsync()
    {
        if (_channels is null)
        {
            return;
        }

        _channels.Dispose();
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
public class AllInOneFixture : AllInOneHost
{
    public AllInOneFixture()
        : this(Backend.Sqlite)
    {
    }

    protected AllInOneFixture(Backend backend)
        : base(backend)
    {
    }

    public AllInOne Mesh => AllInOne.Of(this);

    protected override void Configure(Dictionary<string, string?> settings) => AllInOne.Configure(settings);
}

/// <summary>The shared all-in-one host on PostgreSQL (a fresh database).</summary>
public sealed class PostgresAllInOneFixture() : AllInOneFixture(Backend.Postgres);
