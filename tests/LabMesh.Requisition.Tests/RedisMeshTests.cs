using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Messaging.Events;
using LabMesh.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.Requisition.Tests;

/// <summary>
/// Both services on PostgreSQL with a real Redis as status cache and event bus, as deployed; Redis
/// is stopped and restarted in the middle of an order.
/// </summary>
public sealed class RedisMeshTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly string _team = "team-" + Guid.NewGuid().ToString("N")[..8];
    private RedisServer _redis = null!;
    private Mesh _mesh = null!;

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    public async Task InitializeAsync()
    {
        _redis = await RedisServer.StartNewAsync().WaitAsync(Timeout);
        _mesh = await Mesh.StartAsync(Backend.Postgres, _redis.Configuration + ",syncTimeout=1000").WaitAsync(TimeSpan.FromSeconds(120));
    }

    public async Task DisposeAsync()
    {
        var logs = new[] { _mesh.Requisitions.Logs, _mesh.ServiceRequests.Logs };
        await _mesh.DisposeAsync();
        await _redis.DisposeAsync();
        // Redis going away is expected here: only the Redis adapter and the outbox relays may complain.
        Assert.DoesNotContain(logs.SelectMany(l => l.Errors),
            e => !e.Category.Contains("Redis", StringComparison.Ordinal) && !e.Category.Contains("Outbox", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RedisRestartedMidOrder_StatusReadsKeepWorking_AndEveryEventReachesTheStream()
    {
        var client = _mesh.RequisitionClient(_team);
        var id = (await client.CreateRequisitionAsync(RequisitionServiceTests.NewOrder(), deadline: Deadline)).Requisition.Id;
        var cached = await client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = id }, deadline: Deadline);
        Assert.Equal("received.testkit.ordered", cached.Status.SubStatus);

        await _redis.StopAsync().WaitAsync(Timeout);
        var recorded = await client.RecordOrderEventAsync(new RecordOrderEventRequest { Id = id, Status = "received.testkit.requisition_created" }, deadline: Deadline);
        var whileDown = await client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = id }, deadline: Deadline);
        Assert.Equal(recorded.Requisition.Etag, whileDown.Status.Etag);
        Assert.All(recorded.Requisition.ServiceRequests, s => Assert.Equal(TaskBusinessStatus.OrderConfirmed, s.TaskBusinessStatus));

        await _redis.StartAsync().WaitAsync(Timeout);

        var healed = await Eventually.MatchAsync(() => _redis.ExecuteAsync("GET", "labmesh:status:requisition:" + id),
            v => v is string text && text.StartsWith(recorded.Requisition.Etag + ":", StringComparison.Ordinal), TimeSpan.FromSeconds(20), "the cache to heal");
        Assert.NotNull(healed);
        var events = await Eventually.MatchAsync(() => StreamAsync(id),
            e => e.Any(x => x.OrderStatusChanged?.Status == "received.testkit.requisition_created") &&
                 e.Count(x => x.ServiceRequestStatusChanged?.TaskBusinessStatus == "ORDER_CONFIRMED") == 2,
            TimeSpan.FromSeconds(20), "the events written while Redis was down");
        Assert.Equal(events.Count, events.Select(e => e.Id).Distinct().Count());
    }

    /// <summary>The events of one requisition in the Redis stream, as a consumer reads them.</summary>
    private async Task<List<Event>> StreamAsync(string requisitionId)
    {
        var bus = _mesh.Requisitions.Services.GetRequiredService<IEventBus>();
        Assert.IsType<RedisEventBus>(bus);
        var entries = await bus.ReadAsync(null, 10_000, CancellationToken.None).WaitAsync(Timeout);
        return entries.Select(e => e.Event).Where(e => e.RequisitionId == requisitionId).ToList();
    }
}
