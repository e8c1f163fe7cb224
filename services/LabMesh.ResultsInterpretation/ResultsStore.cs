using System.Data;
using System.Data.Common;
using Dapper;
using Google.Protobuf;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.ResultsInterpretation.Domain;
using LabMesh.Security.Audit;
using LabMesh.Core.Errors;
using LabMesh.Messaging.Events;
using LabMesh.ServiceDefaults.Peers;
using LabMesh.Messaging.Storage;

namespace LabMesh.ResultsInterpretation;

/// <summary>One version of a report as stored; <see cref="Report"/> holds it with its readings.</summary>
public sealed record ReportRecord(Report Report, string RequestHash, bool EffectsApplied)
{
    public string Id => Report.Id;

    public int Version => Report.Version;

    public bool IsFinal => Report.Metadata.Status == ReportStatus.Final;
}

/// <summary>Where a page of reports ends: a report version.</summary>
public sealed record ReportKey(string Id, int Version)
{
    /// <summary>As a page token (opaque to callers).</summary>
    public string ToToken() => PageToken.Encode($"{Id}/{Version.ToString(System.Globalization.CultureInfo.InvariantCulture)}");

    /// <summary>The key in a page token, null for none; INVALID_ARGUMENT for a token <paramref name="method"/> did not make.</summary>
    public static ReportKey? FromToken(string token, string method)
    {
        if (PageToken.Decode(token) is not { } text)
        {
            return null;
        }

        var slash = text.LastIndexOf('/');
        if (slash > 0 && int.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var version))
        {
            return new ReportKey(text[..slash], version);
        }

        throw new InvalidArgumentException("page_token", $"is not a page token returned by {method}.");
    }
}

/// <summary>A page of reports and where the next begins (null on the last page).</summary>
public sealed record ReportPage(IReadOnlyList<Report> Reports, ReportKey? Next)
{
    /// <summary>
    /// The bytes a report of <paramref name="bodySize"/> encoded bytes takes as a repeated field of a response:
    /// its tag, its length prefix, and 2 for the <c>superseded</c> flag the store sets on read.
    /// </summary>
    public static long EncodedSize(long bodySize) => 1 + CodedOutputStream.ComputeLengthSize((int)bodySize + 2) + bodySize + 2;
}

/// <summary>What the store needs to accept a report, besides the report itself.</summary>
/// <param name="RequestHash">What makes a repeat of the request "the same report".</param>
/// <param name="ActiveServiceRequestIds">The requisition's service requests that are not revoked:
/// all results are received when each has a final report.</param>
/// <param name="PatientId">The requisition's patient id (the critical event's <c>user_id</c>).</param>
public sealed record SubmitContext(string RequestHash, IReadOnlyCollection<string> ActiveServiceRequestIds, string PatientId);

/// <summary>
/// The ResultsInterpretation service's store: report versions, each requisition's results progress,
/// and the outbox. A report, the progress it causes and its events are written in one transaction,
/// so an event is published exactly when its report is stored. Reads are scoped to a team.
/// </summary>
public sealed class ResultsStore(Database database, TimeProvider time)
{
    public const string ServiceName = "results";

    // A page of a requisition's reports after (@afterId, @afterVersion): every version when @history is 1, else the latest.
    private const string PageFilter =
        "team_id = @teamId AND requisition_id = @requisitionId AND (@history = 1 OR superseded = 0)" +
        " AND (@afterId IS NULL OR id > @afterId OR (id = @afterId AND version > @afterVersion))";

    private const string ReportColumns = "body AS Body, request_hash AS RequestHash, effects_applied AS EffectsApplied, superseded AS Superseded";

    private const string ProgressColumns =
        "requisition_id AS RequisitionId, team_id AS TeamId, patient_id AS PatientId, stage AS Stage, stage_seq AS Sequence, " +
        "stage_synced_seq AS SyncedSequence, all_received AS AllReceived, shared_time AS SharedTime";

