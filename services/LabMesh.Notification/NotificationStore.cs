using Dapper;
using LabMesh.Notification.Webhooks;
using LabMesh.Security.Audit;
using LabMesh.Messaging.Events;
using LabMesh.Messaging.Storage;
using LabMesh.Core.Diagnostics;

namespace LabMesh.Notification;

/// <summary>
/// The Notification service's store: webhook endpoints, deliveries (one per event and endpoint,
/// with the lease of the replica attempting it), critical results with their audit trail, and the
/// outbox for the events the service itself publishes (acknowledged, escalated). Reads are scoped
/// to a team; another team's rows are NOT_FOUND.
/// </summary>
/// <remarks>
/// One class in a file per aggregate (partial): NotificationStore.Endpoints.cs, NotificationStore.Deliveries.cs,
/// NotificationStore.CriticalResults.cs. Not one store class each, because their writes share transactions: an
/// ingested event's deliveries and its critical result are stored together (<see cref="IngestAsync"/>, here),
/// deleting an endpoint cancels its deliveries, and recording a delivery attempt adds its critical result's audit
/// line and may disable its endpoint. This file holds the schema and the ingest.
/// </remarks>
public sealed partial class NotificationStore(Database database, TimeProvider time, CriticalTierPolicies tiers)
{
    public const string ServiceName = "notification";

    /// <summary>How many of its latest decliners a critical result keeps in <c>declined_by</c>.</summary>
    public const int MaxDeclinedBy = 20;

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
            var now = DbTime.Now(time);
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
                    var rows = await connection.QueryAsync<EndpointRow>(
                        $"SELECT {EndpointColumns} FROM webhook_endpoints WHERE team_id = @TeamId AND deleted = 0 AND enabled = 1",
                        new { evt.TeamId, cancellationToken }, transaction);
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

    private static string[] SplitWords(string text) => text.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    private static string Truncate(string text, int length) => text.Length <= length ? text : text[..length];
}
