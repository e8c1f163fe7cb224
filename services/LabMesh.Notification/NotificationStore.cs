using System.Data.Common;
using Dapper;
using Google.Protobuf.WellKnownTypes;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Notification.Webhooks;
using LabMesh.Security.Audit;
using LabMesh.Core.Errors;
using LabMesh.Messaging.Events;
using LabMesh.Messaging.Storage;
using LabMesh.Core.Diagnostics;
using LabMesh.Core.Vocabulary;

namespace LabMesh.Notification;

/// <summary>
/// The Notification service's store: webhook endpoints, deliveries (one per event and endpoint,
/// with the lease of the replica attempting it), critical results with their audit trail, and the
/// outbox for the events the service itself publishes (acknowledged, escalated). Reads are scoped
/// to a team; another team's rows are NOT_FOUND.
/// </summary>
public sealed class NotificationStore(Database database, TimeProvider time, CriticalTierPolicies tiers)
{
    public const string ServiceName = "notification";

    /// <summary>How many of its latest decliners a critical result keeps in <c>declined_by</c>.</summary>
    public const int MaxDeclinedBy = 20;

    private const string EndpointColumns =
        "id AS Id, team_id AS TeamId, url AS Url, description AS Description, event_types AS EventTypes, escalation AS Escalation, " +
        "enabled AS Enabled, disabled_reason AS DisabledReason, secret AS Secret, previous_secret AS PreviousSecret, " +
        "previous_secret_expires_at AS PreviousSecretExpiresAt, version AS Version, created_at AS CreatedAt, updated_at AS UpdatedAt";

    private const string DeliveryColumns =
        "id AS Id, endpoint_id AS EndpointId, team_id AS TeamId, event_id AS EventId, event_type AS EventType, critical_id AS CriticalId, " +
        "body AS Body, state AS State, attempts AS Attempts, created_at AS CreatedAt, next_attempt_at AS NextAttemptAt, " +
        "delivered_at AS DeliveredAt, last_attempt_at AS LastAttemptAt, last_status_code AS LastStatusCode, last_error AS LastError, " +
        "traceparent AS Traceparent";

    private const string CriticalColumns =
        "id AS Id, team_id AS TeamId, requisition_id AS RequisitionId, report_id AS ReportId, report_version AS ReportVersion, " +
        "critical_analytes AS CriticalAnalytes, opened_at AS OpenedAt, due_at AS DueAt, escalations AS Escalations, " +
        "acknowledged_at AS AcknowledgedAt, acknowledged_by AS AcknowledgedBy, channel AS Channel, read_back AS ReadBack, " +
        "tier AS Tier, escalated_to AS EscalatedTo, declined_by AS DeclinedBy";

    private const string Schema = """
        CREATE TABLE webhook_endpoints (
            id TEXT PRIMARY KEY,
            team_id TEXT NOT NULL,
            request_id TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            url TEXT NOT NULL,
            description TEXT NOT NULL,
            event_types TEXT NOT NULL,
            escalation INTEGER NOT NULL,
            enabled INTEGER NOT NULL,
            disabled_reason TEXT NOT NULL,
            secret TEXT NOT NULL,
            previous_secret TEXT NULL,
            previous_secret_expires_at TEXT NULL,
            version BIGINT NOT NULL,
            deleted INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            UNIQUE (team_id, request_id)
        );
        CREATE INDEX ix_endpoints_team ON webhook_endpoints (team_id, deleted, id);
        CREATE TABLE deliveries (
            id TEXT PRIMARY KEY,
            endpoint_id TEXT NOT NULL,
            team_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            event_type TEXT NOT NULL,
            critical_id TEXT NULL,
            body BLOB NOT NULL,
            state INTEGER NOT NULL,
            attempts INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            next_attempt_at TEXT NULL,
            lease_owner TEXT NULL,
            lease_until TEXT NULL,
            delivered_at TEXT NULL,
            last_attempt_at TEXT NULL,
            last_status_code INTEGER NOT NULL,
            last_error TEXT NOT NULL,
            UNIQUE (event_id, endpoint_id)
        );
        CREATE INDEX ix_deliveries_due ON deliveries (next_attempt_at) WHERE state = 1;
        CREATE INDEX ix_deliveries_team ON deliveries (team_id, id);
        CREATE INDEX ix_deliveries_endpoint ON deliveries (endpoint_id, state);
        CREATE TABLE critical_results (
            id TEXT PRIMARY KEY,
            team_id TEXT NOT NULL,
            requisition_id TEXT NOT NULL,
            report_id TEXT NOT NULL,
            report_version INTEGER NOT NULL,
            critical_analytes TEXT NOT NULL,
            opened_at TEXT NOT NULL,
            due_at TEXT NOT NULL,
            escalations INTEGER NOT NULL,
            acknowledged_at TEXT NULL,
            acknowledged_by TEXT NULL,
            channel INTEGER NOT NULL,
            read_back TEXT NULL
        );
        CREATE INDEX ix_critical_due ON critical_results (due_at) WHERE acknowledged_at IS NULL;
        CREATE INDEX ix_critical_open ON critical_results (team_id, id) WHERE acknowledged_at IS NULL;
        """;

    private const string SqliteAudit = """
        CREATE TABLE critical_audit (
            sequence INTEGER PRIMARY KEY AUTOINCREMENT,
            critical_id TEXT NOT NULL,
            at TEXT NOT NULL,
            action TEXT NOT NULL,
            actor TEXT NOT NULL,
            channel TEXT NOT NULL,
            detail TEXT NOT NULL
        );
        CREATE INDEX ix_critical_audit ON critical_audit (critical_id, sequence);
        """;

