using System.Data.Common;
using Dapper;
using Google.Protobuf.WellKnownTypes;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Core.Errors;
using LabMesh.Messaging.Events;
using LabMesh.Messaging.Storage;
using LabMesh.Core.Diagnostics;

namespace LabMesh.Notification;

/// <summary>
/// The critical results aggregate: each opened by its <c>labtest.result.critical</c> event (at ingest), with its
/// audit trail, acknowledged once by a person, escalated when its window passes or a clinician declines it; each
/// change with its audit line and event in one transaction.
/// </summary>
public sealed partial class NotificationStore
{
    private const string CriticalColumns =
        "id AS Id, team_id AS TeamId, requisition_id AS RequisitionId, report_id AS ReportId, report_version AS ReportVersion, " +
        "critical_analytes AS CriticalAnalytes, opened_at AS OpenedAt, due_at AS DueAt, escalations AS Escalations, " +
        "acknowledged_at AS AcknowledgedAt, acknowledged_by AS AcknowledgedBy, channel AS Channel, read_back AS ReadBack, " +
        "tier AS Tier, escalated_to AS EscalatedTo, declined_by AS DeclinedBy";

    public async Task<CriticalRecord> GetCriticalAsync(string teamId, string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return (await FindCriticalAsync(connection, null, teamId, id, cancellationToken)) ?? throw new NotFoundException("CriticalResult", id);
    }

    /// <summary>The team's unacknowledged critical results, oldest first (ids are time-ordered).</summary>
    public async Task<IReadOnlyList<CriticalRecord>> ListOpenCriticalAsync(string teamId, string? requisitionId, string? after, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<CriticalRow>(
            $"""
            SELECT {CriticalColumns} FROM critical_results
            WHERE team_id = @teamId AND acknowledged_at IS NULL AND (@requisitionId IS NULL OR requisition_id = @requisitionId)
              AND (@after IS NULL OR id > @after)
            ORDER BY id LIMIT @limit
            """,
            new { teamId, requisitionId, after, limit, cancellationToken });
        return [.. rows.Select(r => r.ToRecord())];
    }