    private const string Schema = """
        CREATE TABLE reports (
            id TEXT NOT NULL,
            version INTEGER NOT NULL,
            team_id TEXT NOT NULL,
            requisition_id TEXT NOT NULL,
            request_id TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            status INTEGER NOT NULL,
            interpretation INTEGER NOT NULL,
            service_request_ids TEXT NOT NULL,
            body BLOB NOT NULL,
            superseded INTEGER NOT NULL,
            effects_applied INTEGER NOT NULL,
            create_time TEXT NOT NULL,
            PRIMARY KEY (id, version),
            UNIQUE (team_id, request_id)
        );
        CREATE INDEX ix_reports_requisition ON reports (team_id, requisition_id, id, version);
        CREATE INDEX ix_reports_effects ON reports (effects_applied, create_time);
        CREATE TABLE requisition_results (
            requisition_id TEXT PRIMARY KEY,
            team_id TEXT NOT NULL,
            patient_id TEXT NOT NULL,
            stage INTEGER NOT NULL,
            stage_seq BIGINT NOT NULL,
            stage_synced_seq BIGINT NOT NULL,
            all_received INTEGER NOT NULL,
            shared_time TEXT NULL,
            share_note TEXT NOT NULL,
            update_time TEXT NOT NULL
        );
        """;

    public static IReadOnlyList<Migration> Migrations { get; } =
    [
        new(1, "reports and results progress", Schema, Schema.Replace(" BLOB ", " BYTEA ", StringComparison.Ordinal)),
        Outbox.Migration(2),
        AuditLog.Migration(3),
        PeerWork.Migration(4),
        // Reports holding results that answer no ordered test, counted for GetResults without reading their bodies.
        new(5, "unsolicited reports", UnsolicitedColumn, UnsolicitedColumn),
    ];

    private const string UnsolicitedColumn = "ALTER TABLE reports ADD COLUMN unsolicited INTEGER NOT NULL DEFAULT 0;";

    /// <summary>The report version a request_id created, if any.</summary>
    public async Task<ReportRecord?> FindByRequestAsync(string teamId, string requestId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<ReportRow>(
            $"SELECT {ReportColumns} FROM reports WHERE team_id = @teamId AND request_id = @requestId",
            new { teamId, requestId, cancellationToken });
        return row?.ToRecord();
    }

    /// <summary>One version of a report; <paramref name="version"/> 0 is the latest.</summary>
    public async Task<ReportRecord?> GetReportAsync(string teamId, string id, int version, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QueryFirstOrDefaultAsync<ReportRow>(
            $"SELECT {ReportColumns} FROM reports WHERE team_id = @teamId AND id = @id AND (@version = 0 OR version = @version) " +
            "ORDER BY version DESC LIMIT 1",
            new { teamId, id, version, cancellationToken });
        return row?.ToRecord();
    }

    /// <summary>
    /// One page of a requisition's reports in (id, version) order, after <paramref name="after"/>: the latest
    /// version of each, or every version. At most <paramref name="pageSize"/> reports and at most
    /// <paramref name="maxBytes"/> of them as encoded in a response (<see cref="ReportPage"/>), except that a
    /// page holds at least one report. The sizes are read before the bodies, so a page never loads more than it answers.
    /// </summary>
    public async Task<ReportPage> ListReportPageAsync(
        string teamId, string requisitionId, bool includeHistory, ReportKey? after, int pageSize, int maxBytes, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        // One constant statement (Dapper.AOT reads it at build time): history or not is a parameter, not a clause.
        var history = includeHistory ? 1 : 0;
        var afterId = after?.Id;
        var afterVersion = after?.Version ?? 0;
        var limit = pageSize + 1;
        var sizes = (await connection.QueryAsync<ReportSizeRow>(
            $"SELECT id AS Id, version AS Version, length(body) AS Size FROM reports WHERE {PageFilter} ORDER BY id, version LIMIT @limit",
            new { teamId, requisitionId, history, afterId, afterVersion, limit, cancellationToken })).ToList();

        // What each would take in the response: its field tag, its length prefix, its body and the `superseded` flag set on read.
        var take = 0;
        long bytes = 0;
        while (take < sizes.Count && take < pageSize)
        {
            var encoded = ReportPage.EncodedSize(sizes[take].Size);
            if (take > 0 && bytes + encoded > maxBytes)
            {
                break;
            }

            bytes += encoded;
            take++;
        }

        if (take == 0)
        {
            return new ReportPage([], null);
        }

        var rows = await connection.QueryAsync<ReportRow>(
            $"SELECT {ReportColumns} FROM reports WHERE {PageFilter} ORDER BY id, version LIMIT @take",
            new { teamId, requisitionId, history, afterId, afterVersion, take, cancellationToken });
        // A report amended between the two reads may differ from the sizes read: measure what is answered.
        var reports = new List<Report>();
        bytes = 0;
        foreach (var report in rows.Select(r => r.ToRecord().Report))
        {
            var encoded = ReportPage.EncodedSize(report.CalculateSize());
            if (reports.Count > 0 && bytes + encoded > maxBytes)
            {
                break;
            }

            bytes += encoded;
            reports.Add(report);
        }

        var more = reports.Count < sizes.Count;
        return new ReportPage(reports, more ? new ReportKey(reports[^1].Id, reports[^1].Version) : null);
    }