    public static IReadOnlyList<Migration> Migrations { get; } =
    [
        new(1, "endpoints, deliveries, critical results", Schema, Schema.Replace(" BLOB ", " BYTEA ", StringComparison.Ordinal)),
        new(2, "critical audit", SqliteAudit, SqliteAudit.Replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY", StringComparison.Ordinal)),
        Outbox.Migration(3),
        AuditLog.Migration(4),
        // The W3C trace context of the event a delivery carries, so its webhook POST joins the lab order's trace.
        new(5, "delivery trace context", TraceContextColumn, TraceContextColumn),
        // CLSI GP47's tier of a critical result, whom its last escalation reached, and who declined it ("not my patient").
        new(6, "critical result tiers", CriticalTierColumns, CriticalTierColumns),
    ];

    private const string CriticalTierColumns = """
        ALTER TABLE critical_results ADD COLUMN tier TEXT NOT NULL DEFAULT 'critical_risk';
        ALTER TABLE critical_results ADD COLUMN escalated_to TEXT NOT NULL DEFAULT '';
        ALTER TABLE critical_results ADD COLUMN declined_by TEXT NOT NULL DEFAULT '';
        """;

    private const string TraceContextColumn = "ALTER TABLE deliveries ADD COLUMN traceparent TEXT;";

    public StorageProvider Provider => database.Provider;

    // ---- Webhook endpoints -------------------------------------------------------------------

    /// <summary>
    /// Stores a new endpoint, or returns the one <paramref name="requestId"/> created before (ALREADY_EXISTS
    /// when that one was made from a different request).
    /// </summary>
    /// <summary>
    /// Creates the endpoint, or answers the one an earlier call with the same <paramref name="requestId"/> created
    /// (<c>Created</c> false): NOT_FOUND once that one is deleted, ALREADY_EXISTS when the request differs.
    /// </summary>
    public async Task<(EndpointRecord Endpoint, bool Created)> CreateEndpointAsync(EndpointRecord endpoint, string requestId, string requestHash, CancellationToken cancellationToken)
    {
        return await database.WriteAsync(async (connection, transaction) =>
        {
            var existing = await connection.QuerySingleOrDefaultAsync<EndpointRow>(new CommandDefinition(
                $"SELECT {EndpointColumns}, request_hash AS RequestHash, deleted AS Deleted FROM webhook_endpoints WHERE team_id = @TeamId AND request_id = @requestId",
                new { endpoint.TeamId, requestId }, transaction, cancellationToken: cancellationToken));
            if (existing is not null)
            {
                return existing.RequestHash != requestHash
                    ? throw new AlreadyExistsException("WebhookEndpoint", existing.Id, $"request_id '{requestId}' already created endpoint '{existing.Id}' from a different request.")
                    : existing.Deleted != 0
                        ? throw new NotFoundException("WebhookEndpoint", existing.Id)
                        : (existing.ToRecord(), false);
            }

            await connection.ExecuteAsync(new CommandDefinition(
                """
                INSERT INTO webhook_endpoints (id, team_id, request_id, request_hash, url, description, event_types, escalation, enabled,
                    disabled_reason, secret, previous_secret, previous_secret_expires_at, version, deleted, created_at, updated_at)
                VALUES (@Id, @TeamId, @requestId, @requestHash, @Url, @Description, @types, @escalation, 1, '', @Secret, NULL, NULL, 1, 0, @at, @at)
                """,
                new
                {
                    endpoint.Id, endpoint.TeamId, requestId, requestHash, endpoint.Url, endpoint.Description,
                    types = JoinTypes(endpoint.EventTypes), escalation = endpoint.Escalation ? 1 : 0, endpoint.Secret, at = DbTime.ToDb(endpoint.CreatedAt),
                },
                transaction, cancellationToken: cancellationToken));
            return (endpoint with { Enabled = true, Version = 1 }, true);
        }, cancellationToken);
    }

    /// <summary>The team's endpoint, or NOT_FOUND (also for a deleted one).</summary>
    public async Task<EndpointRecord> GetEndpointAsync(string teamId, string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await FindEndpointAsync(connection, null, teamId, id, cancellationToken)) ?? throw new NotFoundException("WebhookEndpoint", id);
    }

    public async Task<IReadOnlyList<EndpointRecord>> ListEndpointsAsync(string teamId, string? after, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<EndpointRow>(new CommandDefinition(
            $"SELECT {EndpointColumns} FROM webhook_endpoints WHERE team_id = @teamId AND deleted = 0 AND (@after IS NULL OR id > @after) ORDER BY id LIMIT @limit",
            new { teamId, after, limit }, cancellationToken: cancellationToken));
        return [.. rows.Select(r => r.ToRecord())];
    }

