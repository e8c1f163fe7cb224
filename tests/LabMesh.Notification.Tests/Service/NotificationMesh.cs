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

    private readonly MeshChannelSet _channels = new();
    private readonly MeshService _serviceRequests;
    private readonly MeshService _requisitions;
    private readonly MeshService _results;
    private readonly Dictionary<string, MeshService> _replicas = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string?> _notificationSettings;

    private NotificationMesh(RedisServer redis, MeshService serviceRequests, MeshService requisitions, MeshService results, Dictionary<string, string?> notificationSettings)
    {
        Redis = redis;
        _serviceRequests = serviceRequests;
        _requisitions = requisitions;
        _results = results;
        _notificationSettings = notificationSettings;
    }

    public RedisServer Redis { get; }

    public ServiceHost ServiceRequests => _serviceRequests.Host;

    public ServiceHost Requisitions => _requisitions.Host;

    public ServiceHost Results => _results.Host;

    /// <summary>The Notification replicas running now, by name.</summary>
    public IReadOnlyDictionary<string, ServiceHost> Replicas => _replicas.ToDictionary(r => r.Key, r => r.Value.Host, StringComparer.Ordinal);

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
        var serviceRequests = await MeshService.StartAsync(MeshHosts.StartServiceRequestsAsync, await TestSettings.CreateAsync(Backend.Sqlite, redis.Configuration));
        var requisitionSettings = await TestSettings.CreateAsync(Backend.Sqlite, redis.Configuration);
        requisitionSettings["LabMesh:Services:ServiceRequest"] = serviceRequests.Host.Address;
        var requisitions = await MeshService.StartAsync(MeshHosts.StartRequisitionsAsync, requisitionSettings);
        var settings = await TestSettings.CreateAsync(Backend.Sqlite, redis.Configuration);
        settings["LabMesh:Services:ServiceRequest"] = serviceRequests.Host.Address;
        settings["LabMesh:Services:Requisition"] = requisitions.Host.Address;
        foreach (var (key, value) in resultsSettings ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        var results = await MeshService.StartAsync(MeshHosts.StartResultsAsync, settings);

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
        var replica = await MeshService.StartAsync(MeshHosts.StartNotificationAsync, settings);
        _replicas[name] = replica;
        return replica.Host;
    }

    /// <summary>Stops a replica at once: attempts in flight are abandoned unrecorded, as when a process dies.</summary>
    public async Task StopReplicaAsync(string name)
    {
        var replica = _replicas[name];
        _replicas.Remove(name);
        await replica.StopAsync();
    }

    public NotificationService.NotificationServiceClient Notifications(string replica, string team, string subject = "test-user") =>
        new(_channels.Invoker(_replicas[replica].Host, team, subject: subject));

    public ResultsInterpretationService.ResultsInterpretationServiceClient ResultsClient(string team) => new(_channels.Invoker(Results, team, subject: "lab-service"));

    public RequisitionService.RequisitionServiceClient RequisitionClient(string team) => new(_channels.Invoker(Requisitions, team, subject: "ordering-service"));

    public async ValueTask DisposeAsync()
    {
        _channels.Dispose();
        foreach (var replica in _replicas.Values)
        {
            await replica.DisposeAsync();
        }

        await _results.DisposeAsync();
        await _requisitions.DisposeAsync();
        await _serviceRequests.DisposeAsync();
        await Redis.DisposeAsync();
    }
}
