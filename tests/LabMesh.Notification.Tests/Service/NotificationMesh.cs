using Grpc.Net.Client;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Testing;

namespace LabMesh.Notification.Tests.Service;

/// <summary>
/// Redis, the ServiceRequest, Requisition and ResultsInterpretation services, and Notification
/// replicas sharing one store, each a separate host on its own loopback port, as deployed.
/// </summary>
public sealed class NotificationMesh : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    private readonly List<GrpcChannel> _channels = [];
    private readonly Dictionary<string, string?> _notificationSettings;

    private NotificationMesh(RedisServer redis, ServiceHost serviceRequests, ServiceHost requisitions, ServiceHost results, Dictionary<string, string?> notificationSettings)
    {
        Redis = redis;
        ServiceRequests = serviceRequests;
        Requisitions = requisitions;
        Results = results;
        _notificationSettings = notificationSettings;
    }

    public RedisServer Redis { get; }

    public ServiceHost ServiceRequests { get; }

    public ServiceHost Requisitions { get; }

    public ServiceHost Results { get; }

    /// <summary>The Notification replicas started so far, by name.</summary>
    public Dictionary<string, ServiceHost> Replicas { get; } = new(StringComparer.Ordinal);

    public IEnumerable<LogCapture> Logs => [ServiceRequests.Logs, Requisitions.Logs, Results.Logs, .. Replicas.Values.Select(r => r.Logs)];

    /// <summary>Settings of every replica: fast timers, loopback allow-listed, a short retry schedule.</summary>
    public static Dictionary<string, string?> NotificationSettings(Dictionary<string, string?> settings, TimeSpan acknowledgementWindow) =>
        new(settings)
        {
            ["LabMesh:Notification:HeartbeatInterval"] = "00:00:00.200",
            ["LabMesh:Notification:SubscriberBuffer"] = "16",
            ["LabMesh:Notification:SlowSubscriberGrace"] = "00:00:30",
            ["LabMesh:Notification:AcknowledgementWindow"] = acknowledgementWindow.ToString("c"),
            ["LabMesh:Notification:EscalationCheckInterval"] = "00:00:00.100",
            ["LabMesh:Notification:ClaimIdle"] = "00:00:01",
            ["LabMesh:Notification:IngestPollInterval"] = "00:00:00.050",
            ["LabMesh:Notification:DeliveryPollInterval"] = "00:00:00.100",
            ["LabMesh:Notification:DeliveryLeaseMargin"] = "00:00:01",
            ["LabMesh:Notification:Webhooks:Timeout"] = "00:00:02",
            ["LabMesh:Notification:Webhooks:Jitter"] = "0",
            ["LabMesh:Notification:Webhooks:RetrySchedule:0"] = "00:00:00",
            ["LabMesh:Notification:Webhooks:RetrySchedule:1"] = "00:00:00.300",
            ["LabMesh:Notification:Webhooks:RetrySchedule:2"] = "00:00:00.300",
            ["LabMesh:Notification:Webhooks:AllowedNetworks:0"] = "127.0.0.0/8",
            ["LabMesh:Notification:Webhooks:AllowedNetworks:1"] = "::1/128",
        };

    public static Task<NotificationMesh> StartAsync(TimeSpan? acknowledgementWindow = null, params string[] replicas) =>
        StartAsync(Backend.Sqlite, acknowledgementWindow, null, null, replicas);

    /// <param name="backend">The Notification replicas' shared store (the other services keep SQLite).</param>
    /// <param name="acknowledgementWindow">LabMesh:Notification:AcknowledgementWindow; default 30 min.</param>
    /// <param name="resultsSettings">More settings of the ResultsInterpretation service (e.g. <c>LabMesh:Results:Teams:*</c>).</param>
    /// <param name="notificationSettings">More settings of every replica (e.g. <c>LabMesh:Notification:Teams:*</c>).</param>
    /// <param name="replicas">The replicas' names; default "a" and "b".</param>
    public static async Task<NotificationMesh> StartAsync(
        Backend backend, TimeSpan? acknowledgementWindow = null, IReadOnlyDictionary<string, string?>? resultsSettings = null,
        IReadOnlyDictionary<string, string?>? notificationSettings = null, params string[] replicas)
    {
        var redis = await RedisServer.StartNewAsync();
        var serviceRequests = await MeshHosts.StartServiceRequestsAsync(await TestSettings.CreateAsync(Backend.Sqlite, redis.Configuration));
        var requisitionSettings = await TestSettings.CreateAsync(Backend.Sqlite, redis.Configuration);
        requisitionSettings["LabMesh:Services:ServiceRequest"] = serviceRequests.Address;
        var requisitions = await MeshHosts.StartRequisitionsAsync(requisitionSettings);
        var settings = await TestSettings.CreateAsync(Backend.Sqlite, redis.Configuration);
        settings["LabMesh:Services:ServiceRequest"] = serviceRequests.Address;
        settings["LabMesh:Services:Requisition"] = requisitions.Address;
        foreach (var (key, value) in resultsSettings ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        var results = await MeshHosts.StartResultsAsync(settings);

        var replicaSettings = NotificationSettings(
            await TestSettings.CreateAsync(backend, redis.Configuration), acknowledgementWindow ?? TimeSpan.FromMinutes(30));
        foreach (var (key, value) in notificationSettings ?? new Dictionary<string, string?>())
        {
            replicaSettings[key] = value;
        }

        var mesh = new NotificationMesh(redis, serviceRequests, requisitions, results, replicaSettings);
        foreach (var name in replicas.Length == 0 ? ["a", "b"] : replicas)
        {
            await mesh.StartReplicaAsync(name);
        }

        return mesh;
    }

    /// <summary>Starts a Notification replica on the shared store, consumer name <paramref name="name"/>.</summary>
    public async Task<ServiceHost> StartReplicaAsync(string name)
    {
        var settings = new Dictionary<string, string?>(_notificationSettings) { ["LabMesh:Notification:ConsumerName"] = name };
        var host = await MeshHosts.StartNotificationAsync(settings);
        Replicas[name] = host;
        return host;
    }

    /// <summary>Stops a replica at once: attempts in flight are abandoned unrecorded, as when a process dies.</summary>
    public async Task StopReplicaAsync(string name)
    {
        var host = Replicas[name];
        Replicas.Remove(name);
        await host.DisposeAsync();
    }

    public NotificationService.NotificationServiceClient Notifications(string replica, string team, string subject = "test-user") =>
        new(Invoker(Replicas[replica], team, subject));

    public ResultsInterpretationService.ResultsInterpretationServiceClient ResultsClient(string team) => new(Invoker(Results, team, "lab-service"));

    public RequisitionService.RequisitionServiceClient RequisitionClient(string team) => new(Invoker(Requisitions, team, "ordering-service"));

    public async ValueTask DisposeAsync()
    {
        foreach (var channel in _channels)
        {
            channel.Dispose();
        }

        foreach (var replica in Replicas.Values)
        {
            await replica.DisposeAsync();
        }

        await Results.DisposeAsync();
        await Requisitions.DisposeAsync();
        await ServiceRequests.DisposeAsync();
        await Redis.DisposeAsync();
    }

    private Grpc.Core.CallInvoker Invoker(ServiceHost host, string team, string subject)
    {
        var channel = host.CreateChannel();
        _channels.Add(channel);
        return TestCaller.Invoker(channel, team, subject: subject);
    }
}
