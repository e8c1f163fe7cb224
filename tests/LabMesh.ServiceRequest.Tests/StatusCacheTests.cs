using System.Globalization;
using System.Text;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Messaging.Events;
using Microsoft.Extensions.DependencyInjection;
using LabMesh.Testing;

namespace LabMesh.ServiceRequest.Tests;

/// <summary>
/// The ServiceRequest service with a real Redis as status cache and event bus, Redis stopped and
/// restarted in the middle: writes and reads keep working, no event is lost, the cache heals.
/// </summary>
public sealed class StatusCacheTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly string _team = "team-" + Guid.NewGuid().ToString("N")[..8];
    private RedisServer _redis = null!;
    private ServiceHost _host = null!;
    private Grpc.Net.Client.GrpcChannel _channel = null!;

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartNewAsync().WaitAsync(Timeout);
        var settings = await TestSettings.CreateAsync(Backend.Sqlite, _redis.Configuration + ",syncTimeout=1000");
        _host = await MeshHosts.StartServiceRequestsAsync(settings).WaitAsync(Timeout);
        _channel = _host.CreateChannel();
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        var logs = _host.Logs;
        await _host.DisposeAsync();
        await _redis.DisposeAsync();
        // Redis going away is expected here: only the Redis adapter and the outbox relay may complain.
        Assert.DoesNotContain(logs.Errors, e => !e.Category.Contains("Redis", StringComparison.Ordinal) && !e.Category.Contains("Outbox", StringComparison.Ordinal));
    }

    [Fact]
    public async Task StatusChange_IsWrittenThroughToRedisWithItsVersion()
    {
        var client = ServiceRequestHostFixture.Client(_channel, _team, "partner-a");
        var serviceRequest = (await ServiceRequestServiceTests.CreateConfirmedAsync(ServiceRequestHostFixture.Client(_channel, _team), 1))[0];

        var updated = await client.UpdateTaskStatusAsync(new UpdateTaskStatusRequest
        {
            Id = serviceRequest.Id, TaskBusinessStatus = TaskBusinessStatus.OrderConfirmed,
        }, deadline: Deadline);

        var cached = await CachedAsync(serviceRequest.Id);
        Assert.StartsWith(updated.ServiceRequest.Etag + ":", cached, StringComparison.Ordinal);
        var ttl = (long)(await _redis.ExecuteAsync("PTTL", Key(serviceRequest.Id)).WaitAsync(Timeout))!;
        Assert.InRange(ttl, 1, (long)TimeSpan.FromHours(1).TotalMilliseconds);
        var batch = await client.BatchGetStatusAsync(new BatchGetStatusRequest { Ids = { serviceRequest.Id } }, deadline: Deadline);
        Assert.Equal(TaskBusinessStatus.OrderConfirmed, batch.Statuses.Single().TaskBusinessStatus);
    }

    [Fact]
    public async Task CacheMiss_IsReadThroughAndFilled()
    {
        var owner = ServiceRequestHostFixture.Client(_channel, _team);
        var serviceRequest = (await ServiceRequestServiceTests.CreateConfirmedAsync(owner, 1))[0];
        await _redis.ExecuteAsync("DEL", Key(serviceRequest.Id)).WaitAsync(Timeout);

        var batch = await owner.BatchGetStatusAsync(new BatchGetStatusRequest { Ids = { serviceRequest.Id } }, deadline: Deadline);

        Assert.Equal(serviceRequest.Etag, batch.Statuses.Single().Etag);
        Assert.StartsWith(serviceRequest.Etag + ":", await CachedAsync(serviceRequest.Id), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RedisDown_WritesAndReadsSucceed_ThenTheCacheHealsAndNoEventIsLost()
    {
        var partner = ServiceRequestHostFixture.Client(_channel, _team, "partner-a");
        var serviceRequest = (await ServiceRequestServiceTests.CreateConfirmedAsync(ServiceRequestHostFixture.Client(_channel, _team), 1))[0];
        await partner.UpdateTaskStatusAsync(new UpdateTaskStatusRequest
        {
            Id = serviceRequest.Id, TaskBusinessStatus = TaskBusinessStatus.OrderConfirmed,
        }, deadline: Deadline);

        await _redis.StopAsync().WaitAsync(Timeout);
        var whileDown = await partner.UpdateTaskStatusAsync(new UpdateTaskStatusRequest
        {
            Id = serviceRequest.Id, TaskBusinessStatus = TaskBusinessStatus.AppointmentAttended,
        }, deadline: Deadline);
        var read = await partner.BatchGetStatusAsync(new BatchGetStatusRequest { Ids = { serviceRequest.Id } }, deadline: Deadline);
        Assert.Equal(TaskBusinessStatus.AppointmentAttended, read.Statuses.Single().TaskBusinessStatus);

        await _redis.StartAsync().WaitAsync(Timeout);

        await Eventually.MatchAsync(() => CachedAsync(serviceRequest.Id), v => v?.StartsWith(whileDown.ServiceRequest.Etag + ":", StringComparison.Ordinal) == true,
            TimeSpan.FromSeconds(20), "the cache to heal");
        var events = await Eventually.MatchAsync(() => StreamEventsAsync(serviceRequest.Id),
            e => e.Any(x => x.ServiceRequestStatusChanged.TaskBusinessStatus == "APPOINTMENT_ATTENDED"), TimeSpan.FromSeconds(20),
            "the event written while Redis was down");
        Assert.Equal(events.Select(e => e.Id).Distinct().Count(), events.Count);
    }

    [Fact]
    public async Task StatusChangedWhileRedisDown_ThenProcessDies_ReachesTheCacheAfterRestart_AndNeverGoesBack()
    {
        // A Redis that keeps its data (AOF), as in production: it comes back holding the old status.
        await using var redis = await RedisServer.StartNewAsync(appendOnly: true).WaitAsync(Timeout);
        var settings = await TestSettings.CreateAsync(Backend.Sqlite, redis.Configuration + ",syncTimeout=1000");
        var first = await MeshHosts.StartServiceRequestsAsync(settings).WaitAsync(Timeout);
        string id;
        LabMesh.Contracts.ServiceRequest.V1.ServiceRequest before, whileDown;
        using (var channel = first.CreateChannel())
        {
            var partner = ServiceRequestHostFixture.Client(channel, _team, "partner-a");
            id = (await ServiceRequestServiceTests.CreateConfirmedAsync(ServiceRequestHostFixture.Client(channel, _team), 1))[0].Id;
            before = (await partner.UpdateTaskStatusAsync(new UpdateTaskStatusRequest
            {
                Id = id, TaskBusinessStatus = TaskBusinessStatus.OrderConfirmed,
            }, deadline: Deadline)).ServiceRequest;
            await Eventually.MatchAsync(() => CachedAsync(redis, id), v => CachedVersion(v) == long.Parse(before.Etag, CultureInfo.InvariantCulture),
                Timeout, "the first status in the cache");

            await redis.StopAsync().WaitAsync(Timeout);
            whileDown = (await partner.UpdateTaskStatusAsync(new UpdateTaskStatusRequest
            {
                Id = id, TaskBusinessStatus = TaskBusinessStatus.AppointmentAttended,
            }, deadline: Deadline)).ServiceRequest;
        }

        // The process goes away with the write it held back for Redis.
        await first.DisposeAsync();
        await redis.StartAsync().WaitAsync(Timeout);
        var versions = new List<long?> { CachedVersion(await CachedAsync(redis, id)) };
        Assert.Equal(long.Parse(before.Etag, CultureInfo.InvariantCulture), versions[0]);

        await using var second = await MeshHosts.StartServiceRequestsAsync(settings).WaitAsync(Timeout);
        var newest = long.Parse(whileDown.Etag, CultureInfo.InvariantCulture);
        await Eventually.MatchAsync(
            async () =>
            {
                var version = CachedVersion(await CachedAsync(redis, id));
                versions.Add(version);
                return version;
            },
            v => v == newest, TimeSpan.FromSeconds(10), "the status changed while Redis was down, in the cache");

        // Reads through the restarted service and a later look at the cache keep the newest version.
        using var again = second.CreateChannel();
        var read = await ServiceRequestHostFixture.Client(again, _team, "partner-a")
            .BatchGetStatusAsync(new BatchGetStatusRequest { Ids = { id } }, deadline: Deadline);
        Assert.Equal(TaskBusinessStatus.AppointmentAttended, read.Statuses.Single().TaskBusinessStatus);
        versions.Add(CachedVersion(await CachedAsync(redis, id)));
        Assert.Equal(versions.OrderBy(v => v), versions);
        Assert.Equal(newest, versions[^1]);
    }

    private static long? CachedVersion(string? cached) =>
        cached?.IndexOf(':', StringComparison.Ordinal) is > 0 and var colon ? long.Parse(cached.AsSpan(0, colon), CultureInfo.InvariantCulture) : null;

    private static string Key(string id) => "labmesh:status:servicerequest:" + id;

    private Task<string?> CachedAsync(string id) => CachedAsync(_redis, id);

    private static async Task<string?> CachedAsync(RedisServer redis, string id)
    {
        var value = await redis.ExecuteAsync("GET", Key(id)).WaitAsync(Timeout);
        return value switch
        {
            byte[] bytes => Encoding.Latin1.GetString(bytes),
            string text => text,
            _ => null,
        };
    }

    /// <summary>Every event in the Redis stream about one service request, read as a consumer reads it (the stream restarts empty with Redis).</summary>
    private async Task<List<Event>> StreamEventsAsync(string serviceRequestId)
    {
        var bus = _host.Services.GetRequiredService<IEventBus>();
        Assert.IsType<RedisEventBus>(bus);
        var entries = await bus.ReadAsync(null, 10_000, CancellationToken.None).WaitAsync(Timeout);
        return entries.Select(e => e.Event).Where(e => e.ServiceRequestId == serviceRequestId).ToList();
    }
}
