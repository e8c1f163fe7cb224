using System.Data.Common;
using Dapper;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Notification.Webhooks;
using LabMesh.Core.Errors;
using LabMesh.Messaging.Storage;
using LabMesh.Core.Vocabulary;

namespace LabMesh.Notification;

/// <summary>
/// The deliveries aggregate: one per event and endpoint, claimed under a lease by the replica attempting it, its
/// attempts recorded (with a critical result's "notified" audit line and a 410's endpoint disable in the same
/// transaction), listed and queued again.
/// </summary>
public sealed partial class NotificationStore
{
    private const string DeliveryColumns =
        "id AS Id, endpoint_id AS EndpointId, team_id AS TeamId, event_id AS EventId, event_type AS EventType, critical_id AS CriticalId, " +
        "body AS Body, state AS State, attempts AS Attempts, created_at AS CreatedAt, next_attempt_at AS NextAttemptAt, " +
        "delivered_at AS DeliveredAt, last_attempt_at AS LastAttemptAt, last_status_code AS LastStatusCode, last_error AS LastError, " +
        "traceparent AS Traceparent";

    /// <summary>Queues a <c>webhook.test</c> event for one endpoint.</summary>
    public async Task<DeliveryRecord> CreateTestDeliveryAsync(EndpointRecord endpoint, Event evt, RetrySchedule schedule, CancellationToken cancellationToken)
    {
        var now = DbTime.Now(time);
        var body = WebhookPayload.Create(evt);
        await database.WriteAsync(
            (connection, transaction) => InsertDeliveryAsync(connection, transaction, endpoint, evt, null, body, schedule.FirstAttemptAt(now), now, cancellationToken),
            cancellationToken);
        return await GetDeliveryAsync(endpoint.TeamId, endpoint.Id, evt.Id, cancellationToken);
    }

