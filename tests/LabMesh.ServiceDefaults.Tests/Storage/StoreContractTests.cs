using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using LabMesh.Contracts.Common.V1;
using LabMesh.Messaging.Events;
using LabMesh.ServiceDefaults.Peers;
using LabMesh.Messaging.Storage;
using LabMesh.Testing;
using Microsoft.Extensions.Logging;

namespace LabMesh.ServiceDefaults.Tests.Storage;

/// <summary>
/// The behaviour every store must have, whichever the provider: each derived class runs all of
/// these against a real SQLite file or a real PostgreSQL server.
/// </summary>
public abstract class StoreContractTests : IAsyncLifetime
{
    protected static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static readonly Migration[] WidgetSteps =
    [
        new(3, "first widget", "INSERT INTO widgets (id, name, color) VALUES (1, 'first', 'red');"),
        new(1, "widgets", "CREATE TABLE widgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"),
        new(2, "widget colour", "ALTER TABLE widgets ADD COLUMN color TEXT;"),
    ];

    private readonly List<Database> _stores = [];
    private readonly List<OutboxRelay> _relays = [];

    protected StoreContractTests()
    {
        ServiceName = "svc_" + Guid.NewGuid().ToString("N")[..12];
    }

    /// <summary>Unique per test, so tests never share a SQLite file or a PostgreSQL schema.</summary>
    protected string ServiceName { get; }

    protected StorageOptions Options { get; private set; } = new();

    protected ListLogger<Database> StoreLog { get; } = new();

    protected ListLogger<OutboxRelay> RelayLog { get; } = new();

    protected static Migration[] OutboxSteps =>
    [
        Outbox.Migration(1),
        new(2, "items", "CREATE TABLE items (id TEXT PRIMARY KEY, value INTEGER NOT NULL);"),
    ];

    protected abstract Task<StorageOptions> CreateOptionsAsync();

    public async Task InitializeAsync() => Options = await CreateOptionsAsync().WaitAsync(Timeout);

    public virtual async Task DisposeAsync()
    {
        foreach (var relay in _relays)
        {
            await relay.StopAsync(CancellationToken.None).WaitAsync(Timeout);
            relay.Dispose();
        }

        foreach (var store in _stores)
        {
            await store.DisposeAsync().AsTask().WaitAsync(Timeout);
        }
    }

    protected Database OpenStore(string? serviceName = null)
    {
        var store = Database.Create(serviceName ?? ServiceName, Options, StoreLog);
        _stores.Add(store);
        return store;
    }

    protected async Task<Database> OutboxStoreAsync()
    {
        var store = OpenStore();
        await store.MigrateAsync(OutboxSteps, CancellationToken.None).WaitAsync(Timeout);
        return store;
    }

    protected OutboxRelay Relay(Database store, RecordingEventBus bus, OutboxRelayOptions? options = null, TimeProvider? time = null)
    {
        var relay = new OutboxRelay(store, bus, options ?? new OutboxRelayOptions(), RelayLog, time);
        _relays.Add(relay);
        return relay;
    }

    protected static Event NewEvent(int n) => new()
    {
        Type = EventTypes.OrderStatusChanged,
        TeamId = "team_1",
        RequisitionId = "req_" + n.ToString(CultureInfo.InvariantCulture),
        Source = "test",
        OrderStatusChanged = new OrderStatusChanged { Status = "received", OrderEventId = n },
    };

    /// <summary>Adds <paramref name="count"/> events, one transaction each; returns their ids in order.</summary>
    protected static async Task<List<string>> AddEventsAsync(Database store, int count, int first = 1)
    {
        var ids = new List<string>();
        for (var n = first; n < first + count; n++)
        {
            var evt = NewEvent(n);
            await store.WriteAsync(async (_, transaction) =>
            {
                await Outbox.AddAsync(transaction, evt, CancellationToken.None);
                return 0;
            }, CancellationToken.None).WaitAsync(Timeout);
            ids.Add(evt.Id);
        }

        return ids;
    }

    protected static async Task<long> ScalarAsync(Database store, string sql)
    {
        await using var connection = await store.OpenAsync(CancellationToken.None).WaitAsync(Timeout);
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        var value = await command.ExecuteScalarAsync().WaitAsync(Timeout);
        return Convert.ToInt64(value, CultureInfo.InvariantCulture);
    }

