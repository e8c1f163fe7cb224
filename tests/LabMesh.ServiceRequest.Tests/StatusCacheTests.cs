using System.Text;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.ServiceDefaults.Events;
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
        _host = await ServiceRequestHostFixture.StartAsync(settings).WaitAsync(Timeout);
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

    private static string Key(string id) => "labmesh:status:servicerequest:" + id;

    private async Task<string?> CachedAsync(string id)
    {
        var value = await _redis.ExecuteAsync("GET", Key(id)).WaitAsync(Timeout);
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
