using Google.Protobuf.WellKnownTypes;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Messaging.Events;
using LabMesh.Messaging.Redis;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace LabMesh.Notification.Tests.Service;

/// <summary>
/// A critical result is published twice (at once after its commit, and by the outbox relay); the bus keeps one entry
/// within its dedup window, and a Subscribe stream drops an id it has sent even when the stream holds it twice.
/// </summary>
public sealed class DuplicateEntryTests
{
    private readonly string _team = "team-" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task SameEventTwiceOnTheStream_PastTheBusDedupWindow_ReachesTheSubscriberOnce_AndTheCursorMovesPastBoth()
    {
        await using var mesh = await NotificationMesh.StartAsync(null, "b");
        await using var reader = await StreamReader.OpenAsync(mesh.Notifications("b", _team), new SubscribeRequest { Filter = new EventFilter() });
        using var redis = new RedisConnection(Options.Create(new RedisOptions { Configuration = mesh.Redis.Configuration }), NullLogger<RedisConnection>.Instance);
        await using var bus = new RedisEventBus(redis, NullLogger<RedisEventBus>.Instance);
        var critical = Critical(_team);
        var after = Critical(_team);

        await bus.PublishAsync(critical, CancellationToken.None);
        // The dedup marker gone (its window passed while the relay was behind): the relay's publish appends the id again.
        await mesh.Redis.ExecuteAsync("DEL", "labmesh:events:seen:" + critical.Id);
        await bus.PublishAsync(critical, CancellationToken.None);
        await bus.PublishAsync(after, CancellationToken.None);
        var entries = await bus.ReadAsync(null, 100, CancellationToken.None);
        Assert.Equal(2, entries.Count(e => e.Event.Id == critical.Id));

        var events = await reader.EventsAsync(2);
        Assert.Equal([critical.Id, after.Id], events.Select(e => e.Event.Id));
        Assert.Equal(entries.Single(e => e.Event.Id == after.Id).Position, events[1].Cursor);
        Assert.Empty(reader.DrainEvents());
    }

    private static Event Critical(string team) => new()
    {
        Id = Guid.CreateVersion7().ToString(),
        Type = EventTypes.LabTestResultCritical,
        CreatedAt = Timestamp.FromDateTime(DateTime.UtcNow),
        TeamId = team,
        RequisitionId = "order-1",
        Source = "test",
        CriticalResult = new CriticalResult { ReportId = "report-" + Guid.NewGuid().ToString("N")[..8], ReportVersion = 1, Status = "partial", Interpretation = "critical" },
    };
}