    /// <summary>
    /// Applies <paramref name="change"/> to the team's endpoint and stores it with the next version;
    /// ABORTED when <paramref name="expectedEtag"/> is set and not the current one.
    /// </summary>
    public Task<EndpointRecord> UpdateEndpointAsync(
        string teamId, string id, string? expectedEtag, Func<EndpointRecord, EndpointRecord> change, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var current = await FindEndpointAsync(connection, transaction, teamId, id, cancellationToken) ?? throw new NotFoundException("WebhookEndpoint", id);
            if (!string.IsNullOrEmpty(expectedEtag) && expectedEtag != current.Etag)
            {
                throw new StaleEtagException("WebhookEndpoint", id);
            }

            var updated = change(current) with { Version = current.Version + 1, UpdatedAt = time.GetUtcNow() };
            await connection.ExecuteAsync(new CommandDefinition(
                """
                UPDATE webhook_endpoints SET url = @Url, description = @Description, event_types = @types, escalation = @escalation,
                    enabled = @enabled, disabled_reason = @DisabledReason, secret = @Secret, previous_secret = @PreviousSecret,
                    previous_secret_expires_at = @previousExpires, version = @Version, updated_at = @at
                WHERE id = @Id
                """,
                new
                {
                    updated.Url, updated.Description, types = JoinTypes(updated.EventTypes), escalation = updated.Escalation ? 1 : 0,
                    enabled = updated.Enabled ? 1 : 0, updated.DisabledReason, updated.Secret, updated.PreviousSecret,
                    previousExpires = updated.PreviousSecretExpiresAt is { } expires ? DbTime.ToDb(expires) : null,
                    updated.Version, at = DbTime.ToDb(updated.UpdatedAt), updated.Id,
                },
                transaction, cancellationToken: cancellationToken));
            return updated;
        }, cancellationToken);

    /// <summary>Deletes the team's endpoint and cancels its pending deliveries (their records stay).</summary>
    public Task DeleteEndpointAsync(string teamId, string id, string? expectedEtag, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var current = await FindEndpointAsync(connection, transaction, teamId, id, cancellationToken) ?? throw new NotFoundException("WebhookEndpoint", id);
            if (!string.IsNullOrEmpty(expectedEtag) && expectedEtag != current.Etag)
            {
                throw new StaleEtagException("WebhookEndpoint", id);
            }

            var at = DbTime.ToDb(time.GetUtcNow());
            await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE webhook_endpoints SET deleted = 1, version = version + 1, updated_at = @at WHERE id = @id",
                new { id, at }, transaction, cancellationToken: cancellationToken));
            await connection.ExecuteAsync(new CommandDefinition(
                "UPDATE deliveries SET state = @cancelled, next_attempt_at = NULL, last_error = 'endpoint deleted' WHERE endpoint_id = @id AND state = @pending",
                new { id, cancelled = (int)DeliveryState.Cancelled, pending = (int)DeliveryState.Pending }, transaction, cancellationToken: cancellationToken));
            return 0;
        }, cancellationToken);

    // ---- Ingesting events --------------------------------------------------------------------

    /// <summary>
    /// Turns bus entries into what the service owes them, in one transaction: a delivery for every
    /// enabled endpoint of the event's team that accepts its type, and for <c>labtest.result.critical</c>
    /// an open critical result with its first audit line. Idempotent: an entry ingested again (another
    /// replica took it over, a relay repeated it) adds nothing. Returns how many deliveries were queued.
    /// </summary>
    public async Task<int> IngestAsync(IReadOnlyList<BusEntry> entries, RetrySchedule schedule, CancellationToken cancellationToken)
    {
        var opened = 0;
        var queued = await database.WriteAsync(async (connection, transaction) =>
        {
            var now = time.GetUtcNow();
            var endpointsByTeam = new Dictionary<string, IReadOnlyList<EndpointRecord>>(StringComparer.Ordinal);
            var deliveries = 0;
            opened = 0;
            foreach (var entry in entries)
            {
                var evt = entry.Event;
                if (string.IsNullOrEmpty(evt.TeamId))
                {
                    continue;
                }

                if (evt.Type == EventTypes.LabTestResultCritical && evt.CriticalResult is { } critical)
                {
                    opened += await OpenCriticalAsync(connection, transaction, evt, critical, now, tiers.Resolve(evt.TeamId, critical.Tier), cancellationToken) ? 1 : 0;
                }

                if (!endpointsByTeam.TryGetValue(evt.TeamId, out var endpoints))
                {
                    var rows = await connection.QueryAsync<EndpointRow>(new CommandDefinition(
                        $"SELECT {EndpointColumns} FROM webhook_endpoints WHERE team_id = @TeamId AND deleted = 0 AND enabled = 1",
                        new { evt.TeamId }, transaction, cancellationToken: cancellationToken));
                    endpoints = [.. rows.Select(r => r.ToRecord())];
                    endpointsByTeam[evt.TeamId] = endpoints;
                }

                // An endpoint is owed the events made after it was created, not older ones the bus hands
                // over again (a replay after a restart, a stream read from far back).
                var created = evt.CreatedAt?.ToDateTimeOffset();
                var accepting = endpoints.Where(e => e.Accepts(evt.Type) && !(created < e.CreatedAt)).ToList();
                if (accepting.Count == 0)
                {
                    continue;
                }

                var body = WebhookPayload.Create(evt);
                foreach (var endpoint in accepting)
                {
                    deliveries += await InsertDeliveryAsync(
                        connection, transaction, endpoint, evt, CriticalSource.CriticalIdOf(evt), body, schedule.FirstAttemptAt(now), now, cancellationToken);
                }
            }

            return deliveries;
        }, cancellationToken);
        if (opened > 0)
        {
            // Counted once committed: a batch ingested again opens nothing again.
            LabMeshMetrics.CriticalOpened.Add(opened);
        }

        return queued;
    }

    /// <summary>Queues a <c>webhook.test</c> event for one endpoint.</summary>
    public async Task<DeliveryRecord> CreateTestDeliveryAsync(EndpointRecord endpoint, Event evt, RetrySchedule schedule, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        var body = WebhookPayload.Create(evt);
        await database.WriteAsync(
            (connection, transaction) => InsertDeliveryAsync(connection, transaction, endpoint, evt, null, body, schedule.FirstAttemptAt(now), now, cancellationToken),
            cancellationToken);
        return await GetDeliveryAsync(endpoint.TeamId, endpoint.Id, evt.Id, cancellationToken);
    }

    // ---- Deliveries --------------------------------------------------------------------------

    /// <summary>
    /// Takes up to <paramref name="limit"/> due deliveries of enabled endpoints for <paramref name="owner"/>
    /// until <paramref name="leaseUntil"/>, each with its endpoint as of the claim: no other replica attempts
    /// them meanwhile, and if this one dies they are due again when the lease ends. One statement picks and
    /// leases the rows (<see cref="ClaimSql"/>); PostgreSQL replicas skip each other's locked rows, SQLite's
    /// write lock serialises the claims. The endpoints are read once per claim, not once per attempt.
    /// </summary>
    public Task<IReadOnlyList<ClaimedDelivery>> ClaimDueAsync(string owner, DateTimeOffset now, DateTimeOffset leaseUntil, int limit, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var rows = (await connection.QueryAsync<DeliveryRow>(new CommandDefinition(
                ClaimSql(database.Provider),
                new { owner, until = DbTime.ToDb(leaseUntil), now = DbTime.ToDb(now), limit }, transaction, cancellationToken: cancellationToken))).ToList();
            if (rows.Count == 0)
            {
                return (IReadOnlyList<ClaimedDelivery>)[];
            }

            var endpointIds = rows.Select(r => r.EndpointId).Distinct(StringComparer.Ordinal).ToArray();
            var endpoints = (await connection.QueryAsync<EndpointRow>(new CommandDefinition(
                // Dapper expands the list for SQLite; Npgsql takes it as one array parameter.
                $"SELECT {EndpointColumns} FROM webhook_endpoints WHERE id {(database.Provider == StorageProvider.Postgres ? "= ANY(@endpointIds)" : "IN @endpointIds")}",
                new { endpointIds }, transaction, cancellationToken: cancellationToken))).ToDictionary(e => e.Id, e => e.ToRecord(), StringComparer.Ordinal);
            return (IReadOnlyList<ClaimedDelivery>)[.. rows
                .OrderBy(r => r.NextAttemptAt, StringComparer.Ordinal)
                .Select(r => new ClaimedDelivery(r.ToRecord(), endpoints[r.EndpointId]))];
        }, cancellationToken);

    /// <summary>
    /// The claim: picks the due rows along <c>ix_deliveries_due</c> (a partial index of the pending rows by
    /// due time, so the work per claim does not grow with the backlog: the literal <c>state = 1</c> matches
    /// the index's predicate, and on SQLite the unary <c>+</c> keeps the planner off <c>ix_deliveries_endpoint</c>,
    /// which reads and sorts every pending row of the endpoint) and leases them in the same statement.
    /// Internal for the query-plan tests.
    /// </summary>
    internal static string ClaimSql(StorageProvider provider) => provider == StorageProvider.Postgres
        ? $"""
           UPDATE deliveries SET lease_owner = @owner, lease_until = @until
           FROM (SELECT d.id AS claim_id FROM deliveries d
                 WHERE d.state = 1 AND d.next_attempt_at <= @now AND (d.lease_until IS NULL OR d.lease_until < @now)
                   AND d.endpoint_id IN (SELECT e.id FROM webhook_endpoints e WHERE e.enabled = 1 AND e.deleted = 0)
                 ORDER BY d.next_attempt_at LIMIT @limit FOR UPDATE OF d SKIP LOCKED) claim
           WHERE deliveries.id = claim.claim_id
           RETURNING {DeliveryColumns}
           """
        : $"""
           UPDATE deliveries SET lease_owner = @owner, lease_until = @until
           WHERE id IN (SELECT d.id FROM deliveries d
                        WHERE d.state = 1 AND d.next_attempt_at <= @now AND (d.lease_until IS NULL OR d.lease_until < @now)
                          AND +d.endpoint_id IN (SELECT e.id FROM webhook_endpoints e WHERE e.enabled = 1 AND e.deleted = 0)
                        ORDER BY d.next_attempt_at LIMIT @limit)
           RETURNING {DeliveryColumns}
           """;

    /// <summary>
    /// Records attempts by <paramref name="owner"/>, each with what comes next, and releases their leases, all
    /// in one transaction (the delivery worker gathers the attempts that finish together). For each attempt,
    /// false when its lease was lost meanwhile (another replica took the delivery over): nothing is written
    /// for it. A successful critical delivery adds a "notified" line to its critical result's audit trail; a
    /// decision to disable the endpoint (410 Gone) disables it in the same transaction.
    /// </summary>
    public Task<bool[]> RecordAttemptsAsync(IReadOnlyList<AttemptRecord> attempts, string owner, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var recorded = new bool[attempts.Count];
            for (var i = 0; i < attempts.Count; i++)
            {
                var (delivery, decision, statusCode, error, attemptedAt) = attempts[i];
                var state = decision.Kind switch
                {
                    WebhookDecisionKind.Delivered => DeliveryState.Delivered,
                    WebhookDecisionKind.Retry => DeliveryState.Pending,
                    _ => DeliveryState.DeadLetter,
                };
                var at = DbTime.ToDb(attemptedAt);
                var updated = await connection.ExecuteAsync(new CommandDefinition(
                    """
                    UPDATE deliveries SET attempts = attempts + 1, state = @state, next_attempt_at = @next, delivered_at = @delivered,
                        last_attempt_at = @at, last_status_code = @statusCode, last_error = @error, lease_owner = NULL, lease_until = NULL
                    WHERE id = @Id AND lease_owner = @owner AND state = @pending
                    """,
                    new
                    {
                        state = (int)state,
                        next = decision.RetryAt is { } retryAt ? DbTime.ToDb(retryAt) : null,
                        delivered = state == DeliveryState.Delivered ? at : null,
                        at, statusCode, error = Truncate(error, 1000), delivery.Id, owner, pending = (int)DeliveryState.Pending,
                    },
                    transaction, cancellationToken: cancellationToken));
                if (updated == 0)
                {
                    continue;
                }

                recorded[i] = true;
                if (state == DeliveryState.Delivered && delivery.CriticalId is { } criticalId)
                {
                    await InsertAuditAsync(connection, transaction, new AuditRecord(
                        criticalId, attemptedAt, AuditActions.Notified, "webhook:" + delivery.EndpointId, "webhook",
                        $"{delivery.EventType} delivered as {delivery.Id} (attempt {delivery.Attempts + 1})"), cancellationToken);
                }

                if (decision.Kind == WebhookDecisionKind.DisableEndpoint)
                {
                    await connection.ExecuteAsync(new CommandDefinition(
                        "UPDATE webhook_endpoints SET enabled = 0, disabled_reason = @reason, version = version + 1, updated_at = @at WHERE id = @id AND deleted = 0 AND enabled = 1",
                        new { id = delivery.EndpointId, reason = "endpoint answered 410 Gone", at = DbTime.ToDb(time.GetUtcNow()) },
                        transaction, cancellationToken: cancellationToken));
                }
            }

            return recorded;
        }, cancellationToken);

    public async Task<DeliveryRecord> GetDeliveryAsync(string teamId, string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<DeliveryRow>(new CommandDefinition(
            $"SELECT {DeliveryColumns} FROM deliveries WHERE id = @id AND team_id = @teamId", new { id, teamId }, cancellationToken: cancellationToken));
        return row?.ToRecord() ?? throw new NotFoundException("Delivery", id);
    }

    public async Task<DeliveryRecord> GetDeliveryAsync(string teamId, string endpointId, string eventId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<DeliveryRow>(new CommandDefinition(
            $"SELECT {DeliveryColumns} FROM deliveries WHERE endpoint_id = @endpointId AND event_id = @eventId AND team_id = @teamId",
            new { endpointId, eventId, teamId }, cancellationToken: cancellationToken));
        return row?.ToRecord() ?? throw new NotFoundException("Delivery", $"{endpointId}/{eventId}");
    }

    /// <summary>The team's deliveries, newest first.</summary>
    public async Task<IReadOnlyList<DeliveryRecord>> ListDeliveriesAsync(
        string teamId, string? endpointId, string? eventId, DeliveryState state, string? before, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<DeliveryRow>(new CommandDefinition(
            $"""
            SELECT {DeliveryColumns} FROM deliveries
            WHERE team_id = @teamId AND (@endpointId IS NULL OR endpoint_id = @endpointId) AND (@eventId IS NULL OR event_id = @eventId)
              AND (@state = 0 OR state = @state) AND (@before IS NULL OR id < @before)
            ORDER BY id DESC LIMIT @limit
            """,
            new { teamId, endpointId, eventId, state = (int)state, before, limit }, cancellationToken: cancellationToken));
        return [.. rows.Select(r => r.ToRecord())];
    }

    /// <summary>
    /// Queues a dead-lettered, delivered or cancelled delivery again with a fresh schedule (same id, so
    /// the same <c>webhook-id</c>). FAILED_PRECONDITION while it is still pending or its endpoint is disabled.
    /// </summary>
    public Task<DeliveryRecord> RedeliverAsync(string teamId, string id, RetrySchedule schedule, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var row = await connection.QuerySingleOrDefaultAsync<DeliveryRow>(new CommandDefinition(
                $"SELECT {DeliveryColumns} FROM deliveries WHERE id = @id AND team_id = @teamId", new { id, teamId }, transaction, cancellationToken: cancellationToken))
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

            var now = time.GetUtcNow();
            var next = schedule.FirstAttemptAt(now);
            var updated = await connection.QuerySingleAsync<DeliveryRow>(new CommandDefinition(
                $"""
                UPDATE deliveries SET state = @pending, attempts = 0, next_attempt_at = @next, lease_owner = NULL, lease_until = NULL,
                    delivered_at = NULL, last_error = 'redelivery requested'
                WHERE id = @id RETURNING {DeliveryColumns}
                """,
                new { pending = (int)DeliveryState.Pending, next = DbTime.ToDb(next), id }, transaction, cancellationToken: cancellationToken));
            return updated.ToRecord();
        }, cancellationToken);

    // ---- Critical results --------------------------------------------------------------------

    public async Task<CriticalRecord> GetCriticalAsync(string teamId, string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await FindCriticalAsync(connection, null, teamId, id, cancellationToken)) ?? throw new NotFoundException("CriticalResult", id);
    }

    /// <summary>The team's unacknowledged critical results, oldest first (ids are time-ordered).</summary>
    public async Task<IReadOnlyList<CriticalRecord>> ListOpenCriticalAsync(string teamId, string? requisitionId, string? after, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<CriticalRow>(new CommandDefinition(
            $"""
            SELECT {CriticalColumns} FROM critical_results
            WHERE team_id = @teamId AND acknowledged_at IS NULL AND (@requisitionId IS NULL OR requisition_id = @requisitionId)
              AND (@after IS NULL OR id > @after)
            ORDER BY id LIMIT @limit
            """,
            new { teamId, requisitionId, after, limit }, cancellationToken: cancellationToken));
        return [.. rows.Select(r => r.ToRecord())];
    }

    public async Task<IReadOnlyList<AuditRecord>> ListAuditAsync(string criticalId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<AuditRow>(new CommandDefinition(
            "SELECT critical_id AS CriticalId, at AS At, action AS Action, actor AS Actor, channel AS Channel, detail AS Detail FROM critical_audit WHERE critical_id = @criticalId ORDER BY at, sequence",
            new { criticalId }, cancellationToken: cancellationToken));
        return [.. rows.Select(r => new AuditRecord(r.CriticalId, DbTime.FromDb(r.At), r.Action, r.Actor, r.Channel, r.Detail))];
    }

    /// <summary>
    /// Appends audit lines. A line may come before its critical result is opened (a stream can carry the
    /// event before this service's ingest stores it), so lines are keyed by the critical event's id only.
    /// </summary>
    public Task AddAuditAsync(IReadOnlyList<AuditRecord> entries, CancellationToken cancellationToken) =>
        entries.Count == 0 ? Task.CompletedTask : database.WriteAsync(async (connection, transaction) =>
        {
            foreach (var entry in entries)
            {
                await InsertAuditAsync(connection, transaction, entry, cancellationToken);
            }

            return 0;
        }, cancellationToken);

    /// <summary>
    /// Closes the team's critical result with a person's acknowledgement, its audit line and a
    /// <c>critical_result.acknowledged</c> event, together. FAILED_PRECONDITION when it was
    /// acknowledged already (naming by whom); the timestamp must not precede its opening.
    /// </summary>
    public async Task<CriticalRecord> AcknowledgeAsync(
        string teamId, string id, string acknowledgedBy, DateTimeOffset acknowledgedAt, AcknowledgementChannel channel, string readBack, CancellationToken cancellationToken)
    {
        var acknowledged = await AcknowledgeInTransactionAsync(teamId, id, acknowledgedBy, acknowledgedAt, channel, readBack, cancellationToken);
        LabMeshMetrics.CriticalAcknowledged.Add(1);
        LabMeshMetrics.TimeToAcknowledge.Record(Math.Max(0, (acknowledgedAt - acknowledged.OpenedAt).TotalSeconds));
        return acknowledged;
    }

    private Task<CriticalRecord> AcknowledgeInTransactionAsync(
        string teamId, string id, string acknowledgedBy, DateTimeOffset acknowledgedAt, AcknowledgementChannel channel, string readBack, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var current = await FindCriticalAsync(connection, transaction, teamId, id, cancellationToken) ?? throw new NotFoundException("CriticalResult", id);
            if (current.AcknowledgedAt is { } when)
            {
                throw new IllegalTransitionException(
                    $"Critical result {id} (acknowledged by {current.AcknowledgedBy} at {when:O})", "acknowledged", "acknowledged", []);
            }

            if (acknowledgedAt < current.OpenedAt)
            {
                throw new InvalidArgumentException("acknowledged_at", $"is before the critical result opened ({current.OpenedAt:O}).");
            }

            var changed = await connection.ExecuteAsync(new CommandDefinition(
                """
                UPDATE critical_results SET acknowledged_at = @at, acknowledged_by = @acknowledgedBy, channel = @channel, read_back = @readBack
                WHERE id = @id AND acknowledged_at IS NULL
                """,
                new { at = DbTime.ToDb(acknowledgedAt), acknowledgedBy, channel = (int)channel, readBack, id }, transaction, cancellationToken: cancellationToken));
            if (changed == 0)
            {
                throw new StaleEtagException("CriticalResult", id);
            }

            var channelWord = NotificationWords.Channel(channel);
            await InsertAuditAsync(connection, transaction, new AuditRecord(
                id, time.GetUtcNow(), AuditActions.Acknowledged, acknowledgedBy, channelWord,
                $"read back at {acknowledgedAt:O} after {current.Escalations} escalation(s)"), cancellationToken);
            await Outbox.AddAsync(transaction, new Event
            {
                Type = EventTypes.CriticalResultAcknowledged,
                TeamId = current.TeamId,
                RequisitionId = current.RequisitionId,
                Source = ServiceName,
                CriticalResultAcknowledged = new CriticalResultAcknowledged
                {
                    CriticalResultId = id,
                    ReportId = current.ReportId,
                    ReportVersion = current.ReportVersion,
                    AcknowledgedBy = acknowledgedBy,
                    AcknowledgedAt = Timestamp.FromDateTimeOffset(acknowledgedAt),
                    Channel = channelWord,
                    Escalations = current.Escalations,
                    Tier = current.Tier,
                },
            }, cancellationToken);
            return current with { AcknowledgedAt = acknowledgedAt, AcknowledgedBy = acknowledgedBy, Channel = channel, ReadBack = readBack };
        }, cancellationToken);

    /// <summary>
    /// Escalates up to <paramref name="limit"/> critical results whose window passed unacknowledged:
    /// each gets its next escalation number, the next step of its tier's escalation chain, a new due time one
    /// window later (its team's and tier's, <see cref="CriticalTierPolicies"/>), an audit line and a
    /// <c>critical_result.escalated</c> event, together. A result is escalated once per window however
    /// many replicas look (the due time is compared and moved in the same statement).
    /// </summary>
    public Task<IReadOnlyList<CriticalRecord>> EscalateOverdueAsync(int limit, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var now = time.GetUtcNow();
            var lockClause = database.Provider == StorageProvider.Postgres ? "FOR UPDATE SKIP LOCKED" : "";
            var due = await connection.QueryAsync<CriticalRow>(new CommandDefinition(
                $"SELECT {CriticalColumns} FROM critical_results WHERE acknowledged_at IS NULL AND due_at <= @now ORDER BY due_at LIMIT @limit {lockClause}",
                new { now = DbTime.ToDb(now), limit }, transaction, cancellationToken: cancellationToken));
            var escalated = new List<CriticalRecord>();
            foreach (var row in due)
            {
                if (await EscalateAsync(connection, transaction, row.ToRecord(), row.DueAt, now, declinedBy: null, cancellationToken) is { } next)
                {
                    escalated.Add(next);
                }
            }

            return (IReadOnlyList<CriticalRecord>)escalated;
        }, cancellationToken);

    /// <summary>
    /// "Not my patient": records who declined the team's open critical result and why (a "declined" audit line)
    /// and escalates it at once to the next step of its tier's chain, with a <c>critical_result.escalated</c>
    /// event (reason "declined"), together. FAILED_PRECONDITION once acknowledged; ABORTED when an escalation
    /// or another answer changed it meanwhile (try again: the answer then goes to whoever has it now).
    /// </summary>
    public Task<CriticalRecord> DeclineAsync(string teamId, string id, string declinedBy, string reason, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var row = await connection.QuerySingleOrDefaultAsync<CriticalRow>(new CommandDefinition(
                $"SELECT {CriticalColumns} FROM critical_results WHERE id = @id AND team_id = @teamId",
                new { id, teamId }, transaction, cancellationToken: cancellationToken)) ?? throw new NotFoundException("CriticalResult", id);
            var current = row.ToRecord();
            if (current.AcknowledgedAt is { } when)
            {
                throw new IllegalTransitionException(
                    $"Critical result {id} (acknowledged by {current.AcknowledgedBy} at {when:O})", "acknowledged", "declined", []);
            }

            var now = time.GetUtcNow();
            await InsertAuditAsync(connection, transaction, new AuditRecord(
                id, now, AuditActions.Declined, declinedBy, "answer",
                $"not my patient ({(current.EscalatedTo.Length == 0 ? "first notification" : "had it as " + current.EscalatedTo)}): {reason}"),
                cancellationToken);
            return await EscalateAsync(connection, transaction, current, row.DueAt, now, declinedBy, cancellationToken)
                ?? throw new StaleEtagException("CriticalResult", id);
        }, cancellationToken);

    /// <summary>
    /// The next escalation of <paramref name="current"/> if its due time is still <paramref name="oldDue"/> and nobody
    /// acknowledged it: the row, an audit line and the event. Null when another replica or answer got there first.
    /// </summary>
    private async Task<CriticalRecord?> EscalateAsync(
        DbConnection connection, DbTransaction transaction, CriticalRecord current, string oldDue, DateTimeOffset now, string? declinedBy,
        CancellationToken cancellationToken)
    {
        var policy = tiers.Resolve(current.TeamId, current.Tier);
        var escalation = current.Escalations + 1;
        var step = policy.StepOf(escalation);
        // The latest MaxDeclinedBy decliners (every decline stays in the audit trail), so the record stays small.
        IReadOnlyList<string> declined = declinedBy is null ? current.DeclinedBy : [.. current.DeclinedBy.TakeLast(MaxDeclinedBy - 1), declinedBy];
        var next = current with { Escalations = escalation, DueAt = now + policy.Window, EscalatedTo = step, DeclinedBy = declined };
        var changed = await connection.ExecuteAsync(new CommandDefinition(
            """
            UPDATE critical_results SET escalations = @Escalations, due_at = @dueAt, escalated_to = @EscalatedTo, declined_by = @declinedBy
            WHERE id = @Id AND due_at = @oldDue AND escalations = @previous AND acknowledged_at IS NULL
            """,
            new
            {
                next.Escalations, dueAt = DbTime.ToDb(next.DueAt), next.EscalatedTo, declinedBy = string.Join('\n', declined), next.Id, oldDue,
                previous = current.Escalations,
            },
            transaction, cancellationToken: cancellationToken));
        if (changed == 0)
        {
            return null;
        }

        var why = declinedBy is null
            ? $"unacknowledged {NotificationWords.Duration(now - current.OpenedAt)} after it opened"
            : $"declined by {declinedBy}";
        await InsertAuditAsync(connection, transaction, new AuditRecord(
            current.Id, now, AuditActions.Escalated, "system", "event",
            $"escalation {escalation} to {step} ({policy.Tier}, next due within {NotificationWords.Duration(policy.Window)}): {why}"), cancellationToken);
        var escalatedEvent = new Event
        {
            Type = EventTypes.CriticalResultEscalated,
            TeamId = current.TeamId,
            RequisitionId = current.RequisitionId,
            Source = ServiceName,
            CriticalResultEscalated = new CriticalResultEscalated
            {
                CriticalResultId = current.Id,
                ReportId = current.ReportId,
                ReportVersion = current.ReportVersion,
                Escalation = escalation,
                OpenedAt = Timestamp.FromDateTimeOffset(current.OpenedAt),
                Tier = policy.Tier,
                EscalatedTo = step,
                Reason = declinedBy is null ? "unacknowledged" : "declined",
                DeclinedBy = declinedBy ?? "",
            },
        };
        escalatedEvent.CriticalResultEscalated.CriticalAnalytes.AddRange(current.CriticalAnalytes);
        await Outbox.AddAsync(transaction, escalatedEvent, cancellationToken);
        return next;
    }

    // ---- Helpers -----------------------------------------------------------------------------

    internal static string WordOf(DeliveryState state) => EnumWords.Word(state) is { Length: > 0 } word ? word : "unspecified";

    private static async Task<bool> OpenCriticalAsync(
        DbConnection connection, DbTransaction transaction, Event evt, CriticalResult critical, DateTimeOffset now, CriticalTierPolicy policy, CancellationToken cancellationToken)
    {
        var window = policy.Window;
        // The result was critical from the moment the results service recorded it, not from when this
        // replica read the event: a late ingest (Redis was down, a replica died holding the entry) must not
        // give the clinician a longer window, and "opened" precedes every notification of it. A creation
        // time ahead of this clock (skew between hosts) counts as now.
        var opened = evt.CreatedAt is { } created && created.ToDateTimeOffset() < now ? created.ToDateTimeOffset() : now;
        var inserted = await connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO critical_results (id, team_id, requisition_id, report_id, report_version, critical_analytes, opened_at, due_at, escalations, channel,
                tier, escalated_to, declined_by)
            VALUES (@Id, @TeamId, @RequisitionId, @ReportId, @ReportVersion, @analytes, @opened, @due, 0, 0, @tier, '', '')
            ON CONFLICT (id) DO NOTHING
            """,
            new
            {
                evt.Id, evt.TeamId, evt.RequisitionId, critical.ReportId, critical.ReportVersion, tier = policy.Tier,
                analytes = string.Join(' ', critical.CriticalAnalytes), opened = DbTime.ToDb(opened), due = DbTime.ToDb(opened + window),
            },
            transaction, cancellationToken: cancellationToken));
        if (inserted == 0)
        {
            return false;
        }

        await InsertAuditAsync(connection, transaction, new AuditRecord(
            evt.Id, opened, AuditActions.Opened, "system", "event",
            $"report {critical.ReportId} v{critical.ReportVersion} ({critical.Status}), {policy.Tier}; acknowledgement due within {NotificationWords.Duration(window)}"),
            cancellationToken);
        return true;
    }

    private static Task<int> InsertDeliveryAsync(
        DbConnection connection, DbTransaction transaction, EndpointRecord endpoint, Event evt, string? criticalId,
        byte[] body, DateTimeOffset firstAttempt, DateTimeOffset now, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO deliveries (id, endpoint_id, team_id, event_id, event_type, critical_id, body, state, attempts, created_at, next_attempt_at,
                last_status_code, last_error, traceparent)
            VALUES (@id, @endpointId, @teamId, @eventId, @eventType, @criticalId, @body, @pending, 0, @now, @next, 0, '', @traceparent)
            ON CONFLICT (event_id, endpoint_id) DO NOTHING
            """,
            new
            {
                id = NewDeliveryId(), endpointId = endpoint.Id, teamId = endpoint.TeamId, eventId = evt.Id, eventType = evt.Type, criticalId, body,
                traceparent = string.IsNullOrEmpty(evt.Traceparent) ? null : evt.Traceparent,
                pending = (int)DeliveryState.Pending, now = DbTime.ToDb(now), next = DbTime.ToDb(firstAttempt),
            },
            transaction, cancellationToken: cancellationToken));

    private static Task<int> InsertAuditAsync(DbConnection connection, DbTransaction transaction, AuditRecord entry, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(new CommandDefinition(
            """
            INSERT INTO critical_audit (critical_id, at, action, actor, channel, detail)
            VALUES (@criticalId, @at, @action, @actor, @channel, @detail)
            """,
            new { criticalId = entry.CriticalId, at = DbTime.ToDb(entry.At), action = entry.Action, actor = Truncate(entry.Actor, 200), channel = entry.Channel, detail = entry.Detail },
            transaction, cancellationToken: cancellationToken));

    private static async Task<EndpointRecord?> FindEndpointAsync(DbConnection connection, DbTransaction? transaction, string teamId, string id, CancellationToken cancellationToken)
    {
        var row = await connection.QuerySingleOrDefaultAsync<EndpointRow>(new CommandDefinition(
            $"SELECT {EndpointColumns} FROM webhook_endpoints WHERE id = @id AND team_id = @teamId AND deleted = 0",
            new { id, teamId }, transaction, cancellationToken: cancellationToken));
        return row?.ToRecord();
    }

    private static async Task<CriticalRecord?> FindCriticalAsync(DbConnection connection, DbTransaction? transaction, string teamId, string id, CancellationToken cancellationToken)
    {
        var row = await connection.QuerySingleOrDefaultAsync<CriticalRow>(new CommandDefinition(
            $"SELECT {CriticalColumns} FROM critical_results WHERE id = @id AND team_id = @teamId",
            new { id, teamId }, transaction, cancellationToken: cancellationToken));
        return row?.ToRecord();
    }

    /// <summary>A Standard Webhooks message id: <c>msg_</c> and a version 7 GUID, so ids order by creation time.</summary>
    internal static string NewDeliveryId() => "msg_" + Guid.CreateVersion7().ToString("N");

    private static string JoinTypes(IReadOnlyList<string> types) => string.Join(' ', types);

    private static string[] SplitWords(string text) => text.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    private static string Truncate(string text, int length) => text.Length <= length ? text : text[..length];

    private sealed class EndpointRow
    {
        public string Id { get; set; } = "";
        public string TeamId { get; set; } = "";
        public string Url { get; set; } = "";
        public string Description { get; set; } = "";
        public string EventTypes { get; set; } = "";
        public int Escalation { get; set; }
        public int Enabled { get; set; }
        public string DisabledReason { get; set; } = "";
        public string Secret { get; set; } = "";
        public string? PreviousSecret { get; set; }
        public string? PreviousSecretExpiresAt { get; set; }
        public long Version { get; set; }
        public string CreatedAt { get; set; } = "";
        public string UpdatedAt { get; set; } = "";
        public string RequestHash { get; set; } = "";

        public int Deleted { get; set; }

        public EndpointRecord ToRecord() => new(
            Id, TeamId, Url, Description, SplitWords(EventTypes), Escalation != 0, Enabled != 0, DisabledReason, Secret, PreviousSecret,
            PreviousSecretExpiresAt is null ? null : DbTime.FromDb(PreviousSecretExpiresAt), Version, DbTime.FromDb(CreatedAt), DbTime.FromDb(UpdatedAt));
    }

    private sealed class DeliveryRow
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

    private sealed class CriticalRow
    {
        public string Id { get; set; } = "";
        public string TeamId { get; set; } = "";
        public string RequisitionId { get; set; } = "";
        public string ReportId { get; set; } = "";
        public int ReportVersion { get; set; }
        public string CriticalAnalytes { get; set; } = "";
        public string OpenedAt { get; set; } = "";
        public string DueAt { get; set; } = "";
        public int Escalations { get; set; }
        public string? AcknowledgedAt { get; set; }
        public string? AcknowledgedBy { get; set; }
        public int Channel { get; set; }
        public string? ReadBack { get; set; }
        public string Tier { get; set; } = "";
        public string EscalatedTo { get; set; } = "";
        public string DeclinedBy { get; set; } = "";

        public CriticalRecord ToRecord() => new(
            Id, TeamId, RequisitionId, ReportId, ReportVersion, SplitWords(CriticalAnalytes), DbTime.FromDb(OpenedAt), DbTime.FromDb(DueAt),
            Escalations, AcknowledgedAt is null ? null : DbTime.FromDb(AcknowledgedAt), AcknowledgedBy, (AcknowledgementChannel)Channel, ReadBack,
            Tier, EscalatedTo, DeclinedBy.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    private sealed class AuditRow
    {
        public string CriticalId { get; set; } = "";
        public string At { get; set; } = "";
        public string Action { get; set; } = "";
        public string Actor { get; set; } = "";
        public string Channel { get; set; } = "";
        public string Detail { get; set; } = "";
    }
}