    /// <summary>The readings of a requisition's latest report versions, and which of them are unsolicited (for every page's totals).</summary>
    public async Task<IReadOnlyList<(Interpretation Interpretation, bool Unsolicited)>> ListLatestReadingsAsync(
        string teamId, string requisitionId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<ReadingRow>(
            "SELECT interpretation AS Interpretation, unsolicited AS Unsolicited FROM reports " +
            "WHERE team_id = @teamId AND requisition_id = @requisitionId AND superseded = 0",
            new { teamId, requisitionId, cancellationToken });
        return [.. rows.Select(r => ((Interpretation)r.Interpretation, r.Unsolicited != 0))];
    }

    public async Task<ResultsProgress?> GetProgressAsync(string teamId, string requisitionId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var row = await connection.QuerySingleOrDefaultAsync<ProgressRow>(
            $"SELECT {ProgressColumns} FROM requisition_results WHERE requisition_id = @requisitionId AND team_id = @teamId",
            new { requisitionId, teamId, cancellationToken });
        return row?.ToRecord();
    }

    /// <summary>
    /// Stores <paramref name="report"/> (already read; its id, version and time are set here) as version 1,
    /// advances the requisition's results progress and adds its events: <c>lab_order.updated</c>
    /// (<c>all_results_received</c> when every active service request now has a final report, else
    /// <c>results_received</c>) and, when the report is critical, <c>labtest.result.critical</c>.
    /// </summary>
    /// <exception cref="DbException">a unique violation when the request_id was stored concurrently.</exception>
    public Task<(ReportRecord Report, ResultsProgress Progress, Event? Critical)> SubmitAsync(Report report, SubmitContext context, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var now = DbTime.Now(time);
            report.Id = Guid.CreateVersion7().ToString();
            AuditLog.NameCreated(ServiceName, report.Id);
            report.Version = 1;
            report.CreateTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(now);
            await InsertReportAsync(connection, transaction, report, context.RequestHash, effectsApplied: report.ServiceRequestIds.Count == 0, now);

            var progress = await LockProgressAsync(connection, transaction, report.TeamId, report.RequisitionId, context.PatientId, now);
            var covered = await FinalServiceRequestIdsAsync(connection, transaction, report.TeamId, report.RequisitionId);
            var next = progress.Submitted(context.ActiveServiceRequestIds, covered);
            await SaveProgressAsync(connection, transaction, next, now);

            var critical = await AddEventsAsync(transaction, report, next, now, cancellationToken);
            return (new ReportRecord(report, context.RequestHash, report.ServiceRequestIds.Count == 0), next, critical);
        }, cancellationToken);

    /// <summary>
    /// Stores <paramref name="corrected"/> as the next version of report <paramref name="reportId"/>, which
    /// must be final; the previous version is kept, superseded. The results progress moves to
    /// results_amended and <c>lab_order.updated</c> (<c>results_amended</c>) is added, with
    /// <c>labtest.result.critical</c> when the corrected report is critical.
    /// </summary>
    public Task<(ReportRecord Report, ResultsProgress Progress, Event? Critical)> AmendAsync(
        string teamId, string reportId, int expectedVersion, Report corrected, string requestHash, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            // On PostgreSQL a concurrent amendment that held the lock supersedes the row this one waited for, which
            // then no longer matches: read the new latest version once more rather than answer NOT_FOUND.
            var latest = (await LatestReportAsync(connection, transaction, teamId, reportId)
                    ?? await LatestReportAsync(connection, transaction, teamId, reportId))
                ?.ToRecord() ?? throw new NotFoundException("report", reportId);
            if (!latest.IsFinal)
            {
                throw new IllegalTransitionException("report", "partial", "amended", ["SubmitResults (the next partial or the final report)"]);
            }

            if (expectedVersion != 0 && expectedVersion != latest.Version)
            {
                throw new StaleEtagException("report", $"{reportId} v{expectedVersion}");
            }

            var now = DbTime.Now(time);
            corrected.Id = latest.Id;
            corrected.Version = latest.Version + 1;
            corrected.RequisitionId = latest.Report.RequisitionId;
            corrected.TeamId = teamId;
            corrected.ServiceRequestIds.Clear();
            corrected.ServiceRequestIds.AddRange(latest.Report.ServiceRequestIds);
            corrected.CreateTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(now);
            await connection.ExecuteAsync("UPDATE reports SET superseded = 1 WHERE id = @Id AND version = @Version",
                new { latest.Id, latest.Version }, transaction);
            await InsertReportAsync(connection, transaction, corrected, requestHash, effectsApplied: true, now);

            var progress = await LockProgressAsync(connection, transaction, teamId, corrected.RequisitionId, patientId: "", now);
            var next = progress.Amended();
            await SaveProgressAsync(connection, transaction, next, now);
            var critical = await AddEventsAsync(transaction, corrected, next, now, cancellationToken);
            return (new ReportRecord(corrected, requestHash, true), next, critical);
        }, cancellationToken);

    /// <summary>
    /// The clinician shared the interpretation: progress moves to interpretation_shared. Needs every
    /// result; sharing what is shared already changes nothing (Changed false). No event: seed 003 fires
    /// <c>lab_order.updated</c> only for result changes.
    /// </summary>
    public Task<(ResultsProgress Progress, bool Changed)> ShareAsync(string teamId, string requisitionId, string note, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            // One constant statement per database (Dapper.AOT reads each at build time): PostgreSQL locks the row.
            var progress = (database.Provider == StorageProvider.Postgres
                ? await connection.QuerySingleOrDefaultAsync<ProgressRow>(
                    $"SELECT {ProgressColumns} FROM requisition_results WHERE requisition_id = @requisitionId AND team_id = @teamId FOR UPDATE",
                    new { requisitionId, teamId }, transaction)
                : await connection.QuerySingleOrDefaultAsync<ProgressRow>(
                    $"SELECT {ProgressColumns} FROM requisition_results WHERE requisition_id = @requisitionId AND team_id = @teamId",
                    new { requisitionId, teamId }, transaction))?.ToRecord();
            var now = DbTime.Now(time);
            var (next, changed) = ResultsProgress.Share(progress, now);
            if (!changed)
            {
                return (next, false);
            }

            await SaveProgressAsync(connection, transaction, next, now);
            await connection.ExecuteAsync(
                "UPDATE requisition_results SET shared_time = @now, share_note = @note WHERE requisition_id = @requisitionId",
                new { now = DbTime.ToDb(now), note, requisitionId }, transaction);
            return (next, true);
        }, cancellationToken);

    /// <summary>
    /// Report versions whose service requests have not heard of them yet and are due (<see cref="PeerWork"/>,
    /// <paramref name="kind"/>'s attempts, keyed by report id and version): never tried first, oldest first.
    /// </summary>
    public async Task<IReadOnlyList<ReportRecord>> ListUnappliedReportsAsync(
        string? requisitionId, string kind, string now, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        // The work kind is in the statement's text (PeerWork.DueJoin), so it is built at run time, and Dapper.AOT 1.1.0
        // generates code that does not compile (CS0103) for a token beside such a statement: the token is checked before
        // the read (bounded by its limit) instead.
        cancellationToken.ThrowIfCancellationRequested();
        var rows = await connection.QueryAsync<ReportRow>(
            $"SELECT {ReportColumns} FROM reports{PeerWork.DueJoin(kind, "reports.id", "reports.version")} " +
            $"WHERE effects_applied = 0 AND {PeerWork.DueFilter} AND (@requisitionId IS NULL OR requisition_id = @requisitionId)" +
            $" ORDER BY {PeerWork.DueOrder}, create_time, id LIMIT @limit",
            new { requisitionId, now, limit });
        return rows.Select(r => r.ToRecord()).ToList();
    }

    /// <summary>
    /// Requisitions whose latest results milestone the Requisition service has not heard of yet, once every report of
    /// theirs reached its service requests (the requisition derives its view from both), and due (<paramref name="kind"/>'s
    /// attempts, keyed by requisition and milestone number).
    /// </summary>
    public async Task<IReadOnlyList<ResultsProgress>> ListUnsyncedProgressAsync(
        string? requisitionId, string kind, string now, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        // Built at run time (the work kind, as above): the token is checked before the read.
        cancellationToken.ThrowIfCancellationRequested();
        var rows = await connection.QueryAsync<ProgressRow>(
            $"SELECT {ProgressColumns} FROM requisition_results" +
            PeerWork.DueJoin(kind, "requisition_results.requisition_id", "requisition_results.stage_seq") +
            $" WHERE stage_synced_seq < stage_seq AND {PeerWork.DueFilter}" +
            " AND NOT EXISTS (SELECT 1 FROM reports r WHERE r.requisition_id = requisition_results.requisition_id AND r.effects_applied = 0)" +
            " AND (@requisitionId IS NULL OR requisition_results.requisition_id = @requisitionId)" +
            $" ORDER BY {PeerWork.DueOrder}, update_time LIMIT @limit",
            new { requisitionId, now, limit });
        return rows.Select(r => r.ToRecord()).ToList();
    }

    /// <summary>
    /// Notes that the report version's service requests have it, and forgets its <paramref name="workKind"/> attempts
    /// (<see cref="PeerWork"/>), in one write.
    /// </summary>
    public async Task MarkEffectsAppliedAsync(string id, int version, string workKind, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await connection.ExecuteAsync(
            "UPDATE reports SET effects_applied = 1 WHERE id = @id AND version = @version", new { id, version, cancellationToken }, transaction);
        await PeerWork.SucceededAsync(connection, transaction, workKind, id, version, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    /// <summary>
    /// Notes that the Requisition service has milestone <paramref name="sequence"/> (never moves back), and forgets its
    /// <paramref name="workKind"/> attempts (<see cref="PeerWork"/>), in one write.
    /// </summary>
    public async Task MarkProgressSyncedAsync(string requisitionId, long sequence, string workKind, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await connection.ExecuteAsync(
            "UPDATE requisition_results SET stage_synced_seq = @sequence WHERE requisition_id = @requisitionId AND stage_synced_seq < @sequence",
            new { requisitionId, sequence, cancellationToken }, transaction);
        await PeerWork.SucceededAsync(connection, transaction, workKind, requisitionId, sequence, cancellationToken);
        await transaction.CommitAsync(cancellationToken);
    }

    /// <remarks>
    /// Plain ADO.NET, not Dapper: Dapper.AOT 1.1.0 takes a <c>byte[]</c> member for a list to expand (its generated binder
    /// calls SqlMapper.PackListParameters, so SQLite reads <c>(@Body1,@Body2,...)</c> and refuses the row; DapperLib/DapperAOT
    /// issue 226), and Dapper's own binder is the code Native AOT cannot run. The body is one binary parameter.
    /// </remarks>
    private static async Task InsertReportAsync(
        DbConnection connection, DbTransaction transaction, Report report, string requestHash, bool effectsApplied, DateTimeOffset now)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText =
            "INSERT INTO reports (id, version, team_id, requisition_id, request_id, request_hash, status, interpretation, " +
            "service_request_ids, body, superseded, effects_applied, create_time, unsolicited) VALUES (@Id, @Version, @TeamId, @RequisitionId, " +
            "@RequestId, @RequestHash, @Status, @Interpretation, @ServiceRequestIds, @Body, 0, @EffectsApplied, @CreateTime, @Unsolicited)";
        Bind(command, "Id", DbType.String, report.Id);
        Bind(command, "Version", DbType.Int32, report.Version);
        Bind(command, "TeamId", DbType.String, report.TeamId);
        Bind(command, "RequisitionId", DbType.String, report.RequisitionId);
        Bind(command, "RequestId", DbType.String, report.RequestId);
        Bind(command, "RequestHash", DbType.String, requestHash);
        Bind(command, "Status", DbType.Int32, (int)report.Metadata.Status);
        Bind(command, "Interpretation", DbType.Int32, (int)report.Metadata.Interpretation);
        Bind(command, "ServiceRequestIds", DbType.String, string.Join(',', report.ServiceRequestIds));
        Bind(command, "Body", DbType.Binary, report.ToByteArray());
        Bind(command, "EffectsApplied", DbType.Int32, effectsApplied ? 1 : 0);
        Bind(command, "CreateTime", DbType.String, DbTime.ToDb(now));
        Bind(command, "Unsolicited", DbType.Int32, report.Unsolicited ? 1 : 0);
        await command.ExecuteNonQueryAsync();
    }

    private static void Bind(DbCommand command, string name, DbType type, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.DbType = type;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }

    /// <summary>The requisition's progress row, created if missing, locked for this transaction (PostgreSQL).</summary>
    private async Task<ResultsProgress> LockProgressAsync(
        DbConnection connection, DbTransaction transaction, string teamId, string requisitionId, string patientId, DateTimeOffset now)
    {
        await connection.ExecuteAsync(
            "INSERT INTO requisition_results (requisition_id, team_id, patient_id, stage, stage_seq, stage_synced_seq, all_received, " +
            "shared_time, share_note, update_time) VALUES (@requisitionId, @teamId, @patientId, 0, 0, 0, 0, NULL, '', @now) " +
            "ON CONFLICT (requisition_id) DO NOTHING",
            new { requisitionId, teamId, patientId, now = DbTime.ToDb(now) }, transaction);
        var row = database.Provider == StorageProvider.Postgres
            ? await connection.QuerySingleAsync<ProgressRow>(
                $"SELECT {ProgressColumns} FROM requisition_results WHERE requisition_id = @requisitionId FOR UPDATE", new { requisitionId }, transaction)
            : await connection.QuerySingleAsync<ProgressRow>(
                $"SELECT {ProgressColumns} FROM requisition_results WHERE requisition_id = @requisitionId", new { requisitionId }, transaction);
        return row.ToRecord();
    }

    /// <summary>The report's latest version, locked for this transaction on PostgreSQL; one constant statement per database.</summary>
    private Task<ReportRow?> LatestReportAsync(DbConnection connection, DbTransaction transaction, string teamId, string reportId) =>
        database.Provider == StorageProvider.Postgres
            ? connection.QuerySingleOrDefaultAsync<ReportRow>(
                $"SELECT {ReportColumns} FROM reports WHERE team_id = @teamId AND id = @reportId AND superseded = 0 FOR UPDATE",
                new { teamId, reportId }, transaction)
            : connection.QuerySingleOrDefaultAsync<ReportRow>(
                $"SELECT {ReportColumns} FROM reports WHERE team_id = @teamId AND id = @reportId AND superseded = 0",
                new { teamId, reportId }, transaction);

    private static async Task<HashSet<string>> FinalServiceRequestIdsAsync(
        DbConnection connection, DbTransaction transaction, string teamId, string requisitionId)
    {
        var lists = await connection.QueryAsync<string>(
            "SELECT service_request_ids FROM reports WHERE team_id = @teamId AND requisition_id = @requisitionId AND status = @final",
            new { teamId, requisitionId, final = (int)ReportStatus.Final }, transaction);
        return lists.SelectMany(l => l.Split(',', StringSplitOptions.RemoveEmptyEntries)).ToHashSet(StringComparer.Ordinal);
    }

    /// <summary>Writes the milestone the domain moved the progress to (<see cref="ResultsProgress"/>).</summary>
    private static async Task SaveProgressAsync(DbConnection connection, DbTransaction transaction, ResultsProgress next, DateTimeOffset now) =>
        await connection.ExecuteAsync(
            "UPDATE requisition_results SET stage = @Stage, stage_seq = @Sequence, all_received = @AllReceived, update_time = @now " +
            "WHERE requisition_id = @RequisitionId",
            new { Stage = (int)next.Stage, next.Sequence, AllReceived = next.AllReceived ? 1 : 0, now = DbTime.ToDb(now), next.RequisitionId },
            transaction);

    /// <summary>Adds the report's events to the outbox; returns the <c>labtest.result.critical</c> one, if any, for the fast path.</summary>
    private static async Task<Event?> AddEventsAsync(
        DbTransaction transaction, Report report, ResultsProgress progress, DateTimeOffset now, CancellationToken cancellationToken)
    {
        await AddUnsolicitedEventAsync(transaction, report, now, cancellationToken);
        var interpretation = ResultsWords.Interpretation(report.Metadata.Interpretation);
        var updated = NewEvent(report, EventTypes.LabOrderUpdated, now);
        updated.LabOrderUpdated = new LabOrderUpdated
        {
            Status = progress.LabOrderStatus,
            ReportId = report.Id,
            ReportVersion = report.Version,
            Interpretation = interpretation,
        };
        await Outbox.AddAsync(transaction, updated, cancellationToken);

        if (report.Metadata.Interpretation != Interpretation.Critical)
        {
            return null;
        }

        var critical = NewEvent(report, EventTypes.LabTestResultCritical, now);
        var stamp = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(now);
        critical.CriticalResult = new CriticalResult
        {
            CreatedAt = stamp,
            UpdatedAt = stamp,
            OrderId = report.RequisitionId,
            SampleId = report.Metadata.SpecimenNumber,
            Status = ResultsWords.Status(report.Metadata.Status),
            Interpretation = interpretation,
            TeamId = report.TeamId,
            UserId = progress.PatientId,
            ReportId = report.Id,
            ReportVersion = report.Version,
        };
        critical.CriticalResult.CriticalAnalytes.AddRange(
            report.Results.Where(m => m.Reading?.Interpretation == Interpretation.Critical).Select(m => m.Slug));
        critical.CriticalResult.Tier = Domain.CriticalTiers.Word(report.CriticalTier);
        await Outbox.AddAsync(transaction, critical, cancellationToken);
        return critical;
    }

    /// <summary><c>labtest.result.unsolicited</c> for a report holding results that answer no ordered test.</summary>
    private static async Task AddUnsolicitedEventAsync(DbTransaction transaction, Report report, DateTimeOffset now, CancellationToken cancellationToken)
    {
        if (!report.Unsolicited)
        {
            return;
        }

        var unsolicited = NewEvent(report, EventTypes.LabTestResultUnsolicited, now);
        unsolicited.UnsolicitedResult = new UnsolicitedResult
        {
            ReportId = report.Id,
            ReportVersion = report.Version,
            Status = ResultsWords.Status(report.Metadata.Status),
            Interpretation = ResultsWords.Interpretation(report.Metadata.Interpretation),
        };
        unsolicited.UnsolicitedResult.Analytes.AddRange(report.UnsolicitedAnalytes);
        await Outbox.AddAsync(transaction, unsolicited, cancellationToken);
    }

    private static Event NewEvent(Report report, string type, DateTimeOffset now) => new()
    {
        Type = type,
        CreatedAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(now),
        TeamId = report.TeamId,
        RequisitionId = report.RequisitionId,
        Source = ServiceName,
    };

    internal sealed class ReadingRow
    {
        public int Interpretation { get; set; }
        public int Unsolicited { get; set; }
    }

    internal sealed class ReportSizeRow
    {
        public string Id { get; set; } = "";
        public int Version { get; set; }
        public long Size { get; set; }
    }

    internal sealed class ReportRow
    {
        public byte[] Body { get; set; } = [];
        public string RequestHash { get; set; } = "";
        public int EffectsApplied { get; set; }
        public int Superseded { get; set; }

        public ReportRecord ToRecord()
        {
            var report = Report.Parser.ParseFrom(Body);
            report.Superseded = Superseded != 0;
            return new ReportRecord(report, RequestHash, EffectsApplied != 0);
        }
    }

    internal sealed class ProgressRow
    {
        public string RequisitionId { get; set; } = "";
        public string TeamId { get; set; } = "";
        public string PatientId { get; set; } = "";
        public int Stage { get; set; }
        public long Sequence { get; set; }
        public long SyncedSequence { get; set; }
        public int AllReceived { get; set; }
        public string? SharedTime { get; set; }

        public ResultsProgress ToRecord() => new(RequisitionId, TeamId, PatientId, (LifecycleStatus)Stage, Sequence, SyncedSequence,
            AllReceived != 0, SharedTime is null ? null : DbTime.FromDb(SharedTime));
    }
}
