using System.Collections.Concurrent;
using System.Diagnostics;
using LabMesh.Messaging.Events;
using LabMesh.Messaging.Redis;
using LabMesh.Testing;
using Microsoft.Extensions.Logging;
using static LabMesh.ServiceDefaults.Tests.Redis.RedisTestSupport;

namespace LabMesh.ServiceDefaults.Tests.Redis;

public sealed class RedisEventBusTests
{
    private const string Critical = EventTypes.LabTestResultCritical;
    private const string Ordinary = EventTypes.OrderStatusChanged;

    [Fact]
    public async Task EventBus_PublishSameIdTwice_AppendsOnce()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log);
        await using var bus = new RedisEventBus(connection, log.For<RedisEventBus>());
        var evt = NewEvent(Ordinary);

        await bus.PublishAsync(evt, CancellationToken.None).Within();
        await bus.PublishAsync(evt, CancellationToken.None).Within();
        await bus.PublishAsync(evt.Clone(), CancellationToken.None).Within();

        Assert.Equal(1L, await redis.Redis("XLEN", "labmesh:events"));
        var entries = await bus.ReadAsync(null, 10, CancellationToken.None).Within();
        Assert.Equal(evt, Assert.Single(entries).Event);
        var ttl = (long)(await redis.Redis("TTL", "labmesh:events:seen:" + evt.Id))!;
        Assert.InRange(ttl, (long)TimeSpan.FromMinutes(59).TotalSeconds, (long)TimeSpan.FromHours(1).TotalSeconds);
        log.AssertNoErrors();
    }

    [Fact]
    public async Task EventBus_StreamEntry_HoldsIdTypeAndData()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log);
        await using var bus = new RedisEventBus(connection, log.For<RedisEventBus>());
        var evt = NewEvent(Ordinary, "evt_fields");

        await bus.PublishAsync(evt, CancellationToken.None).Within();

        var entries = (object?[])(await redis.Redis("XRANGE", "labmesh:events", "-", "+"))!;
        var fields = (object?[])((object?[])Assert.Single(entries)!)[1]!;
        Assert.Equal(["id", "evt_fields", "type", Ordinary, "data"], fields.Take(5));
        log.AssertNoErrors();
    }

    [Fact]
    public async Task EventBus_ReadAsync_AfterPosition_ReturnsExactlyTheLaterEvents()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log);
        await using var bus = new RedisEventBus(connection, log.For<RedisEventBus>());
        var events = Enumerable.Range(0, 5).Select(i => NewEvent(i == 2 ? Critical : Ordinary, $"evt_{i}")).ToList();
        foreach (var evt in events)
        {
            await bus.PublishAsync(evt, CancellationToken.None).Within();
        }

        var all = await bus.ReadAsync(null, 100, CancellationToken.None).Within();
        var later = await bus.ReadAsync(all[1].Position, 100, CancellationToken.None).Within();
        var two = await bus.ReadAsync(all[1].Position, 2, CancellationToken.None).Within();
        var none = await bus.ReadAsync(all[^1].Position, 100, CancellationToken.None).Within();

        Assert.Equal(events, all.Select(e => e.Event));
        Assert.Equal(events.Skip(2), later.Select(e => e.Event));
        Assert.Equal(all.Skip(2).Select(e => e.Position), later.Select(e => e.Position));
        Assert.Equal(["evt_2", "evt_3"], two.Select(e => e.Event.Id));
        Assert.Empty(none);
        await Assert.ThrowsAsync<ArgumentException>(() => bus.ReadAsync("not-a-position", 10, CancellationToken.None)).Within();
        log.AssertNoErrors();
    }

    [Fact]
    public async Task EventBus_CriticalEvent_ReachesSubscriberOnAnotherConnectionThroughPubSub_AndLandsInStream()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var publisherConnection = await ConnectAsync(redis, log);
        await using var publisher = new RedisEventBus(publisherConnection, log.For<RedisEventBus>());

        // The other replica follows the stream only once an hour: a quick delivery can only be pub/sub.
        await using var replicaConnection = await ConnectAsync(redis, log, o => o.StreamPollInterval = TimeSpan.FromHours(1));
        await using var replica = new RedisEventBus(replicaConnection, log.For<RedisEventBus>());
        var received = new ConcurrentQueue<(BusEntry Entry, long At)>();
        var clock = Stopwatch.StartNew();
        using var subscription = replica.Subscribe((entry, _) =>
        {
            received.Enqueue((entry, clock.ElapsedTicks));
            return Task.CompletedTask;
        });
        await Eventually(
            async () => (long)((object?[])(await redis.ExecuteAsync("PUBSUB", "NUMSUB", "labmesh:critical"))!)[1]! >= 1,
            "the replica listens on labmesh:critical");

        var evt = NewEvent(Critical);
        var publishedAt = clock.ElapsedTicks;
        await publisher.PublishAsync(evt, CancellationToken.None).Within();
        await Eventually(() => !received.IsEmpty, "the critical event reaches the replica", TimeSpan.FromSeconds(2));

        var (entry, at) = Assert.Single(received);
        Assert.Equal(evt, entry.Event);
        Assert.True(TimeSpan.FromTicks((at - publishedAt) * TimeSpan.TicksPerSecond / Stopwatch.Frequency) < TimeSpan.FromSeconds(1));
        var stored = Assert.Single(await publisher.ReadAsync(null, 10, CancellationToken.None).Within());
        Assert.Equal(evt, stored.Event);
        Assert.Equal(stored.Position, entry.Position);
        log.AssertNoErrors();
    }

    [Fact]
    public async Task EventBus_Subscribe_DeliversEachEventOnce_ThoughCriticalOnesArriveBothWays()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var publisherConnection = await ConnectAsync(redis, log);
        await using var publisher = new RedisEventBus(publisherConnection, log.For<RedisEventBus>());
        await using var replicaConnection = await ConnectAsync(redis, log, o => o.StreamPollInterval = TimeSpan.FromMilliseconds(5));
        await using var replica = new RedisEventBus(replicaConnection, log.For<RedisEventBus>());
        var received = new ConcurrentQueue<BusEntry>();
        using var subscription = replica.Subscribe((entry, _) =>
        {
            received.Enqueue(entry);
            return Task.CompletedTask;
        });
        await Eventually(
            async () => (long)((object?[])(await redis.ExecuteAsync("PUBSUB", "NUMSUB", "labmesh:critical"))!)[1]! >= 1,
            "the replica listens on labmesh:critical");

        var events = Enumerable.Range(0, 60).Select(i => NewEvent(i % 3 == 0 ? Critical : Ordinary, $"evt_{i:D2}")).ToList();
        foreach (var evt in events)
        {
            await publisher.PublishAsync(evt, CancellationToken.None).Within();
            if (evt.Id.EndsWith('5'))
            {
                await Task.Delay(10);
            }
        }

        await Eventually(() => received.Count >= events.Count, "every event arrives");
        await Stays(() => received.Count == events.Count, "no event arrives twice", TimeSpan.FromMilliseconds(300));

        Assert.Equal(events.Count, received.Count);
        Assert.Equal(events.Select(e => e.Id).Order(), received.Select(e => e.Event.Id).Order());
        Assert.Equal(
            events.Where(e => e.Type == Ordinary).Select(e => e.Id),
            received.Where(e => e.Event.Type == Ordinary).Select(e => e.Event.Id));
        log.AssertNoErrors();
    }

    [Fact]
    public async Task EventBus_Subscribe_DeliversOnlyEventsPublishedAfterSubscribing()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log);
        await using var bus = new RedisEventBus(connection, log.For<RedisEventBus>());
        await bus.PublishAsync(NewEvent(Ordinary, "before_1"), CancellationToken.None).Within();
        await bus.PublishAsync(NewEvent(Critical, "before_2"), CancellationToken.None).Within();
        var first = new ConcurrentQueue<string>();
        using var early = bus.Subscribe((entry, _) =>
        {
            first.Enqueue(entry.Event.Id);
            return Task.CompletedTask;
        });
        await bus.PublishAsync(NewEvent(Ordinary, "after_1"), CancellationToken.None).Within();

        // A second subscriber joins a feed that is already running.
        var second = new ConcurrentQueue<string>();
        using var late = bus.Subscribe((entry, _) =>
        {
            second.Enqueue(entry.Event.Id);
            return Task.CompletedTask;
        });
        await bus.PublishAsync(NewEvent(Critical, "after_2"), CancellationToken.None).Within();
        await bus.PublishAsync(NewEvent(Ordinary, "after_3"), CancellationToken.None).Within();

        await Eventually(() => first.Count >= 3 && second.Count >= 2, "the later events arrive");
        await Stays(() => first.Count == 3 && second.Count == 2, "no earlier or repeated event arrives", TimeSpan.FromMilliseconds(200));
        Assert.Equal(["after_1", "after_2", "after_3"], first.Order());
        Assert.Equal(["after_2", "after_3"], second.Order());
        log.AssertNoErrors();
    }

    [Fact]
    public async Task EventBus_Publish_Throws_WhenRedisIsDown()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log);
        await using var bus = new RedisEventBus(connection, log.For<RedisEventBus>());

        await redis.StopAsync().Within();

        await Assert.ThrowsAsync<RedisUnavailableException>(() => bus.PublishAsync(NewEvent(Ordinary), CancellationToken.None)).Within();
        await Assert.ThrowsAsync<RedisUnavailableException>(() => bus.PublishAsync(NewEvent(Critical), CancellationToken.None)).Within();
        await Assert.ThrowsAsync<RedisUnavailableException>(() => bus.ReadAsync(null, 10, CancellationToken.None)).Within();
        log.AssertNoErrors();
    }

    [Fact]
    public async Task EventBus_Publish_Throws_WhenRedisDoesNotAnswerInTime()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log, o => o.Configuration = redis.Configuration + ",syncTimeout=300");
        await using var bus = new RedisEventBus(connection, log.For<RedisEventBus>());

        await redis.Redis("CLIENT", "PAUSE", "1500", "ALL");
        var elapsed = Stopwatch.StartNew();
        await Assert.ThrowsAsync<RedisUnavailableException>(() => bus.PublishAsync(NewEvent(Ordinary), CancellationToken.None)).Within();

        Assert.True(elapsed.Elapsed < TimeSpan.FromMilliseconds(1200), $"took {elapsed.Elapsed}");
        log.AssertNoErrors();
    }

    [Fact]
    public async Task EventBus_PublishCancelled_ThrowsOperationCanceled()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log);
        await using var bus = new RedisEventBus(connection, log.For<RedisEventBus>());

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => bus.PublishAsync(NewEvent(Ordinary), new CancellationToken(canceled: true))).Within();
        log.AssertNoErrors();
    }

    [Fact]
    public async Task EventBus_HandlerException_IsLogged_AndLaterEventsStillArrive()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log);
        await using var bus = new RedisEventBus(connection, log.For<RedisEventBus>());
        var received = new ConcurrentQueue<string>();
        using var subscription = bus.Subscribe((entry, _) =>
        {
            received.Enqueue(entry.Event.Id);
            return entry.Event.Id == "evt_bad" ? throw new InvalidOperationException("handler broke") : Task.CompletedTask;
        });

        await bus.PublishAsync(NewEvent(Critical, "evt_bad"), CancellationToken.None).Within();
        await bus.PublishAsync(NewEvent(Ordinary, "evt_good"), CancellationToken.None).Within();

        await Eventually(() => received.Contains("evt_good"), "the event after the failure arrives");
        var error = Assert.Single(log.Records, r => r.Level == LogLevel.Error);
        Assert.Contains("evt_bad", error.Message, StringComparison.Ordinal);
        Assert.IsType<InvalidOperationException>(error.Exception);
    }

    [Fact]
    public async Task EventBus_Subscriber_KeepsReceiving_AfterRedisRestart()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var publisherConnection = await ConnectAsync(redis, log);
        await using var publisher = new RedisEventBus(publisherConnection, log.For<RedisEventBus>());
        await using var replicaConnection = await ConnectAsync(redis, log);
        await using var replica = new RedisEventBus(replicaConnection, log.For<RedisEventBus>());
        var received = new ConcurrentQueue<string>();
        using var subscription = replica.Subscribe((entry, _) =>
        {
            received.Enqueue(entry.Event.Id);
            return Task.CompletedTask;
        });
        await publisher.PublishAsync(NewEvent(Ordinary, "evt_before"), CancellationToken.None).Within();
        await Eventually(() => received.Contains("evt_before"), "the first event arrives");

        await redis.StopAsync().Within();
        await Task.Delay(200);
        await redis.StartAsync().Within();
        await Eventually(() => publisherConnection.IsConnected && replicaConnection.IsConnected, "both replicas reconnect");
        await Eventually(
            async () => (long)((object?[])(await redis.ExecuteAsync("PUBSUB", "NUMSUB", "labmesh:critical"))!)[1]! >= 1,
            "the replica listens on labmesh:critical again");

        await publisher.PublishAsync(NewEvent(Critical, "evt_after_critical"), CancellationToken.None).Within();
        await publisher.PublishAsync(NewEvent(Ordinary, "evt_after"), CancellationToken.None).Within();

        await Eventually(() => received.Contains("evt_after") && received.Contains("evt_after_critical"), "events after the restart arrive");
        await Stays(() => received.Count == 3, "no event arrives twice across the restart", TimeSpan.FromMilliseconds(200));
        Assert.Equal(["evt_after", "evt_after_critical", "evt_before"], received.Order());
        log.AssertNoErrors();
    }

    [Fact]
    public async Task EventBus_Subscribe_DisposedSubscription_ReceivesNothingMore()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log);
        await using var bus = new RedisEventBus(connection, log.For<RedisEventBus>());
        var received = new ConcurrentQueue<string>();
        var subscription = bus.Subscribe((entry, _) =>
        {
            received.Enqueue(entry.Event.Id);
            return Task.CompletedTask;
        });
        await bus.PublishAsync(NewEvent(Ordinary, "evt_1"), CancellationToken.None).Within();
        await Eventually(() => received.Count == 1, "the first event arrives");

        subscription.Dispose();
        await bus.PublishAsync(NewEvent(Critical, "evt_2"), CancellationToken.None).Within();
        await bus.PublishAsync(NewEvent(Ordinary, "evt_3"), CancellationToken.None).Within();
        await Stays(() => received.Count == 1, "nothing arrives after the subscription is disposed", TimeSpan.FromMilliseconds(300));

        Assert.Equal(["evt_1"], received);
        log.AssertNoErrors();
    }
}