    public async Task<IReadOnlyList<AuditRecord>> ListAuditAsync(string criticalId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<AuditRow>(
            "SELECT critical_id AS CriticalId, at AS At, action AS Action, actor AS Actor, channel AS Channel, detail AS Detail FROM critical_audit WHERE critical_id = @criticalId ORDER BY at, sequence",
            new { criticalId, cancellationToken });
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

            var changed = await connection.ExecuteAsync(
                """
                UPDATE critical_results SET acknowledged_at = @at, acknowledged_by = @acknowledgedBy, channel = @channel, read_back = @readBack
                WHERE id = @id AND acknowledged_at IS NULL
                """,
                new { at = DbTime.ToDb(acknowledgedAt), acknowledgedBy, channel = (int)channel, readBack, id, cancellationToken }, transaction);
            if (changed == 0)
            {
                throw new StaleEtagException("CriticalResult", id);
            }

            var channelWord = NotificationWords.Channel(channel);
            await InsertAuditAsync(connection, transaction, new AuditRecord(
                id, DbTime.Now(time), AuditActions.Acknowledged, acknowledgedBy, channelWord,
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
            var now = DbTime.Now(time);
            // One constant statement per provider (Dapper.AOT reads each at build time): PostgreSQL replicas skip each other's locked rows.
            var due = database.Provider == StorageProvider.Postgres
                ? await connection.QueryAsync<CriticalRow>(
                    $"SELECT {CriticalColumns} FROM critical_results WHERE acknowledged_at IS NULL AND due_at <= @now ORDER BY due_at LIMIT @limit FOR UPDATE SKIP LOCKED",
                    new { now = DbTime.ToDb(now), limit, cancellationToken }, transaction)
                : await connection.QueryAsync<CriticalRow>(
                    $"SELECT {CriticalColumns} FROM critical_results WHERE acknowledged_at IS NULL AND due_at <= @now ORDER BY due_at LIMIT @limit",
                    new { now = DbTime.ToDb(now), limit, cancellationToken }, transaction);
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
            var row = await connection.QuerySingleOrDefaultAsync<CriticalRow>(
                $"SELECT {CriticalColumns} FROM critical_results WHERE id = @id AND team_id = @teamId",
                new { id, teamId, cancellationToken }, transaction) ?? throw new NotFoundException("CriticalResult", id);
            var current = row.ToRecord();
            if (current.AcknowledgedAt is { } when)
            {
                throw new IllegalTransitionException(
                    $"Critical result {id} (acknowledged by {current.AcknowledgedBy} at {when:O})", "acknowledged", "declined", []);
            }

            var now = DbTime.Now(time);
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
        var changed = await connection.ExecuteAsync(
            """
            UPDATE critical_results SET escalations = @Escalations, due_at = @dueAt, escalated_to = @EscalatedTo, declined_by = @declinedBy
            WHERE id = @Id AND due_at = @oldDue AND escalations = @previous AND acknowledged_at IS NULL
            """,
            new
            {
                next.Escalations, dueAt = DbTime.ToDb(next.DueAt), next.EscalatedTo, declinedBy = string.Join('\n', declined), next.Id, oldDue,
                previous = current.Escalations, cancellationToken,
            },
            transaction);
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

    private static async Task<bool> OpenCriticalAsync(
        DbConnection connection, DbTransaction transaction, Event evt, CriticalResult critical, DateTimeOffset now, CriticalTierPolicy policy, CancellationToken cancellationToken)
    {
        var window = policy.Window;
        // The result was critical from the moment the results service recorded it, not from when this
        // replica read the event: a late ingest (Redis was down, a replica died holding the entry) must not
        // give the clinician a longer window, and "opened" precedes every notification of it. A creation
        // time ahead of this clock (skew between hosts) counts as now.
        var opened = evt.CreatedAt is { } created && created.ToDateTimeOffset() < now ? created.ToDateTimeOffset() : now;
        var inserted = await connection.ExecuteAsync(
            """
            INSERT INTO critical_results (id, team_id, requisition_id, report_id, report_version, critical_analytes, opened_at, due_at, escalations, channel,
                tier, escalated_to, declined_by)
            VALUES (@Id, @TeamId, @RequisitionId, @ReportId, @ReportVersion, @analytes, @opened, @due, 0, 0, @tier, '', '')
            ON CONFLICT (id) DO NOTHING
            """,
            new
            {
                evt.Id, evt.TeamId, evt.RequisitionId, critical.ReportId, critical.ReportVersion, tier = policy.Tier,
                analytes = string.Join(' ', critical.CriticalAnalytes), opened = DbTime.ToDb(opened), due = DbTime.ToDb(opened + window), cancellationToken,
            },
            transaction);
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

    private static Task<int> InsertAuditAsync(DbConnection connection, DbTransaction transaction, AuditRecord entry, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(
            """
            INSERT INTO critical_audit (critical_id, at, action, actor, channel, detail)
            VALUES (@criticalId, @at, @action, @actor, @channel, @detail)
            """,
            new { criticalId = entry.CriticalId, at = DbTime.ToDb(entry.At), action = entry.Action, actor = Truncate(entry.Actor, 200), channel = entry.Channel, detail = entry.Detail, cancellationToken },
            transaction);

    private static async Task<CriticalRecord?> FindCriticalAsync(DbConnection connection, DbTransaction? transaction, string teamId, string id, CancellationToken cancellationToken)
    {
        var row = await connection.QuerySingleOrDefaultAsync<CriticalRow>(
            $"SELECT {CriticalColumns} FROM critical_results WHERE id = @id AND team_id = @teamId",
            new { id, teamId, cancellationToken }, transaction);
        return row?.ToRecord();
    }

    internal sealed class CriticalRow
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

    internal sealed class AuditRow
    {
        public string CriticalId { get; set; } = "";
        public string At { get; set; } = "";
        public string Action { get; set; } = "";
        public string Actor { get; set; } = "";
        public string Channel { get; set; } = "";
        public string Detail { get; set; } = "";
    }
}
