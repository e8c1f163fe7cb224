using System.Globalization;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Testing;

namespace LabMesh.Requisition.Tests;

/// <summary>
/// An order's status changed while Redis is down reaches the cache through the outbox after the process
/// that made it is gone, with a Redis that keeps its data (AOF) and so comes back holding the old status.
/// </summary>
public sealed class DurableStatusCacheTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly string _team = "team-" + Guid.NewGuid().ToString("N")[..8];

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    [Fact]
    public async Task OrderEventWhileRedisDown_ThenRestart_ReachesTheCache_AndNeverGoesBack()
    {
        await using var redis = await RedisServer.StartNewAsync(appendOnly: true).WaitAsync(Timeout);
        await using var mesh = await Mesh.StartAsync(Backend.Sqlite, redis.Configuration + ",syncTimeout=1000").WaitAsync(TimeSpan.FromSeconds(120));
        var client = mesh.RequisitionClient(_team);
        var id = (await client.CreateRequisitionAsync(RequisitionServiceTests.NewOrder(), deadline: Deadline)).Requisition.Id;
        var placed = await client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = id }, deadline: Deadline);
        await Eventually.MatchAsync(() => CachedVersionAsync(redis, id), v => v >= Version(placed.Status.Etag), Timeout, "the placed order in the cache");

        await redis.StopAsync().WaitAsync(Timeout);
        var recorded = await client.RecordOrderEventAsync(
            new RecordOrderEventRequest { Id = id, Status = "received.testkit.requisition_created" }, deadline: Deadline);
        await mesh.StopRequisitionsAsync().WaitAsync(Timeout);

        // Back with what it had: the status from before the outage.
        await redis.StartAsync().WaitAsync(Timeout);
        var versions = new List<long?> { await CachedVersionAsync(redis, id) };
        var newest = Version(recorded.Requisition.Etag);
        Assert.True(versions[0] < newest, $"Redis came back with version {versions[0]}, not the one from before the outage");

        await mesh.RestartRequisitionsAsync().WaitAsync(Timeout);
        await Eventually.MatchAsync(
            async () =>
            {
                var version = await CachedVersionAsync(redis, id);
                versions.Add(version);
                return version;
            },
            v => v >= newest, TimeSpan.FromSeconds(10), "the order event recorded while Redis was down, in the cache");

        var read = await mesh.RequisitionClient(_team).GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = id }, deadline: Deadline);
        Assert.Equal("received.testkit.requisition_created", read.Status.SubStatus);
        versions.Add(await CachedVersionAsync(redis, id));
        Assert.Equal(versions.OrderBy(v => v), versions);
    }

    private static long Version(string etag) => long.Parse(etag, CultureInfo.InvariantCulture);

    private static async Task<long?> CachedVersionAsync(RedisServer redis, string id)
    {
        var cached = await redis.ExecuteAsync("GET", "labmesh:status:requisition:" + id).WaitAsync(Timeout) as string;
        return cached?.IndexOf(':', StringComparison.Ordinal) is > 0 and var colon ? long.Parse(cached.AsSpan(0, colon), CultureInfo.InvariantCulture) : null;
    }
}
