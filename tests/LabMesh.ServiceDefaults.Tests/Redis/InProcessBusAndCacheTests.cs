using System.Collections.Concurrent;
using System.Text;
using LabMesh.Messaging.Caching;
using LabMesh.Messaging.Events;
using LabMesh.Messaging.Redis;
using Microsoft.Extensions.Logging;
using static LabMesh.ServiceDefaults.Tests.Redis.RedisTestSupport;

namespace LabMesh.ServiceDefaults.Tests.Redis;

/// <summary>The in-process cache and bus of the all-in-one host behave like their Redis counterparts.</summary>
public sealed class InProcessBusAndCacheTests
{
    private const string Critical = EventTypes.LabTestResultCritical;
    private const string Ordinary = EventTypes.OrderStatusChanged;

    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    private static string? Text(byte[]? bytes) => bytes is null ? null : Encoding.UTF8.GetString(bytes);

    [Fact]
    public async Task InMemoryStatusCache_OlderVersion_DoesNotOverwriteNewer_AndEqualIsNoOp()
    {
        var cache = new InMemoryStatusCache(TimeSpan.FromHours(1));

        await cache.SetAsync("sr", "1", 5, Bytes("v5"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "1", 4, Bytes("v4"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "1", 5, Bytes("v5 again"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "2", 1, Bytes("a"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "2", 2, Bytes("b"), CancellationToken.None).Within();

        var values = await cache.GetManyAsync("sr", ["1", "2"], CancellationToken.None).Within();
        Assert.Equal(["v5", "b"], values.Select(Text));
    }

    [Fact]
    public async Task InMemoryStatusCache_GetMany_ReturnsHitsAndMissesInOrder_AsCopies()
    {
        var cache = new InMemoryStatusCache(TimeSpan.FromHours(1));
        await cache.SetAsync("sr", "1", 1, Bytes("one"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "3", 1, Bytes("three"), CancellationToken.None).Within();
        await cache.SetAsync("req", "2", 1, Bytes("other kind"), CancellationToken.None).Within();

        var values = await cache.GetManyAsync("sr", ["1", "2", "3", "4"], CancellationToken.None).Within();
        Assert.Equal(["one", null, "three", null], values.Select(Text));

        values[0]![0] = (byte)'X';
        Assert.Equal("one", Text((await cache.GetManyAsync("sr", ["1"], CancellationToken.None).Within())[0]));
    }

    [Fact]
    public async Task InMemoryStatusCache_Entry_ExpiresAfterTtl_AndThenAnyVersionWrites()
    {
        var time = new ManualTimeProvider();
        var cache = new InMemoryStatusCache(TimeSpan.FromMinutes(10), time);
        await cache.SetAsync("sr", "1", 7, Bytes("seven"), CancellationToken.None).Within();

        time.Advance(TimeSpan.FromMinutes(9));
        Assert.Equal("seven", Text((await cache.GetManyAsync("sr", ["1"], CancellationToken.None).Within())[0]));
        time.Advance(TimeSpan.FromMinutes(2));
        Assert.Null((await cache.GetManyAsync("sr", ["1"], CancellationToken.None).Within())[0]);

        // As in Redis, an expired entry is gone, so an older version is written.
        await cache.SetAsync("sr", "1", 3, Bytes("three"), CancellationToken.None).Within();
        Assert.Equal("three", Text((await cache.GetManyAsync("sr", ["1"], CancellationToken.None).Within())[0]));
    }

    [Fact]
    public async Task InProcessEventBus_PublishSameIdTwice_AppendsOnce()
    {
        using var log = new TestLog();
        using var bus = new InProcessEventBus(log.For<InProcessEventBus>());
        var evt = NewEvent(Ordinary);

        await bus.PublishAsync(evt, CancellationToken.None).Within();
        await bus.PublishAsync(evt.Clone(), CancellationToken.None).Within();

        var entry = Assert.Single(await bus.ReadAsync(null, 10, CancellationToken.None).Within());
        Assert.Equal("1", entry.Position);
        Assert.Equal(evt, entry.Event);
        log.AssertNoErrors();
    }

    [Fact]
    public async Task InProcessEventBus_ReadAsync_AfterPosition_ReturnsExactlyTheLaterEvents()
    {
        using var log = new TestLog();
        using var bus = new InProcessEventBus(log.For<InProcessEventBus>());
        var events = Enumerable.Range(0, 5).Select(i => NewEvent(Ordinary, $"evt_{i}")).ToList();
        foreach (var evt in events)
        {
            await bus.PublishAsync(evt, CancellationToken.None).Within();
        }

        var all = await bus.ReadAsync(null, 100, CancellationToken.None).Within();
        var later = await bus.ReadAsync(all[1].Position, 100, CancellationToken.None).Within();
        var two = await bus.ReadAsync(all[1].Position, 2, CancellationToken.None).Within();

        Assert.Equal(events, all.Select(e => e.Event));
        Assert.Equal(["1", "2", "3", "4", "5"], all.Select(e => e.Position));
        Assert.Equal(events.Skip(2), later.Select(e => e.Event));
        Assert.Equal(["evt_2", "evt_3"], two.Select(e => e.Event.Id));
        Assert.Empty(await bus.ReadAsync("5", 100, CancellationToken.None).Within());
        await Assert.ThrowsAsync<ArgumentException>(() => bus.ReadAsync("x", 10, CancellationToken.None)).Within();
        log.AssertNoErrors();
    }

    [Fact]
    public async Task InProcessEventBus_KeepsTheLastEventsOnly()
    {
        using var log = new TestLog();
        using var bus = new InProcessEventBus(log.For<InProcessEventBus>(), capacity: 3);
        for (var i = 1; i <= 5; i++)
        {
            await bus.PublishAsync(NewEvent(Ordinary, $"evt_{i}"), CancellationToken.None).Within();
        }

        var kept = await bus.ReadAsync(null, 10, CancellationToken.None).Within();
        var afterEvicted = await bus.ReadAsync("1", 10, CancellationToken.None).Within();

        Assert.Equal(["3", "4", "5"], kept.Select(e => e.Position));
        Assert.Equal(["evt_3", "evt_4", "evt_5"], afterEvicted.Select(e => e.Event.Id));
        // After 1, event 2 is gone, so a reader resuming there must be told; after 2 nothing is missing.
        Assert.False(await bus.RetainsAfterAsync("1", CancellationToken.None).Within());
        Assert.True(await bus.RetainsAfterAsync("2", CancellationToken.None).Within());
        Assert.True(await bus.RetainsAfterAsync("5", CancellationToken.None).Within());
        log.AssertNoErrors();
    }

    [Fact]
    public async Task InProcessEventBus_ACursorFromAnEarlierRun_IsExpired_WhileEventIdsStillResolve()
    {
        using var log = new TestLog();
        var started = DateTimeOffset.UnixEpoch.AddYears(56);
        string cursor;
        using (var before = new InProcessEventBus(log.For<InProcessEventBus>(), firstPosition: InProcessEventBus.FirstPositionAt(started)))
        {
            foreach (var id in new[] { "a1", "b1", "a2" })
            {
                await before.PublishAsync(NewEvent(Ordinary, id), CancellationToken.None).Within();
            }

            // A subscriber has read up to b1.
            cursor = (await before.FindPositionAsync("b1", CancellationToken.None).Within())!;
        }

        // The host restarts; each relay publishes its retained events again, one store after the other.
        using var after = new InProcessEventBus(log.For<InProcessEventBus>(), firstPosition: InProcessEventBus.FirstPositionAt(started.AddSeconds(3)));
        foreach (var id in new[] { "b1", "a1", "a2" })
        {
            await after.PublishAsync(NewEvent(Ordinary, id), CancellationToken.None).Within();
        }

        var b1 = (await after.FindPositionAsync("b1", CancellationToken.None).Within())!;

        // The old cursor names nothing of this run (reading on from it would skip and repeat): it is expired.
        Assert.False(await after.RetainsAfterAsync(cursor, CancellationToken.None).Within());
        Assert.True(BusPosition.Compare(b1, cursor) > 0);
        // Resuming by the last event id still works.
        Assert.Equal(["a1", "a2"], (await after.ReadAsync(b1, 10, CancellationToken.None).Within()).Select(e => e.Event.Id));
        log.AssertNoErrors();
    }

    [Fact]
    public async Task InProcessEventBus_Subscribe_DeliversNewEventsOnceInOrder()
    {
        using var log = new TestLog();
        using var bus = new InProcessEventBus(log.For<InProcessEventBus>());
        await bus.PublishAsync(NewEvent(Ordinary, "before"), CancellationToken.None).Within();
        var received = new ConcurrentQueue<BusEntry>();
        using var subscription = bus.Subscribe((entry, _) =>
        {
            received.Enqueue(entry);
            return Task.CompletedTask;
        });

        var events = Enumerable.Range(0, 200).Select(i => NewEvent(i % 4 == 0 ? Critical : Ordinary, $"evt_{i:D3}")).ToList();
        foreach (var evt in events)
        {
            await bus.PublishAsync(evt, CancellationToken.None).Within();
            await bus.PublishAsync(evt, CancellationToken.None).Within();
        }

        await Eventually(() => received.Count >= events.Count, "every event arrives");
        await Stays(() => received.Count == events.Count, "no event arrives twice", TimeSpan.FromMilliseconds(100));
        Assert.Equal(events.Select(e => e.Id), received.Select(e => e.Event.Id));
        Assert.Equal(Enumerable.Range(2, 200).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), received.Select(e => e.Position));
        log.AssertNoErrors();
    }

    [Fact]
    public async Task InProcessEventBus_HandlerException_IsLogged_AndLaterEventsStillArrive()
    {
        using var log = new TestLog();
        using var bus = new InProcessEventBus(log.For<InProcessEventBus>());
        var received = new ConcurrentQueue<string>();
        using var subscription = bus.Subscribe(async (entry, _) =>
        {
            await Task.Yield();
            received.Enqueue(entry.Event.Id);
            if (entry.Event.Id == "evt_bad")
            {
                throw new InvalidOperationException("handler broke");
            }
        });

        await bus.PublishAsync(NewEvent(Critical, "evt_bad"), CancellationToken.None).Within();
        await bus.PublishAsync(NewEvent(Ordinary, "evt_good"), CancellationToken.None).Within();

        await Eventually(() => received.Contains("evt_good"), "the event after the failure arrives");
        var error = Assert.Single(log.Records, r => r.Level == LogLevel.Error);
        Assert.Contains("evt_bad", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task InProcessEventBus_DisposedSubscription_ReceivesNothingMore()
    {
        using var log = new TestLog();
        using var bus = new InProcessEventBus(log.For<InProcessEventBus>());
        var received = new ConcurrentQueue<string>();
        var subscription = bus.Subscribe((entry, _) =>
        {
            received.Enqueue(entry.Event.Id);
            return Task.CompletedTask;
        });
        await bus.PublishAsync(NewEvent(Ordinary, "evt_1"), CancellationToken.None).Within();
        await Eventually(() => received.Count == 1, "the first event arrives");

        subscription.Dispose();
        await bus.PublishAsync(NewEvent(Ordinary, "evt_2"), CancellationToken.None).Within();
        await Stays(() => received.Count == 1, "nothing arrives after the subscription is disposed", TimeSpan.FromMilliseconds(100));

        Assert.Equal(["evt_1"], received);
        log.AssertNoErrors();
    }
}
