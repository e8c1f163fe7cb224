using System.Collections.Concurrent;
using LabMesh.Contracts.Common.V1;
using LabMesh.Messaging.Events;
using LabMesh.Messaging.Redis;
using LabMesh.Messaging.Storage;
using LabMesh.Testing;
using Microsoft.Extensions.Logging;
using static LabMesh.ServiceDefaults.Tests.Redis.RedisTestSupport;

namespace LabMesh.ServiceDefaults.Tests.Redis;

/// <summary>
/// <see cref="OutboxRelay.Expedite"/>: a critical event published at once after its commit, ahead of the outbox's
/// backlog, with the outbox row still the durable record. A real Redis, a real SQLite store, and a subscriber on a
/// connection of its own (another replica).
/// </summary>
public sealed class OutboxFastPathTests
{
    [Fact]
    public async Task Expedited_ThenRelayed_IsOnTheStreamOnce_AheadOfTheBacklog_AndReachesTheSubscriberOnce()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var store = await OutboxStoreAsync(log);
        await using var connection = await ConnectAsync(redis, log);
        await using var bus = new RedisEventBus(connection, log.For<RedisEventBus>());
        var (subscriberConnection, subscriberBus, seen) = await SubscriberAsync(redis, log);
        await using var _ = subscriberConnection;
        await using var __ = subscriberBus;
        var relay = new OutboxRelay(store, bus, new OutboxRelayOptions { PollInterval = TimeSpan.FromMinutes(10) }, log.For<OutboxRelay>());

        // A routine event committed earlier and not relayed yet (the backlog), then the critical one.
        var routine = await CommitAsync(store, NewEvent(EventTypes.OrderStatusChanged));
        var critical = await CommitAsync(store, NewEvent(EventTypes.LabTestResultCritical));

        relay.Expedite(critical);

        await Eventually(() => seen.Contains(critical.Id), "the expedited critical event at the subscriber");
        Assert.DoesNotContain(routine.Id, seen);
        Assert.Equal(1L, await redis.Redis("XLEN", "labmesh:events"));

        // The relay's pass publishes both rows in order (the critical one again: the bus appends nothing) and marks them.
        Assert.Equal(2, await relay.RelayOnceAsync(CancellationToken.None).Within());
        await Eventually(() => seen.Contains(routine.Id), "the relayed routine event at the subscriber");
        Assert.Equal(2L, await redis.Redis("XLEN", "labmesh:events"));
        Assert.Equal(0, await relay.RelayOnceAsync(CancellationToken.None).Within());
        Assert.Equal(1, seen.Count(id => id == critical.Id));
        Assert.Equal(1, seen.Count(id => id == routine.Id));
        log.AssertNoErrors();
    }

    [Fact]
    public async Task Expedited_WhileRedisIsDown_ReturnsAtOnce_AndTheRelayDeliversItWhenRedisIsBack()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var store = await OutboxStoreAsync(log);
        await using var connection = await ConnectAsync(redis, log);
        await using var bus = new RedisEventBus(connection, log.For<RedisEventBus>());
        var relay = new OutboxRelay(store, bus, new OutboxRelayOptions { PollInterval = TimeSpan.FromMinutes(10) }, log.For<OutboxRelay>());
        var critical = await CommitAsync(store, NewEvent(EventTypes.LabTestResultCritical));

        await redis.StopAsync().Within();
        relay.Expedite(critical);
        await Eventually(() => log.Contains(LogLevel.Debug, $"publishing event {critical.Id} ({EventTypes.LabTestResultCritical}) at once failed"), "the fast path's failure");
        Assert.Equal(0, await relay.RelayOnceAsync(CancellationToken.None).Within());

        await redis.StartAsync().Within();
        var (subscriberConnection, subscriberBus, seen) = await SubscriberAsync(redis, log);
        await using var _ = subscriberConnection;
        await using var __ = subscriberBus;
        await Eventually(async () => await relay.RelayOnceAsync(CancellationToken.None) == 1, "the relay publishing the row once Redis is back");

        await Eventually(() => seen.Contains(critical.Id), "the critical event at the subscriber");
        Assert.Equal(1L, await redis.Redis("XLEN", "labmesh:events"));
        Assert.Equal(0, await relay.RelayOnceAsync(CancellationToken.None).Within());
        Assert.Equal(1, seen.Count(id => id == critical.Id));
    }

    private static async Task<Database> OutboxStoreAsync(TestLog log)
    {
        var store = Database.Create("fastpath", new StorageOptions { DataDirectory = Directory.CreateTempSubdirectory("labmesh-fastpath-").FullName }, log.For<Database>());
        await store.MigrateAsync([Outbox.Migration(1)], CancellationToken.None).Within();
        return store;
    }

    private static async Task<Event> CommitAsync(Database store, Event evt)
    {
        await store.WriteAsync(async (_, transaction) =>
        {
            await Outbox.AddAsync(transaction, evt, CancellationToken.None);
            return 0;
        }, CancellationToken.None).Within();
        return evt;
    }

    private static async Task<(RedisConnection Connection, RedisEventBus Bus, ConcurrentQueue<string> Seen)> SubscriberAsync(RedisServer redis, TestLog log)
    {
        var connection = await ConnectAsync(redis, log);
        var bus = new RedisEventBus(connection, log.For<RedisEventBus>());
        var seen = new ConcurrentQueue<string>();
        bus.Subscribe((entry, _) =>
        {
            seen.Enqueue(entry.Event.Id);
            return Task.CompletedTask;
        });
        return (connection, bus, seen);
    }
}
