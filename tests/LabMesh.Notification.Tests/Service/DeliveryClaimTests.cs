using Dapper;
using Google.Protobuf.WellKnownTypes;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Messaging.Events;
using LabMesh.Messaging.Redis;
using LabMesh.Messaging.Storage;
using LabMesh.Notification.Webhooks;
using LabMesh.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Xunit.Abstractions;

namespace LabMesh.Notification.Tests.Service;

/// <summary>
/// The delivery worker's batched claims and recordings: a burst of webhooks through two replicas is delivered
/// once per event, each by one replica, on SQLite and PostgreSQL; and the claim's query plan walks the due index
/// whatever the backlog (the store work per delivery does not grow with it).
/// </summary>
public sealed class DeliveryClaimTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly string _team = "team-" + Guid.NewGuid().ToString("N")[..8];

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task BurstOfWebhooks_TwoReplicas_EachEventPostedOnce_ByOneReplica_AndRecordedDelivered(Backend backend)
    {
        const int Count = 300;
        await using var mesh = await NotificationMesh.StartAsync(backend);
        await using var receiver = await WebhookReceiver.StartAsync();
        var endpoint = (await mesh.Notifications("a", _team).CreateWebhookEndpointAsync(
            new CreateWebhookEndpointRequest { RequestId = "burst", Url = receiver.Url, EventTypes = { EventTypes.OrderStatusChanged } },
            deadline: Deadline)).Endpoint;

        using var redis = new RedisConnection(Options.Create(new RedisOptions { Configuration = mesh.Redis.Configuration }), NullLogger<RedisConnection>.Instance);
        await using var bus = new RedisEventBus(redis, NullLogger<RedisEventBus>.Instance);
        var events = Enumerable.Range(0, Count).Select(i => StatusChanged(_team, i)).ToList();
        await Parallel.ForEachAsync(events, new ParallelOptions { MaxDegreeOfParallelism = 8 }, async (evt, ct) => await bus.PublishAsync(evt, ct));

        await Eventually.HoldsAsync(() => receiver.Received.Select(r => r.Id).Distinct().Count() == Count, Timeout, $"{Count} distinct webhook-ids");
        var deliveries = await Eventually.MatchAsync(
            () => ListAllAsync(mesh.Notifications("b", _team), endpoint.Id),
            d => d.Count == Count && d.All(x => x.State == DeliveryState.Delivered), Timeout, "every delivery recorded as delivered");

        // Every attempt answered 200 and was recorded, so none is attempted twice: one POST per event, one attempt on record.
        Assert.Equal(Count, receiver.Received.Count);
        Assert.All(deliveries, d => Assert.Equal(1, d.Attempts));
        Assert.Equal(events.Select(e => e.Id).Order(), receiver.Received.Select(r => r.Event.Id).Order());

        // Each delivery was attempted by exactly one replica: its id is in one replica's "delivered" log lines, never both.
        var byReplica = mesh.Replicas.ToDictionary(
            r => r.Key,
            r => r.Value.Logs.Records.Where(l => l.Message.Contains("-> Delivered", StringComparison.Ordinal)).Select(l => l.Message).ToList());
        foreach (var delivery in deliveries)
        {
            var attemptedBy = byReplica.Count(r => r.Value.Any(m => m.Contains(delivery.Id, StringComparison.Ordinal)));
            Assert.Equal(1, attemptedBy);
        }

        output.WriteLine($"{backend}: replica a delivered {byReplica["a"].Count}, b {byReplica["b"].Count}");
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task ClaimQuery_WithATenThousandDeliveryBacklog_WalksTheDueIndex_AndTheRecordThePrimaryKey_NoScanNoSort(Backend backend)
    {
        await using var database = await BacklogAsync(backend, 10_000);
        var now = DateTimeOffset.UtcNow;
        await using var connection = await database.OpenAsync(CancellationToken.None);
        await connection.ExecuteAsync(new CommandDefinition("ANALYZE", commandType: System.Data.CommandType.Text));
        var claim = NotificationStore.ClaimSql(database.Provider);
        var parameters = new { owner = "plan", until = DbTime.ToDb(now.AddSeconds(30)), now = DbTime.ToDb(now), limit = 16 };
        var plan = backend == Backend.Postgres
            ? string.Join('\n', await connection.QueryAsync<string>("EXPLAIN " + claim, parameters))
            : string.Join('\n', (await connection.QueryAsync("EXPLAIN QUERY PLAN " + claim, parameters)).Select(r => (string)r.detail));
        output.WriteLine(plan);

        Assert.Contains("ix_deliveries_due", plan, StringComparison.Ordinal);
        if (backend == Backend.Postgres)
        {
            Assert.DoesNotContain("Seq Scan on deliveries", plan, StringComparison.Ordinal);
            Assert.DoesNotContain("Sort", plan, StringComparison.Ordinal);
        }
        else
        {
            Assert.DoesNotContain("SCAN d", plan, StringComparison.Ordinal);
            Assert.DoesNotContain("TEMP B-TREE", plan, StringComparison.Ordinal);
        }

        // And the claim leases the 16 oldest due rows (the first column it returns is the id).
        var leased = (await connection.QueryAsync<string>(claim, parameters)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(Enumerable.Range(0, 16).Select(i => $"msg_{i:D8}"), leased);

        // The recording of those 16 attempts is one UPDATE that finds each delivery by its primary key.
        var record = NotificationStore.RecordSql(leased.Count);
        var outcomes = new DynamicParameters();
        outcomes.Add("owner", "plan");
        for (var i = 0; i < leased.Count; i++)
        {
            outcomes.Add($"id{i}", leased[i]);
            outcomes.Add($"state{i}", i == 0 ? 1 : 2);
            outcomes.Add($"next{i}", i == 0 ? DbTime.ToDb(now.AddMinutes(1)) : null, System.Data.DbType.String);
            outcomes.Add($"delivered{i}", i == 0 ? null : DbTime.ToDb(now), System.Data.DbType.String);
            outcomes.Add($"at{i}", DbTime.ToDb(now));
            outcomes.Add($"status{i}", i == 0 ? 503 : 200);
            outcomes.Add($"error{i}", i == 0 ? "HTTP 503" : "");
        }

        var recordPlan = backend == Backend.Postgres
            ? string.Join('\n', await connection.QueryAsync<string>("EXPLAIN " + record, outcomes))
            : string.Join('\n', (await connection.QueryAsync("EXPLAIN QUERY PLAN " + record, outcomes)).Select(r => (string)r.detail));
        output.WriteLine(recordPlan);
        if (backend == Backend.Postgres)
        {
            Assert.Contains("deliveries_pkey", recordPlan, StringComparison.Ordinal);
            Assert.DoesNotContain("Seq Scan on deliveries", recordPlan, StringComparison.Ordinal);
        }
        else
        {
            Assert.Contains("SEARCH deliveries USING INDEX sqlite_autoindex_deliveries_1 (id=?)", recordPlan, StringComparison.Ordinal);
            Assert.DoesNotContain("SCAN deliveries", recordPlan, StringComparison.Ordinal);
        }

        // It writes the rows this owner leased (the first one due again, the others delivered) and no other.
        outcomes.Add("id15", "msg_00000999");
        var written = (await connection.QueryAsync<string>(record, outcomes)).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(leased.Take(15), written);
        var states = (await connection.QueryAsync<(string Id, int State, int Attempts)>(
            "SELECT id AS Id, state AS State, attempts AS Attempts FROM deliveries WHERE id IN ('msg_00000000', 'msg_00000001', 'msg_00000015', 'msg_00000999') ORDER BY id")).ToList();
        Assert.Equal([("msg_00000000", 1, 1), ("msg_00000001", 2, 1), ("msg_00000015", 1, 0), ("msg_00000999", 1, 0)], states);
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task RecordAndClaim_TwoOwnersInterleaved_EachDeliveryClaimedByOneOwner_AndRecordedOnce(Backend backend)
    {
        const int Count = 60;
        await using var database = await BacklogAsync(backend, Count);
        var store = Store(database);
        var now = DateTimeOffset.UtcNow;
        var claimedBy = new System.Collections.Concurrent.ConcurrentDictionary<string, string>(StringComparer.Ordinal);

        // Two replicas, each recording what it holds and claiming the next few in the same transaction, at the same
        // time: each round starts both transactions together (a replica done with the backlog leaves the barrier).
        using var together = new Barrier(2);
        async Task ReplicaAsync(string owner)
        {
            try
            {
                await ClaimRoundsAsync(owner);
            }
            finally
            {
                together.RemoveParticipant();
            }
        }

        async Task ClaimRoundsAsync(string owner)
        {
            IReadOnlyList<ClaimedDelivery> held = [];
            for (var round = 0; round < 100; round++)
            {
                Assert.True(together.SignalAndWait(Timeout), "the other replica's round began");
                var attempts = held.Select(c => Delivered(c.Delivery, now)).ToArray();
                var done = await store.RecordAndClaimAsync(attempts, owner, now, now.AddSeconds(30), 4, CancellationToken.None);
                Assert.All(done.Recorded, Assert.True);
                foreach (var claimed in done.Claimed)
                {
                    Assert.True(claimedBy.TryAdd(claimed.Delivery.Id, owner), $"{claimed.Delivery.Id} claimed by {owner} and {claimedBy.GetValueOrDefault(claimed.Delivery.Id)}");
                    Assert.Equal("whep_plan", claimed.Endpoint.Id);
                }

                held = done.Claimed;
                if (held.Count == 0 && attempts.Length == 0)
                {
                    return;
                }
            }
        }

        await Task.WhenAll(Task.Run(() => ReplicaAsync("a")), Task.Run(() => ReplicaAsync("b"))).WaitAsync(Timeout);

        Assert.Equal(Count, claimedBy.Count);
        Assert.Contains(claimedBy.Values, o => o == "a");
        Assert.Contains(claimedBy.Values, o => o == "b");
        await using var connection = await database.OpenAsync(CancellationToken.None);
        var rows = (await connection.QueryAsync<(int State, int Attempts, string? Owner)>(
            "SELECT state AS State, attempts AS Attempts, lease_owner AS Owner FROM deliveries")).ToList();
        Assert.Equal(Count, rows.Count);
        Assert.All(rows, r => Assert.Equal(((int)DeliveryState.Delivered, 1, (string?)null), r));
        output.WriteLine($"{backend}: a claimed {claimedBy.Values.Count(o => o == "a")}, b {claimedBy.Values.Count(o => o == "b")}");
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task RecordAndClaim_FailingInTheClaim_RecordsNothing_AndTheLeasedAttemptsGoToAnotherReplica_NeitherLostNorDoubled(Backend backend)
    {
        await using var database = await BacklogAsync(backend, 12);
        var store = Store(database);
        var now = DateTimeOffset.UtcNow;
        var held = (await store.RecordAndClaimAsync([], "dies", now, now.AddSeconds(30), 4, CancellationToken.None)).Claimed;
        Assert.Equal(4, held.Count);

        // The replica's next claim fails inside the transaction that records its four attempts (a trigger refuses
        // any lease to it): the whole transaction rolls back, as when the replica dies before it commits.
        await database.WriteAsync(async (connection, transaction) => await connection.ExecuteAsync(
            backend == Backend.Postgres
                ? """
                  CREATE FUNCTION refuse_lease() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'lease refused'; END $$ LANGUAGE plpgsql;
                  CREATE TRIGGER refuse_lease BEFORE UPDATE ON deliveries FOR EACH ROW
                      WHEN (OLD.lease_owner IS NULL AND NEW.lease_owner = 'dies') EXECUTE FUNCTION refuse_lease();
                  """
                : """
                  CREATE TRIGGER refuse_lease BEFORE UPDATE OF lease_owner ON deliveries
                      WHEN OLD.lease_owner IS NULL AND NEW.lease_owner = 'dies' BEGIN SELECT RAISE(ABORT, 'lease refused'); END
                  """,
            transaction: transaction), CancellationToken.None);
        var attempts = held.Select(c => Delivered(c.Delivery, now)).ToArray();
        await Assert.ThrowsAnyAsync<System.Data.Common.DbException>(
            () => store.RecordAndClaimAsync(attempts, "dies", now, now.AddSeconds(30), 4, CancellationToken.None));

        await using (var connection = await database.OpenAsync(CancellationToken.None))
        {
            var leased = (await connection.QueryAsync<(string Id, int State, int Attempts)>(
                "SELECT id AS Id, state AS State, attempts AS Attempts FROM deliveries WHERE lease_owner = 'dies' ORDER BY id")).ToList();
            Assert.Equal(held.Select(c => (c.Delivery.Id, (int)DeliveryState.Pending, 0)).OrderBy(r => r.Id, StringComparer.Ordinal), leased);
        }

        // After the lease another replica takes the four unrecorded attempts first (they are the oldest due) and records them once.
        var later = now.AddSeconds(31);
        var taken = (await store.RecordAndClaimAsync([], "other", later, later.AddSeconds(30), 4, CancellationToken.None)).Claimed;
        Assert.Equal(held.Select(c => c.Delivery.Id).Order(StringComparer.Ordinal), taken.Select(c => c.Delivery.Id).Order(StringComparer.Ordinal));
        var recorded = await store.RecordAndClaimAsync([.. taken.Select(c => Delivered(c.Delivery, later))], "other", later, later.AddSeconds(30), 0, CancellationToken.None);
        Assert.All(recorded.Recorded, Assert.True);
        Assert.Empty(recorded.Claimed);

        // The first replica's late recording of the same attempts writes nothing: each attempt is on record once.
        var late = await store.RecordAndClaimAsync(attempts, "dies", later, later.AddSeconds(30), 0, CancellationToken.None);
        Assert.All(late.Recorded, Assert.False);
        await using (var connection = await database.OpenAsync(CancellationToken.None))
        {
            var rows = (await connection.QueryAsync<(string Id, int State, int Attempts)>(
                "SELECT id AS Id, state AS State, attempts AS Attempts FROM deliveries WHERE state = 2 ORDER BY id")).ToList();
            Assert.Equal(held.Select(c => (c.Delivery.Id, (int)DeliveryState.Delivered, 1)).OrderBy(r => r.Id, StringComparer.Ordinal), rows);
        }
    }

    /// <summary>A Notification store with one enabled endpoint (<c>whep_plan</c>) and <paramref name="count"/> deliveries due in id order.</summary>
    private static async Task<Database> BacklogAsync(Backend backend, int count)
    {
        var settings = await TestSettings.CreateAsync(backend);
        var database = Database.Create(NotificationStore.ServiceName, new StorageOptions
        {
            DataDirectory = settings["LabMesh:Storage:DataDirectory"]!,
            PostgresConnectionString = settings.GetValueOrDefault("ConnectionStrings:Postgres"),
        }, NullLogger.Instance);
        await database.MigrateAsync(NotificationStore.Migrations, CancellationToken.None);

        var now = DateTimeOffset.UtcNow;
        await database.WriteAsync(async (connection, transaction) =>
        {
            await connection.ExecuteAsync(
                """
                INSERT INTO webhook_endpoints (id, team_id, request_id, request_hash, url, description, event_types, escalation, enabled,
                    disabled_reason, secret, version, deleted, created_at, updated_at)
                VALUES ('whep_plan', 'team', 'r', 'h', 'https://example.org/hook', '', 'order.status_changed', 0, 1, '', 'whsec_x', 1, 0, @at, @at)
                """,
                new { at = DbTime.ToDb(now) }, transaction);
            var body = new byte[520];
            var rows = Enumerable.Range(0, count).Select(i => new
            {
                id = $"msg_{i:D8}", eventId = Guid.CreateVersion7().ToString(), body,
                at = DbTime.ToDb(now.AddMilliseconds(i - (2 * count))),
            });
            await connection.ExecuteAsync(
                """
                INSERT INTO deliveries (id, endpoint_id, team_id, event_id, event_type, body, state, attempts, created_at, next_attempt_at, last_status_code, last_error)
                VALUES (@id, 'whep_plan', 'team', @eventId, 'order.status_changed', @body, 1, 0, @at, @at, 0, '')
                """,
                rows, transaction);
            return 0;
        }, CancellationToken.None);

        return database;
    }

    private static NotificationStore Store(Database database) =>
        new(database, TimeProvider.System, new CriticalTierPolicies(new NotificationOptions()));

    private static AttemptRecord Delivered(DeliveryRecord delivery, DateTimeOffset at) =>
        new(delivery, new WebhookDecision(WebhookDecisionKind.Delivered, null, "2xx"), 200, "", at);

    private static Event StatusChanged(string team, int i) => new()
    {
        Id = Guid.CreateVersion7().ToString(),
        Type = EventTypes.OrderStatusChanged,
        CreatedAt = Timestamp.FromDateTime(DateTime.UtcNow),
        TeamId = team,
        RequisitionId = $"order-{i % 10}",
        Source = "test",
        OrderStatusChanged = new OrderStatusChanged { Status = "received", HighLevelStatus = "received", LifecycleStatus = "purchased", OrderEventId = 1 },
    };

    private static async Task<List<Delivery>> ListAllAsync(NotificationService.NotificationServiceClient client, string endpointId)
    {
        var all = new List<Delivery>();
        var token = "";
        do
        {
            var page = await client.ListDeliveriesAsync(new ListDeliveriesRequest { EndpointId = endpointId, PageSize = 100, PageToken = token }, deadline: Deadline);
            all.AddRange(page.Deliveries);
            token = page.NextPageToken;
        }
        while (token.Length > 0);

        return all;
    }
}
