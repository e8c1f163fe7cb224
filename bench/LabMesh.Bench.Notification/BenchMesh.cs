using System.Globalization;
using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.Testing;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace LabMesh.Bench.Notification;

/// <summary>
/// Redis, the ServiceRequest, Requisition and ResultsInterpretation services, and two Notification
/// replicas (consumer names <c>a</c> and <c>b</c>) on one shared SQLite store: each a host of its own on
/// a loopback port, with its own Redis connection, as deployed and as
/// tests/LabMesh.Notification.Tests starts them (<see cref="MeshHosts"/>). Unlike the tests, every
/// Notification setting keeps the service's default except the loopback allow-list and the delivery
/// concurrency, and logging is at Warning (kept in memory, summarised at the end). With one replica
/// (a diagnostic) only b runs and <see cref="ReplicaA"/> is b.
/// </summary>
internal sealed class BenchMesh : IAsyncDisposable
{
    private readonly List<GrpcChannel> _channels = [];

    private BenchMesh(string dataRoot, RedisServer redis)
    {
        DataRoot = dataRoot;
        Redis = redis;
    }

    public string DataRoot { get; }

    public RedisServer Redis { get; }

    public ServiceHost ServiceRequests { get; private set; } = null!;

    public ServiceHost Requisitions { get; private set; } = null!;

    public ServiceHost Results { get; private set; } = null!;

    /// <summary>Replica a; replica b when the mesh runs one replica only.</summary>
    public ServiceHost ReplicaA { get; private set; } = null!;

    public ServiceHost ReplicaB { get; private set; } = null!;

    public IReadOnlyList<(string Name, ServiceHost Host)> Hosts => ReplicaA == ReplicaB
        ? [("servicerequest", ServiceRequests), ("requisition", Requisitions), ("results", Results), ("notification b", ReplicaB)]
        : [("servicerequest", ServiceRequests), ("requisition", Requisitions), ("results", Results), ("notification a", ReplicaA), ("notification b", ReplicaB)];

    public static async Task<BenchMesh> StartAsync(int deliveryConcurrency, int replicas)
    {
        var dataRoot = Directory.CreateTempSubdirectory($"labmesh-bench-notification-{Environment.ProcessId}-").FullName;
        var redis = await RedisServer.StartNewAsync();
        var mesh = new BenchMesh(dataRoot, redis);
        try
        {
            mesh.ServiceRequests = await MeshHosts.StartServiceRequestsAsync(mesh.Settings("servicerequest"));
            var requisitions = mesh.Settings("requisition");
            requisitions["LabMesh:Services:ServiceRequest"] = mesh.ServiceRequests.Address;
            mesh.Requisitions = await MeshHosts.StartRequisitionsAsync(requisitions);
            var results = mesh.Settings("results");
            results["LabMesh:Services:ServiceRequest"] = mesh.ServiceRequests.Address;
            results["LabMesh:Services:Requisition"] = mesh.Requisitions.Address;
            mesh.Results = await MeshHosts.StartResultsAsync(results);

            // One data directory for both replicas: they share notification.db, as replicas share a store.
            var notification = mesh.Settings("notification");
            notification["LabMesh:Notification:DeliveryConcurrency"] = deliveryConcurrency.ToString(CultureInfo.InvariantCulture);
            notification["LabMesh:Notification:Webhooks:AllowedNetworks:0"] = "127.0.0.0/8";
            mesh.ReplicaB = await MeshHosts.StartNotificationAsync(new Dictionary<string, string?>(notification) { ["LabMesh:Notification:ConsumerName"] = "b" });
            mesh.ReplicaA = replicas == 1
                ? mesh.ReplicaB
                : await MeshHosts.StartNotificationAsync(new Dictionary<string, string?>(notification) { ["LabMesh:Notification:ConsumerName"] = "a" });
            return mesh;
        }
        catch
        {
            await mesh.DisposeAsync();
            throw;
        }
    }

    /// <summary>A call invoker on a new channel (one HTTP/2 connection) to <paramref name="host"/> as a caller of <paramref name="team"/>.</summary>
    public CallInvoker Invoker(ServiceHost host, string team, string subject)
    {
        var channel = host.CreateChannel();
        _channels.Add(channel);
        return TestCaller.Invoker(channel, team, subject: subject);
    }

    /// <summary>Warnings and errors the hosts logged (Warning is the lowest level kept), per host: count and the first few distinct messages.</summary>
    public IEnumerable<string> LogSummary()
    {
        foreach (var (name, host) in Hosts)
        {
            if (host is null)
            {
                continue;
            }

            var records = host.Logs.Records.Where(r => r.Level >= LogLevel.Warning).ToList();
            var below = host.Logs.Records.Count - records.Count;
            if (records.Count == 0)
            {
                yield return $"{name}: no warnings or errors" + (below > 0 ? $" ({below} records below Warning: the level filter did not apply)" : "");
                continue;
            }

            yield return $"{name}: {records.Count(r => r.Level >= LogLevel.Error)} errors, {records.Count(r => r.Level == LogLevel.Warning)} warnings";
            foreach (var group in records.GroupBy(r => (r.Category, r.EventId.Id)).Take(5))
            {
                var first = group.First();
                yield return $"    {group.Count()} x {first.Level} {first.Category}: {Shorten(first.Message)}" + (first.Exception is { } ex ? $" [{ex.GetType().Name}]" : "");
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var channel in _channels)
        {
            channel.Dispose();
        }

        foreach (var host in new[] { ReplicaA == ReplicaB ? null : ReplicaA, ReplicaB, Results, Requisitions, ServiceRequests })
        {
            if (host is not null)
            {
                await host.DisposeAsync();
            }
        }

        await Redis.DisposeAsync();
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(DataRoot, recursive: true);
        }
        catch (IOException)
        {
            // Left in the temp directory: harmless.
        }
    }

    private static string Shorten(string message) => message.Length <= 200 ? message : message[..200] + "...";

    private Dictionary<string, string?> Settings(string service) => new()
    {
        ["LabMesh:Storage:DataDirectory"] = Path.Combine(DataRoot, service),
        ["ConnectionStrings:Redis"] = Redis.Configuration,
        // Whatever the environment says: SQLite stores.
        ["ConnectionStrings:Postgres"] = "",
        ["Logging:LogLevel:Default"] = "Warning",
        // The benchmark is one caller at hundreds of results per second: the per-caller rate limit is not what it measures.
        ["LabMesh:Limits:PermitsPerSecond"] = "0",
    };
}