    protected static async Task<List<OutboxState>> OutboxRowsAsync(Database store)
    {
        await using var connection = await store.OpenAsync(CancellationToken.None).WaitAsync(Timeout);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT event_id, event_type, sent_at, attempts, last_error, created_at FROM outbox ORDER BY sequence;";
        await using var reader = await command.ExecuteReaderAsync().WaitAsync(Timeout);
        var rows = new List<OutboxState>();
        while (await reader.ReadAsync().WaitAsync(Timeout))
        {
            rows.Add(new OutboxState(
                reader.GetString(0),
                reader.GetString(1),
                reader.IsDBNull(2) ? null : reader.GetString(2),
                Convert.ToInt32(reader.GetValue(3), CultureInfo.InvariantCulture),
                reader.IsDBNull(4) ? null : reader.GetString(4),
                reader.GetString(5)));
        }

        return rows;
    }

    protected static async Task ExecuteAsync(DbConnection connection, DbTransaction transaction, string sql)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync();
    }

    protected sealed record OutboxState(string EventId, string EventType, string? SentAt, int Attempts, string? LastError, string CreatedAt);

    // ---- migrations ----

    [Fact]
    public async Task Migrate_AppliesEachStepOnceInVersionOrder()
    {
        var store = OpenStore();

        // Listed out of order: step 3 needs the column of step 2, which needs the table of step 1.
        await store.MigrateAsync(WidgetSteps, CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(1, await ScalarAsync(store, "SELECT COUNT(*) FROM widgets WHERE color = 'red';"));
        Assert.Equal(3, await ScalarAsync(store, "SELECT COUNT(*) FROM schema_migrations;"));
        Assert.Equal(6, await ScalarAsync(store, "SELECT SUM(version) FROM schema_migrations;"));
    }

    [Fact]
    public async Task Migrate_RunAgain_IsNoOpAndAppliesOnlyNewSteps()
    {
        var store = OpenStore();
        await store.MigrateAsync(WidgetSteps, CancellationToken.None).WaitAsync(Timeout);

        // Re-running step 1 or 3 would fail (table exists, duplicate key).
        await store.MigrateAsync(WidgetSteps, CancellationToken.None).WaitAsync(Timeout);
        await OpenStore().MigrateAsync(WidgetSteps, CancellationToken.None).WaitAsync(Timeout);
        Assert.Equal(3, await ScalarAsync(store, "SELECT COUNT(*) FROM schema_migrations;"));

        Migration[] later = [.. WidgetSteps, new(4, "second widget", "INSERT INTO widgets (id, name) VALUES (2, 'second');")];
        await store.MigrateAsync(later, CancellationToken.None).WaitAsync(Timeout);
        Assert.Equal(2, await ScalarAsync(store, "SELECT COUNT(*) FROM widgets;"));
        Assert.Equal(4, await ScalarAsync(store, "SELECT MAX(version) FROM schema_migrations;"));
    }

    [Fact]
    public async Task Migrate_ConcurrentCalls_ApplyEachStepOnce()
    {
        // Separate Database instances, as separate replicas would have.
        var stores = Enumerable.Range(0, 4).Select(_ => OpenStore()).ToList();

        await Task.WhenAll(stores.Select(s => s.MigrateAsync(WidgetSteps, CancellationToken.None))).WaitAsync(Timeout);

        Assert.Equal(1, await ScalarAsync(stores[0], "SELECT COUNT(*) FROM widgets;"));
        Assert.Equal(3, await ScalarAsync(stores[0], "SELECT COUNT(*) FROM schema_migrations;"));
    }

    [Fact]
    public async Task Migrate_FailingStep_KeepsEarlierStepsAndThrows()
    {
        var store = OpenStore();
        Migration[] steps = [WidgetSteps[1], new(2, "broken", "ALTER TABLE no_such_table ADD COLUMN x TEXT;")];

        await Assert.ThrowsAnyAsync<DbException>(() => store.MigrateAsync(steps, CancellationToken.None).WaitAsync(Timeout));

        Assert.Equal(1, await ScalarAsync(store, "SELECT COUNT(*) FROM schema_migrations;"));
        Assert.Equal(0, await ScalarAsync(store, "SELECT COUNT(*) FROM widgets;"));
    }

    [Fact]
    public async Task Store_TwoServices_HaveSeparateTables()
    {
        var first = OpenStore();
        var second = OpenStore(ServiceName + "_b");
        await first.MigrateAsync(OutboxSteps, CancellationToken.None).WaitAsync(Timeout);
        await second.MigrateAsync(OutboxSteps, CancellationToken.None).WaitAsync(Timeout);

        await AddEventsAsync(first, 2);

        Assert.Equal(2, await ScalarAsync(first, "SELECT COUNT(*) FROM outbox;"));
        Assert.Equal(0, await ScalarAsync(second, "SELECT COUNT(*) FROM outbox;"));
    }

    // ---- writes ----

    [Fact]
    public async Task Write_Success_CommitsAllRows()
    {
        var store = await OutboxStoreAsync();

        var result = await store.WriteAsync(async (connection, transaction) =>
        {
            await ExecuteAsync(connection, transaction, "INSERT INTO items (id, value) VALUES ('a', 1);");
            await ExecuteAsync(connection, transaction, "INSERT INTO items (id, value) VALUES ('b', 2);");
            return "done";
        }, CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal("done", result);
        Assert.Equal(3, await ScalarAsync(store, "SELECT SUM(value) FROM items;"));
    }

    [Fact]
    public async Task Write_Exception_RollsBackWholly()
    {
        var store = await OutboxStoreAsync();

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => store.WriteAsync<int>(async (connection, transaction) =>
        {
            await ExecuteAsync(connection, transaction, "INSERT INTO items (id, value) VALUES ('a', 1);");
            await ExecuteAsync(connection, transaction, "INSERT INTO items (id, value) VALUES ('b', 2);");
            throw new InvalidOperationException("domain rule broken");
        }, CancellationToken.None).WaitAsync(Timeout));

        Assert.Equal("domain rule broken", error.Message);
        Assert.Equal(0, await ScalarAsync(store, "SELECT COUNT(*) FROM items;"));
    }

    [Fact]
    public async Task Write_ConcurrentWriters_AllCommit()
    {
        var store = await OutboxStoreAsync();
        await store.WriteAsync(async (connection, transaction) =>
        {
            await ExecuteAsync(connection, transaction, "INSERT INTO items (id, value) VALUES ('counter', 0);");
            return 0;
        }, CancellationToken.None).WaitAsync(Timeout);

        const int Writers = 8;
        const int WritesEach = 25;
        await Task.WhenAll(Enumerable.Range(0, Writers).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < WritesEach; i++)
            {
                var id = $"w{w}_{i}";
                await store.WriteAsync(async (connection, transaction) =>
                {
                    await ExecuteAsync(connection, transaction, "UPDATE items SET value = value + 1 WHERE id = 'counter';");
                    await ExecuteAsync(connection, transaction, $"INSERT INTO items (id, value) VALUES ('{id}', 1);");
                    return 0;
                }, CancellationToken.None).WaitAsync(Timeout);
            }
        }))).WaitAsync(Timeout);

        Assert.Equal(Writers * WritesEach, await ScalarAsync(store, "SELECT value FROM items WHERE id = 'counter';"));
        Assert.Equal(Writers * WritesEach + 1, await ScalarAsync(store, "SELECT COUNT(*) FROM items;"));
        Assert.Empty(StoreLog.Errors);
    }

    // ---- the outbox ----

    [Fact]
    public async Task Outbox_AddWithStateChange_CommitsTogether()
    {
        var store = await OutboxStoreAsync();
        var evt = NewEvent(1);

        await store.WriteAsync(async (connection, transaction) =>
        {
            await ExecuteAsync(connection, transaction, "INSERT INTO items (id, value) VALUES ('req_1', 1);");
            await Outbox.AddAsync(transaction, evt, CancellationToken.None);
            return 0;
        }, CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(1, await ScalarAsync(store, "SELECT COUNT(*) FROM items;"));
        var row = Assert.Single(await OutboxRowsAsync(store));
        Assert.Equal(evt.Id, row.EventId);
        Assert.Equal(EventTypes.OrderStatusChanged, row.EventType);
        Assert.Null(row.SentAt);
        Assert.Equal(0, row.Attempts);
    }

    [Fact]
    public async Task Outbox_AddThenFailure_RollsBackStateAndEvent()
    {
        var store = await OutboxStoreAsync();

        await Assert.ThrowsAsync<InvalidOperationException>(() => store.WriteAsync<int>(async (connection, transaction) =>
        {
            await ExecuteAsync(connection, transaction, "INSERT INTO items (id, value) VALUES ('req_1', 1);");
            await Outbox.AddAsync(transaction, NewEvent(1), CancellationToken.None);
            throw new InvalidOperationException("failed after the event was added");
        }, CancellationToken.None).WaitAsync(Timeout));

        Assert.Equal(0, await ScalarAsync(store, "SELECT COUNT(*) FROM items;"));
        Assert.Equal(0, await ScalarAsync(store, "SELECT COUNT(*) FROM outbox;"));
    }

    [Fact]
    public async Task Outbox_Add_FillsIdCreatedAtAndTraceContext()
    {
        var store = await OutboxStoreAsync();
        var evt = NewEvent(1);
        using var activity = new Activity("test-change").SetIdFormat(ActivityIdFormat.W3C).Start();
        activity.TraceStateString = "vendor=abc";
        var before = DateTimeOffset.UtcNow.AddSeconds(-1);

        await store.WriteAsync(async (_, transaction) =>
        {
            await Outbox.AddAsync(transaction, evt, CancellationToken.None);
            return 0;
        }, CancellationToken.None).WaitAsync(Timeout);

        Assert.True(Guid.TryParse(evt.Id, out var id));
        Assert.Equal(7, id.Version);
        Assert.InRange(evt.CreatedAt.ToDateTimeOffset(), before, DateTimeOffset.UtcNow.AddSeconds(1));
        Assert.Equal(activity.Id, evt.Traceparent);
        Assert.Equal("vendor=abc", evt.Tracestate);

        var row = Assert.Single(await OutboxRowsAsync(store));
        Assert.Equal(evt.Id, row.EventId);
        Assert.Equal(
            evt.CreatedAt.ToDateTimeOffset(),
            DateTimeOffset.Parse(row.CreatedAt, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal));
        Assert.EndsWith("Z", row.CreatedAt, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Outbox_Add_KeepsIdTimeAndTraceContextAlreadySet()
    {
        var store = await OutboxStoreAsync();
        var evt = NewEvent(1);
        evt.Id = "evt_given";
        evt.CreatedAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero));
        evt.Traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        using var activity = new Activity("other").SetIdFormat(ActivityIdFormat.W3C).Start();

        await store.WriteAsync(async (_, transaction) =>
        {
            await Outbox.AddAsync(transaction, evt, CancellationToken.None);
            return 0;
        }, CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal("evt_given", evt.Id);
        Assert.Equal("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", evt.Traceparent);
        var row = Assert.Single(await OutboxRowsAsync(store));
        Assert.Equal("2024-05-06T07:08:09.0000000Z", row.CreatedAt);
    }

    [Fact]
    public async Task Outbox_SameEventIdTwice_IsUniqueViolation()
    {
        var store = await OutboxStoreAsync();
        await AddEventsAsync(store, 1);
        var again = NewEvent(2);
        again.Id = (await OutboxRowsAsync(store))[0].EventId;

        var error = await Assert.ThrowsAnyAsync<DbException>(() => store.WriteAsync(async (_, transaction) =>
        {
            await Outbox.AddAsync(transaction, again, CancellationToken.None);
            return 0;
        }, CancellationToken.None).WaitAsync(Timeout));

        Assert.True(Database.IsUniqueViolation(error));
    }

    // ---- the relay ----

    [Fact]
    public async Task Relay_PublishesInOrderAndMarksSent()
    {
        var store = await OutboxStoreAsync();
        var ids = await AddEventsAsync(store, 5);
        var bus = new RecordingEventBus();
        var relay = Relay(store, bus);

        Assert.Equal(5, await relay.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal(0, await relay.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout));

        Assert.Equal(ids, bus.Attempts);
        Assert.Equal(ids, bus.DeliveredIds);
        Assert.Equal(5, bus.Delivered[4].OrderStatusChanged.OrderEventId);
        Assert.All(await OutboxRowsAsync(store), row =>
        {
            Assert.NotNull(row.SentAt);
            Assert.Equal(1, row.Attempts);
            Assert.Null(row.LastError);
        });
        Assert.Empty(RelayLog.Errors);
    }

    [Fact]
    public async Task Relay_MoreRowsThanOneBatch_PublishesAllInOrder()
    {
        var store = await OutboxStoreAsync();
        var ids = await AddEventsAsync(store, 7);
        var bus = new RecordingEventBus();
        var relay = Relay(store, bus, new OutboxRelayOptions { BatchSize = 3 });

        var passes = new List<int>();
        for (var i = 0; i < 4; i++)
        {
            passes.Add(await relay.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout));
        }

        Assert.Equal([3, 3, 1, 0], passes);
        Assert.Equal(ids, bus.Attempts);
    }

    [Fact]
    public async Task Relay_BusDown_KeepsRowsAndPublishesLater()
    {
        var store = await OutboxStoreAsync();
        var ids = await AddEventsAsync(store, 3);
        var bus = new RecordingEventBus { Down = true };
        var relay = Relay(store, bus);

        Assert.Equal(0, await relay.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal(0, await relay.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout));

        // One refusal per pass: the pass stops at the first failure.
        Assert.Equal(2, bus.Refused);
        var waiting = await OutboxRowsAsync(store);
        Assert.All(waiting, row => Assert.Null(row.SentAt));
        Assert.Equal(2, waiting[0].Attempts);
        Assert.Contains("down", waiting[0].LastError, StringComparison.Ordinal);
        Assert.Equal(0, waiting[1].Attempts);

        bus.Down = false;
        Assert.Equal(3, await relay.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout));

        Assert.Equal(ids, bus.DeliveredIds);
        var sent = await OutboxRowsAsync(store);
        Assert.All(sent, row => Assert.NotNull(row.SentAt));
        Assert.Null(sent[0].LastError);
        Assert.Equal(3, sent[0].Attempts);
        Assert.Empty(RelayLog.Errors);
    }

    [Fact]
    public async Task Relay_BusFailsMidBatch_StopsAtFailureAndKeepsOrder()
    {
        var store = await OutboxStoreAsync();
        var ids = await AddEventsAsync(store, 5);
        var bus = new RecordingEventBus { FailOnEventId = ids[2] };
        var relay = Relay(store, bus);

        Assert.Equal(2, await relay.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout));

        Assert.Equal(ids[..2], bus.DeliveredIds);
        var rows = await OutboxRowsAsync(store);
        Assert.Equal([true, true, false, false, false], rows.Select(r => r.SentAt is not null));
        Assert.Equal([1, 1, 1, 0, 0], rows.Select(r => r.Attempts));

        bus.FailOnEventId = null;
        Assert.Equal(3, await relay.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal(ids, bus.DeliveredIds);
        Assert.Equal(ids, bus.Attempts);
    }

    [Fact]
    public async Task Relay_AckLost_RepublishesSameIdNextPass()
    {
        var store = await OutboxStoreAsync();
        var ids = await AddEventsAsync(store, 1);
        var bus = new RecordingEventBus { ThrowAfterAccepting = true };
        var relay = Relay(store, bus);

        Assert.Equal(0, await relay.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout));
        Assert.Null(Assert.Single(await OutboxRowsAsync(store)).SentAt);

        bus.ThrowAfterAccepting = false;
        Assert.Equal(1, await relay.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout));

        Assert.Equal([ids[0], ids[0]], bus.Attempts);
        Assert.Equal(ids, bus.DeliveredIds);
        Assert.NotNull(Assert.Single(await OutboxRowsAsync(store)).SentAt);
    }

    [Fact]
    public async Task Relay_CrashBetweenPublishAndMark_RepublishesSameIdsAfterRestart()
    {
        var store = await OutboxStoreAsync();
        var ids = await AddEventsAsync(store, 3);
        var bus = new RecordingEventBus();
        var crashing = Relay(store, bus);
        crashing.BeforeMarkSent = (_, _) => throw new SimulatedCrashException();

        await Assert.ThrowsAsync<SimulatedCrashException>(() => crashing.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal(ids, bus.DeliveredIds);
        Assert.All(await OutboxRowsAsync(store), row => Assert.Null(row.SentAt));

        // The restarted process: a new store and relay over the same data.
        var restarted = Relay(OpenStore(), bus);
        Assert.Equal(3, await restarted.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout));

        Assert.Equal([.. ids, .. ids], bus.Attempts);
        Assert.Equal(ids, bus.DeliveredIds);
        Assert.All(await OutboxRowsAsync(store), row => Assert.NotNull(row.SentAt));
    }

    [Fact]
    public async Task Relay_CancelledMidBatch_MarksWhatTheBusAccepted()
    {
        var store = await OutboxStoreAsync();
        var ids = await AddEventsAsync(store, 3);
        var bus = new RecordingEventBus { HangAfterDelivered = 1 };
        var relay = Relay(store, bus);
        using var stopping = new CancellationTokenSource();

        var pass = relay.RelayOnceAsync(stopping.Token);
        await Eventually.HoldsAsync(() => bus.Delivered.Count == 1, Timeout, "the first event is accepted");
        await stopping.CancelAsync();

        Assert.Equal(1, await pass.WaitAsync(Timeout));
        Assert.Equal([true, false, false], (await OutboxRowsAsync(store)).Select(r => r.SentAt is not null));
        Assert.Equal([0, 0], (await OutboxRowsAsync(store)).Skip(1).Select(r => r.Attempts));

        bus.HangAfterDelivered = null;
        Assert.Equal(2, await relay.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal(ids, bus.DeliveredIds);
        Assert.Empty(RelayLog.Errors);
    }

    [Fact]
    public async Task Relay_BusDown_TheOldestUnsentEventsAgeGrows_InTheGauge_AndIsZeroOnceItIsPublished()
    {
        var store = await OutboxStoreAsync();
        var bus = new RecordingEventBus { Down = true };
        var time = new ManualTimeProvider(DateTimeOffset.UtcNow);
        var relay = Relay(store, bus, new OutboxRelayOptions { PollInterval = TimeSpan.FromMinutes(10) }, time);
        await AddEventsAsync(store, 2);
        using var gauge = new GaugeReader("labmesh.outbox.oldest_unsent.age", ServiceName);
        await relay.StartAsync(CancellationToken.None).WaitAsync(Timeout);
        await Eventually.HoldsAsync(() => bus.Refused >= 1, Timeout, "the relay to try the down bus");

        time.Advance(TimeSpan.FromMinutes(3));
        var waiting = gauge.Read();

        bus.Down = false;
        relay.Nudge();
        await Eventually.HoldsAsync(() => bus.Delivered.Count == 2, Timeout, "the events to be published once the bus is back");
        await Eventually.HoldsAsync(() => gauge.Read() == 0, Timeout, "the gauge to fall to zero");
        await relay.StopAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.InRange(waiting, 170, 240);
        Assert.Null(gauge.ReadOrNull());
    }

    [Fact]
    public async Task Relay_Nudge_WakesRelayBeforePollInterval()
    {
        var store = await OutboxStoreAsync();
        var bus = new RecordingEventBus();
        var relay = Relay(store, bus, new OutboxRelayOptions { PollInterval = TimeSpan.FromMinutes(10) });
        var first = await AddEventsAsync(store, 1);
        await relay.StartAsync(CancellationToken.None).WaitAsync(Timeout);

        // The pass at start-up publishes what is there; after it the relay sleeps for ten minutes.
        await Eventually.HoldsAsync(() => bus.Delivered.Count == 1, Timeout, "the event added before start is published");
        var second = await AddEventsAsync(store, 2, first: 2);
        relay.Nudge();

        await Eventually.HoldsAsync(() => bus.Delivered.Count == 3, Timeout, "the nudged events are published");
        Assert.Equal([.. first, .. second], bus.DeliveredIds);
        await relay.StopAsync(CancellationToken.None).WaitAsync(Timeout);
        Assert.Empty(RelayLog.Errors);
    }

    [Fact]
    public async Task Relay_Background_PollsAndPublishesAfterBusRecovers()
    {
        var store = await OutboxStoreAsync();
        var bus = new RecordingEventBus { Down = true };
        var relay = Relay(store, bus, new OutboxRelayOptions
        {
            PollInterval = TimeSpan.FromMilliseconds(20),
            InitialBackoff = TimeSpan.FromMilliseconds(10),
            MaxBackoff = TimeSpan.FromMilliseconds(50),
        });
        await relay.StartAsync(CancellationToken.None).WaitAsync(Timeout);

        // No nudge: the poll finds them.
        var ids = await AddEventsAsync(store, 4);
        await Eventually.HoldsAsync(() => bus.Refused >= 3, Timeout, "the relay retries while the bus is down");
        Assert.Empty(bus.Delivered);

        bus.Down = false;
        await Eventually.HoldsAsync(() => bus.Delivered.Count == 4, Timeout, "all events are published once the bus is back");
        await relay.StopAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(ids, bus.DeliveredIds);
        Assert.All(await OutboxRowsAsync(store), row => Assert.NotNull(row.SentAt));
        Assert.Empty(RelayLog.Errors);
    }

    [Fact]
    public async Task Relay_PurgeSent_DeletesOnlySentRowsPastRetention()
    {
        var store = await OutboxStoreAsync();
        var clock = new ManualTimeProvider(DateTimeOffset.UtcNow);
        var bus = new RecordingEventBus();
        var relay = Relay(store, bus, new OutboxRelayOptions { SentRetention = TimeSpan.FromHours(24) }, clock);
        await AddEventsAsync(store, 2);
        await relay.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout);

        clock.Advance(TimeSpan.FromHours(23));
        Assert.Equal(0, await relay.PurgeSentAsync(CancellationToken.None).WaitAsync(Timeout));

        var recent = await AddEventsAsync(store, 1, first: 3);
        await relay.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout);
        bus.Down = true;
        var unsent = await AddEventsAsync(store, 1, first: 4);
        clock.Advance(TimeSpan.FromHours(2));

        Assert.Equal(2, await relay.PurgeSentAsync(CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal([.. recent, .. unsent], (await OutboxRowsAsync(store)).Select(r => r.EventId));
    }

    [Fact]
    public async Task Relay_StoreWithoutOutboxTable_PassThrowsAndBackgroundKeepsRunning()
    {
        var store = OpenStore();
        await store.MigrateAsync(WidgetSteps, CancellationToken.None).WaitAsync(Timeout);
        var bus = new RecordingEventBus();
        var relay = Relay(store, bus, new OutboxRelayOptions
        {
            PollInterval = TimeSpan.FromMilliseconds(10),
            InitialBackoff = TimeSpan.FromMilliseconds(10),
            MaxBackoff = TimeSpan.FromMilliseconds(100),
        });

        await Assert.ThrowsAnyAsync<DbException>(() => relay.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout));

        await relay.StartAsync(CancellationToken.None).WaitAsync(Timeout);
        await Eventually.HoldsAsync(() => RelayLog.Entries.Any(e => e.Message.Contains("relay pass failed", StringComparison.Ordinal)), Timeout, "the failure is logged");
        await store.MigrateAsync(OutboxSteps.Select(s => s with { Version = s.Version + 10 }), CancellationToken.None).WaitAsync(Timeout);
        var ids = await AddEventsAsync(store, 1);
        relay.Nudge();
        await Eventually.HoldsAsync(() => bus.Delivered.Count == 1, Timeout, "the relay recovers once the table exists");
        Assert.Equal(ids, bus.DeliveredIds);
    }

    [Fact]
    public async Task PeerWork_BacksOffPerItem_CountsOnlyRefusalsTowardsParking_AndKeepsParkedItemsOutOfTheBatch()
    {
        var clock = new ManualTimeProvider(DateTimeOffset.UtcNow);
        var store = OpenStore();
        await store.MigrateAsync(
            [PeerWork.Migration(1), new(2, "things", "CREATE TABLE things (id TEXT PRIMARY KEY, version BIGINT NOT NULL);")],
            CancellationToken.None).WaitAsync(Timeout);
        var log = new ListLogger<PeerWork>();
        var work = new PeerWork(store, new PeerWorkOptions
        {
            ParkAfter = 3, FirstBackoff = TimeSpan.FromSeconds(10), MaxBackoff = TimeSpan.FromSeconds(30),
        }, clock, log);
        await using (var connection = await store.OpenAsync(CancellationToken.None))
        {
            await Dapper.SqlMapper.ExecuteAsync(connection, "INSERT INTO things (id, version) VALUES ('a', 1), ('b', 1)");
        }

        async Task<List<string>> DueAsync()
        {
            await using var connection = await store.OpenAsync(CancellationToken.None);
            return (await Dapper.SqlMapper.QueryAsync<string>(connection,
                $"SELECT id FROM things{PeerWork.DueJoin("thing", "things.id", "things.version")} WHERE {PeerWork.DueFilter} " +
                $"ORDER BY {PeerWork.DueOrder}, id", new { now = work.Now() })).ToList();
        }

        Assert.Equal(["a", "b"], await DueAsync());

        // A refusal: 8-10 s (the first backoff, up to 20% less); a transient failure: the first backoff, not counted as a refusal.
        Assert.False(await work.FailedAsync("thing", "a", 1, "team_1", Grpc.Core.StatusCode.NotFound, CancellationToken.None));
        Assert.Equal(["b"], await DueAsync());
        clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(["b", "a"], await DueAsync());
        Assert.False(await work.FailedAsync("thing", "a", 1, "team_1", Grpc.Core.StatusCode.Unavailable, CancellationToken.None));
        clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(["b", "a"], await DueAsync());

        // The second refusal doubles the wait (16-20 s).
        Assert.False(await work.FailedAsync("thing", "a", 1, "team_1", Grpc.Core.StatusCode.FailedPrecondition, CancellationToken.None));
        clock.Advance(TimeSpan.FromSeconds(15));
        Assert.Equal(["b"], await DueAsync());
        clock.Advance(TimeSpan.FromSeconds(5));
        Assert.Equal(["b", "a"], await DueAsync());

        // The third parks it: out of every batch, however long one waits, and logged; other items are untouched.
        Assert.True(await work.FailedAsync("thing", "a", 1, "team_1", Grpc.Core.StatusCode.Internal, CancellationToken.None));
        clock.Advance(TimeSpan.FromHours(1));
        Assert.Equal(["b"], await DueAsync());
        var parked = Assert.Single(await work.ListParkedAsync("team_1", 10, CancellationToken.None));
        Assert.Equal(("thing", "a", 1L, 4, 3, "INTERNAL"), (parked.Kind, parked.ItemId, parked.ItemVersion, parked.Attempts, parked.Refusals, parked.LastError));
        Assert.Empty(await work.ListParkedAsync("team_2", 10, CancellationToken.None));
        Assert.Contains(log.Entries, e => e.Level == LogLevel.Warning && e.Message.StartsWith("Parked thing a (version 1) after 3 refusals, the last INTERNAL", StringComparison.Ordinal));

        // labmesh.sync.parked.items, for this store, as of the last count.
        using (work.ReportParkedItems())
        {
            Assert.Null(ParkedGauge(ServiceName));
            await work.CountParkedAsync(CancellationToken.None);
            Assert.Equal(1, ParkedGauge(ServiceName));
        }

        Assert.Null(ParkedGauge(ServiceName));

        // A later version of the item is new work; retried, the parked version is due at once with its refusals counted afresh.
        Assert.False(await work.RetryAsync("team_2", "thing", "a", CancellationToken.None));
        Assert.True(await work.RetryAsync("team_1", "thing", "a", CancellationToken.None));
        Assert.Equal(["b", "a"], await DueAsync());
        Assert.False(await work.FailedAsync("thing", "a", 1, "team_1", Grpc.Core.StatusCode.NotFound, CancellationToken.None));
        Assert.Empty(await work.ListParkedAsync("team_1", 10, CancellationToken.None));

        // Success forgets the item's attempts.
        await work.SucceededAsync("thing", "a", 1, CancellationToken.None);
        Assert.Equal(["a", "b"], await DueAsync());
    }

    /// <summary>labmesh.sync.parked.items for <paramref name="service"/> now, or null when nothing reports it.</summary>
    private static long? ParkedGauge(string service)
    {
        long? value = null;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "LabMesh" && instrument.Name == "labmesh.sync.parked.items")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, measured, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "labmesh.service" && Equals(tag.Value, service))
                {
                    value = measured;
                }
            }
        });
        listener.Start();
        listener.RecordObservableInstruments();
        return value;
    }

    private sealed class SimulatedCrashException : Exception;
}