    /// <summary>
    /// Records the finished <paramref name="attempts"/> of <paramref name="owner"/> (<see cref="RecordAsync"/>) and then
    /// takes up to <paramref name="limit"/> due deliveries for it (<see cref="ClaimAsync"/>), in ONE write transaction:
    /// a replica's slots freed by the recorded attempts are filled again without a transaction of their own. Both or
    /// neither: if the transaction fails, nothing is recorded (the attempts' leases lapse and they are attempted again)
    /// and nothing is claimed; if the replica dies after the commit, what it claimed is due again when the leases end.
    /// Either part may be empty (no attempts: a claim; <paramref name="limit"/> 0: a recording).
    /// </summary>
    public Task<RecordedAndClaimed> RecordAndClaimAsync(
        IReadOnlyList<AttemptRecord> attempts, string owner, DateTimeOffset now, DateTimeOffset leaseUntil, int limit, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var recorded = attempts.Count == 0 ? [] : await RecordAsync(connection, transaction, attempts, owner, cancellationToken);
            var claimed = limit > 0 ? await ClaimAsync(connection, transaction, owner, now, leaseUntil, limit, cancellationToken) : [];
            return new RecordedAndClaimed(recorded, claimed);
        }, cancellationToken);

    /// <summary>
    /// Takes up to <paramref name="limit"/> due deliveries of enabled endpoints for <paramref name="owner"/>
    /// until <paramref name="leaseUntil"/>, each with its endpoint as of the claim: no other replica attempts
    /// them meanwhile, and if this one dies they are due again when the lease ends. One statement picks and
    /// leases the rows (<see cref="ClaimSql"/>); PostgreSQL replicas skip each other's locked rows, SQLite's
    /// write lock serialises the claims. The endpoints are read once per claim, not once per attempt.
    /// </summary>
    private async Task<IReadOnlyList<ClaimedDelivery>> ClaimAsync(
        DbConnection connection, DbTransaction transaction, string owner, DateTimeOffset now, DateTimeOffset leaseUntil, int limit, CancellationToken cancellationToken)
    {
        // One constant statement per provider at its own call site: Dapper.AOT reads each at build time (and carries the
        // token only beside a constant one).
        var claimed = database.Provider == StorageProvider.Postgres
            ? await connection.QueryAsync<DeliveryRow>(
                ClaimSqlPostgres, new { owner, until = DbTime.ToDb(leaseUntil), now = DbTime.ToDb(now), limit, cancellationToken }, transaction)
            : await connection.QueryAsync<DeliveryRow>(
                ClaimSqlSqlite, new { owner, until = DbTime.ToDb(leaseUntil), now = DbTime.ToDb(now), limit, cancellationToken }, transaction);
        var rows = claimed.ToList();
        if (rows.Count == 0)
        {
            return [];
        }

        // The endpoint ids as one JSON array parameter (DbIdSet), read as a set: one statement text whatever their number.
        var endpointIds = DbIdSet.ToJson(rows.Select(r => r.EndpointId).Distinct(StringComparer.Ordinal));
        var endpointRows = database.Provider == StorageProvider.Postgres
            ? await connection.QueryAsync<EndpointRow>(
                $"SELECT {EndpointColumns} FROM webhook_endpoints WHERE id IN (SELECT json_array_elements_text(CAST(@endpointIds AS json)))",
                new { endpointIds, cancellationToken }, transaction)
            : await connection.QueryAsync<EndpointRow>(
                $"SELECT {EndpointColumns} FROM webhook_endpoints WHERE id IN (SELECT value FROM json_each(@endpointIds))",
                new { endpointIds, cancellationToken }, transaction);
        var endpoints = endpointRows.ToDictionary(e => e.Id, e => e.ToRecord(), StringComparer.Ordinal);
        return [.. rows
            .OrderBy(r => r.NextAttemptAt, StringComparer.Ordinal)
            .Select(r => new ClaimedDelivery(r.ToRecord(), endpoints[r.EndpointId]))];
    }

    /// <summary>
    /// The claim: picks the due rows along <c>ix_deliveries_due</c> (a partial index of the pending rows by
    /// due time, so the work per claim does not grow with the backlog: the literal <c>state = 1</c> matches
    /// the index's predicate, and on SQLite the unary <c>+</c> keeps the planner off <c>ix_deliveries_endpoint</c>,
    /// which reads and sorts every pending row of the endpoint) and leases them in the same statement.
    /// Internal for the query-plan tests.
    /// </summary>
    internal static string ClaimSql(StorageProvider provider) => provider == StorageProvider.Postgres ? ClaimSqlPostgres : ClaimSqlSqlite;

    private const string ClaimSqlPostgres = $"""
           UPDATE deliveries SET lease_owner = @owner, lease_until = @until
           FROM (SELECT d.id AS claim_id FROM deliveries d
                 WHERE d.state = 1 AND d.next_attempt_at <= @now AND (d.lease_until IS NULL OR d.lease_until < @now)
                   AND d.endpoint_id IN (SELECT e.id FROM webhook_endpoints e WHERE e.enabled = 1 AND e.deleted = 0)
                 ORDER BY d.next_attempt_at LIMIT @limit FOR UPDATE OF d SKIP LOCKED) claim
           WHERE deliveries.id = claim.claim_id
           RETURNING {DeliveryColumns}
           """;

    private const string ClaimSqlSqlite = $"""
           UPDATE deliveries SET lease_owner = @owner, lease_until = @until
           WHERE id IN (SELECT d.id FROM deliveries d
                        WHERE d.state = 1 AND d.next_attempt_at <= @now AND (d.lease_until IS NULL OR d.lease_until < @now)
                          AND +d.endpoint_id IN (SELECT e.id FROM webhook_endpoints e WHERE e.enabled = 1 AND e.deleted = 0)
                        ORDER BY d.next_attempt_at LIMIT @limit)
           RETURNING {DeliveryColumns}
           """;

    /// <summary>
    /// Records attempts by <paramref name="owner"/>, each with what comes next, and releases their leases, in the
    /// caller's transaction (the delivery worker gathers the attempts that finish together) and with one
    /// <c>UPDATE</c> for the whole batch (<see cref="RecordSql"/>). For each attempt, false when its lease was
    /// lost meanwhile (another replica took the delivery over): nothing is written for it. A successful critical
    /// delivery adds a "notified" line to its critical result's audit trail; a decision to disable the endpoint
    /// (410 Gone) disables it in the same transaction.
    /// </summary>
    private async Task<bool[]> RecordAsync(
        DbConnection connection, DbTransaction transaction, IReadOnlyList<AttemptRecord> attempts, string owner, CancellationToken cancellationToken)
    {
        var recorded = new bool[attempts.Count];
        var start = 0;
        while (start < attempts.Count)
        {
            // One statement per run of distinct deliveries: a delivery twice in one batch is recorded once, as one UPDATE per attempt did.
            var ids = new HashSet<string>(StringComparer.Ordinal);
            var end = start;
            while (end < attempts.Count && end - start < RecordRowsPerStatement && ids.Add(attempts[end].Delivery.Id))
            {
                end++;
            }

            // A command of its own rather than Dapper's: binding P parameters by name costs about P^2 comparisons (each
            // sqlite3_bind_parameter_index is a linear scan of the statement's names). Dapper strips the "@", so
            // Microsoft.Data.Sqlite's first lookup of each name fails after scanning them all before the prefixed one
            // finds it, and Dapper first checks each name against those already added (Parameters.Contains, another
            // scan). Named as the SQL names them, each parameter is found by one lookup.
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = RecordSql(end - start);
            AddParameter(command, "@owner", owner);
            for (var i = start; i < end; i++)
            {
                var (delivery, decision, statusCode, error, attemptedAt) = attempts[i];
                var state = StateAfter(decision);
                var at = DbTime.ToDb(attemptedAt);
                var row = i - start;
                AddParameter(command, $"@id{row}", delivery.Id);
                AddParameter(command, $"@state{row}", (int)state);
                AddParameter(command, $"@next{row}", decision.RetryAt is { } retryAt ? DbTime.ToDb(retryAt) : null);
                AddParameter(command, $"@delivered{row}", state == DeliveryState.Delivered ? at : null);
                AddParameter(command, $"@at{row}", at);
                AddParameter(command, $"@status{row}", statusCode);
                AddParameter(command, $"@error{row}", Truncate(error, 1000));
            }

            var updated = new HashSet<string>(StringComparer.Ordinal);
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    updated.Add(reader.GetString(0));
                }
            }

            for (var i = start; i < end; i++)
            {
                recorded[i] = updated.Contains(attempts[i].Delivery.Id);
            }

            start = end;
        }

        for (var i = 0; i < attempts.Count; i++)
        {
            if (!recorded[i])
            {
                continue;
            }

            var (delivery, decision, _, _, attemptedAt) = attempts[i];
            if (StateAfter(decision) == DeliveryState.Delivered && delivery.CriticalId is { } criticalId)
            {
                await InsertAuditAsync(connection, transaction, new AuditRecord(
                    criticalId, attemptedAt, AuditActions.Notified, "webhook:" + delivery.EndpointId, "webhook",
                    $"{delivery.EventType} delivered as {delivery.Id} (attempt {delivery.Attempts + 1})"), cancellationToken);
            }

            if (decision.Kind == WebhookDecisionKind.DisableEndpoint)
            {
                await connection.ExecuteAsync(
                    "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = @reason, version = version + 1, updated_at = @at WHERE id = @id AND deleted = 0 AND enabled = 1",
                    new { id = delivery.EndpointId, reason = "endpoint answered 410 Gone", at = DbTime.ToDb(DbTime.Now(time)), cancellationToken },
                    transaction);
            }
        }

        return recorded;
    }

    private static void AddParameter(DbCommand command, string name, string? value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.DbType = System.Data.DbType.String;
        parameter.Value = (object?)value ?? DBNull.Value;
        command.Parameters.Add(parameter);
    }

    private static void AddParameter(DbCommand command, string name, int value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.DbType = System.Data.DbType.Int32;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }

    // Attempts recorded by one UPDATE at most: 7 parameters a row, well under SQLite's and PostgreSQL's limits.
    private const int RecordRowsPerStatement = 256;

    private static DeliveryState StateAfter(WebhookDecision decision) => decision.Kind switch
    {
        WebhookDecisionKind.Delivered => DeliveryState.Delivered,
        WebhookDecisionKind.Retry => DeliveryState.Pending,
        _ => DeliveryState.DeadLetter,
    };

    /// <summary>
    /// Records <paramref name="rows"/> attempts in one statement, the same text for SQLite and PostgreSQL: the
    /// outcomes as a <c>VALUES</c> list (both name its columns <c>column1</c>, <c>column2</c> ...) joined to the
    /// deliveries by primary key, each row written only while <c>@owner</c> still holds its lease; answers the ids
    /// written. Internal for the query-plan tests.
    /// </summary>
    internal static string RecordSql(int rows) => RecordSqlTexts[rows] ??= BuildRecordSql(rows);

    // Built once per row count (a batch's size varies from 1 to RecordRowsPerStatement), not once per recorded batch.
    private static readonly string?[] RecordSqlTexts = new string?[RecordRowsPerStatement + 1];

    private static string BuildRecordSql(int rows)
    {
        var sql = new System.Text.StringBuilder(
            """
            UPDATE deliveries SET attempts = attempts + 1, state = v.column2, next_attempt_at = v.column3, delivered_at = v.column4,
                last_attempt_at = v.column5, last_status_code = v.column6, last_error = v.column7, lease_owner = NULL, lease_until = NULL
            FROM (VALUES 
            """);
        for (var row = 0; row < rows; row++)
        {
            sql.Append(row == 0 ? "" : ", ").Append($"(@id{row}, @state{row}, @next{row}, @delivered{row}, @at{row}, @status{row}, @error{row})");
        }

        return sql.Append(
            """
            ) AS v
            WHERE deliveries.id = v.column1 AND deliveries.lease_owner = @owner AND deliveries.state = 1
            RETURNING deliveries.id
            """).ToString();
    }

    public async Task<DeliveryRecord> GetDeliveryAsync(string teamId, string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<DeliveryRow>(
            $"SELECT {DeliveryColumns} FROM deliveries WHERE id = @id AND team_id = @teamId", new { id, teamId, cancellationToken });
        return row?.ToRecord() ?? throw new NotFoundException("Delivery", id);
    }

    public async Task<DeliveryRecord> GetDeliveryAsync(string teamId, string endpointId, string eventId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<DeliveryRow>(
            $"SELECT {DeliveryColumns} FROM deliveries WHERE endpoint_id = @endpointId AND event_id = @eventId AND team_id = @teamId",
            new { endpointId, eventId, teamId, cancellationToken });
        return row?.ToRecord() ?? throw new NotFoundException("Delivery", $"{endpointId}/{eventId}");
    }

    /// <summary>The team's deliveries, newest first.</summary>
    public async Task<IReadOnlyList<DeliveryRecord>> ListDeliveriesAsync(
        string teamId, string? endpointId, string? eventId, DeliveryState state, string? before, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<DeliveryRow>(
            $"""
            SELECT {DeliveryColumns} FROM deliveries
            WHERE team_id = @teamId AND (@endpointId IS NULL OR endpoint_id = @endpointId) AND (@eventId IS NULL OR event_id = @eventId)
              AND (@state = 0 OR state = @state) AND (@before IS NULL OR id < @before)
            ORDER BY id DESC LIMIT @limit
            """,
            new { teamId, endpointId, eventId, state = (int)state, before, limit, cancellationToken });
        return [.. rows.Select(r => r.ToRecord())];
    }

    /// <summary>
    /// Queues a dead-lettered, delivered or cancelled delivery again with a fresh schedule (same id, so
    /// the same <c>webhook-id</c>). FAILED_PRECONDITION while it is still pending or its endpoint is disabled.
    /// </summary>
    public Task<DeliveryRecord> RedeliverAsync(string teamId, string id, RetrySchedule schedule, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var row = await connection.QuerySingleOrDefaultAsync<DeliveryRow>(
                $"SELECT {DeliveryColumns} FROM deliveries WHERE id = @id AND team_id = @teamId", new { id, teamId, cancellationToken }, transaction)
                ?? throw new NotFoundException("Delivery", id);
            var delivery = row.ToRecord();
            var endpoint = await FindEndpointAsync(connection, transaction, teamId, delivery.EndpointId, cancellationToken)
                ?? throw new NotFoundException("WebhookEndpoint", delivery.EndpointId);
            if (delivery.State == DeliveryState.Pending)
            {
                throw new IllegalTransitionException($"Delivery {id}", "pending", "pending", ["dead_letter -> pending", "delivered -> pending", "cancelled -> pending"]);
            }

            if (!endpoint.Enabled)
            {
                throw new IllegalTransitionException(
                    $"Delivery {id}", WordOf(delivery.State), "pending", ["enable the endpoint first (UpdateWebhookEndpoint enabled=true)"]);
            }

            var now = DbTime.Now(time);
            var next = schedule.FirstAttemptAt(now);
            var updated = await connection.QuerySingleAsync<DeliveryRow>(
                $"""
                UPDATE deliveries SET state = @pending, attempts = 0, next_attempt_at = @next, lease_owner = NULL, lease_until = NULL,
                    delivered_at = NULL, last_error = 'redelivery requested'
                WHERE id = @id RETURNING {DeliveryColumns}
                """,
                new { pending = (int)DeliveryState.Pending, next = DbTime.ToDb(next), id, cancellationToken }, transaction);
            return updated.ToRecord();
        }, cancellationToken);

    internal static string WordOf(DeliveryState state) => EnumWords.Word(state) is { Length: > 0 } word ? word : "unspecified";

    // A command of its own rather than Dapper's: Dapper.AOT 1.1.0 takes a byte[] member for a list and expands it
    // (SqlMapper.PackListParameters rewrites @body into one parameter per byte; DapperAOT issue 226), so the body is bound
    // here as one binary parameter, each parameter named as the SQL names it (one lookup each, see RecordAsync).
    private static async Task<int> InsertDeliveryAsync(
        DbConnection connection, DbTransaction transaction, EndpointRecord endpoint, Event evt, string? criticalId,
        byte[] body, DateTimeOffset firstAttempt, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = """
            INSERT INTO deliveries (id, endpoint_id, team_id, event_id, event_type, critical_id, body, state, attempts, created_at, next_attempt_at,
                last_status_code, last_error, traceparent)
            VALUES (@id, @endpointId, @teamId, @eventId, @eventType, @criticalId, @body, @pending, 0, @now, @next, 0, '', @traceparent)
            ON CONFLICT (event_id, endpoint_id) DO NOTHING
            """;
        AddParameter(command, "@id", NewDeliveryId());
        AddParameter(command, "@endpointId", endpoint.Id);
        AddParameter(command, "@teamId", endpoint.TeamId);
        AddParameter(command, "@eventId", evt.Id);
        AddParameter(command, "@eventType", evt.Type);
        AddParameter(command, "@criticalId", criticalId);
        var bodyParameter = command.CreateParameter();
        bodyParameter.ParameterName = "@body";
        bodyParameter.DbType = System.Data.DbType.Binary;
        bodyParameter.Value = body;
        command.Parameters.Add(bodyParameter);
        AddParameter(command, "@pending", (int)DeliveryState.Pending);
        AddParameter(command, "@now", DbTime.ToDb(now));
        AddParameter(command, "@next", DbTime.ToDb(firstAttempt));
        AddParameter(command, "@traceparent", string.IsNullOrEmpty(evt.Traceparent) ? null : evt.Traceparent);
        return await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>A Standard Webhooks message id: <c>msg_</c> and a version 7 GUID, so ids order by creation time.</summary>
    internal static string NewDeliveryId() => "msg_" + Guid.CreateVersion7().ToString("N");

    internal sealed class DeliveryRow
    {
        public string Id { get; set; } = "";
        public string EndpointId { get; set; } = "";
        public string TeamId { get; set; } = "";
        public string EventId { get; set; } = "";
        public string EventType { get; set; } = "";
        public string? CriticalId { get; set; }
        public byte[] Body { get; set; } = [];
        public int State { get; set; }
        public int Attempts { get; set; }
        public string CreatedAt { get; set; } = "";
        public string? NextAttemptAt { get; set; }
        public string? DeliveredAt { get; set; }
        public string? LastAttemptAt { get; set; }
        public int LastStatusCode { get; set; }
        public string LastError { get; set; } = "";
        public string? Traceparent { get; set; }

        public DeliveryRecord ToRecord() => new(
            Id, EndpointId, TeamId, EventId, EventType, CriticalId, Body, (DeliveryState)State, Attempts, DbTime.FromDb(CreatedAt),
            NextAttemptAt is null ? null : DbTime.FromDb(NextAttemptAt), DeliveredAt is null ? null : DbTime.FromDb(DeliveredAt),
            LastAttemptAt is null ? null : DbTime.FromDb(LastAttemptAt), LastStatusCode, LastError, Traceparent);
    }
}
