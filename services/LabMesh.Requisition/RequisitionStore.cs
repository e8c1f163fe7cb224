using System.Data.Common;
using System.Globalization;
using Dapper;
using Google.Protobuf;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Requisition.Domain;
using LabMesh.Security.Audit;
using LabMesh.Core.Errors;
using LabMesh.Messaging.Events;
using LabMesh.ServiceDefaults.Peers;
using LabMesh.Messaging.Storage;
using LabMesh.Core.Diagnostics;
using LabMesh.Core.Vocabulary;

namespace LabMesh.Requisition;

/// <summary>One requisition as stored. <see cref="Order"/> holds what the caller ordered (patient, provider, lab, tests).</summary>
public sealed record RequisitionRecord(
    string Id,
    string TeamId,
    string RequestId,
    string RequestHash,
    bool Committed,
    TestModality Modality,
    Contracts.Requisition.V1.Requisition Order,
    OrderStatus Status,
    string SubStatus,
    LifecycleStatus Lifecycle,
    long Version,
    bool ServiceRequestsConfirmed,
    long ServiceRequestsSyncedEventId,
    long LastEventId,
    DateTimeOffset CreateTime,
    DateTimeOffset UpdateTime,
    DateTimeOffset? PlaceTime,
    IReadOnlyList<OrderEvent> Events,
    LifecycleStatus ResultsStage = LifecycleStatus.Unspecified,
    long ResultsStageSequence = 0)
{
    public string Etag => Version.ToString(CultureInfo.InvariantCulture);

    public bool IsDraft => Status == OrderStatus.Unspecified;

    public NamespacedStatus? Current => SubStatus.Length == 0 ? null : Modalities.Parse(Modality, SubStatus, "sub_status");
}

/// <summary>Filters of <see cref="RequisitionStore.ListAsync"/>; default values mean any.</summary>
public sealed record RequisitionFilter(OrderStatus Status, LifecycleStatus Lifecycle, TestModality Modality, string? PatientId, bool? Draft);

/// <summary>
/// The Requisition service's store. A requisition is inserted uncommitted while its service
/// requests are created in the ServiceRequest service, and committed (visible) after; every
/// change after that writes the row (version + 1), its order event and its outbox events in one
/// transaction. All reads are scoped to a team and see committed requisitions only.
/// </summary>
public sealed class RequisitionStore(Database database, TimeProvider time)
{
    public const string ServiceName = "requisition";

    private const string Columns =
        "id AS Id, team_id AS TeamId, request_id AS RequestId, request_hash AS RequestHash, committed AS Committed, " +
        "modality AS Modality, order_body AS OrderBody, status AS Status, sub_status AS SubStatus, lifecycle AS Lifecycle, " +
        "version AS Version, sr_confirmed AS ServiceRequestsConfirmed, sr_synced_event_id AS ServiceRequestsSyncedEventId, " +
        "last_event_id AS LastEventId, create_time AS CreateTime, update_time AS UpdateTime, place_time AS PlaceTime, " +
        "results_stage AS ResultsStage, results_seq AS ResultsStageSequence";

    private const string Schema = """
        CREATE TABLE requisitions (
            id TEXT PRIMARY KEY,
            team_id TEXT NOT NULL,
            request_id TEXT NOT NULL,
            request_hash TEXT NOT NULL,
            committed INTEGER NOT NULL,
            patient_id TEXT NOT NULL,
            modality INTEGER NOT NULL,
            order_body BLOB NOT NULL,
            status INTEGER NOT NULL,
            sub_status TEXT NOT NULL,
            lifecycle INTEGER NOT NULL,
            version BIGINT NOT NULL,
            sr_confirmed INTEGER NOT NULL,
            sr_synced_event_id BIGINT NOT NULL,
            last_event_id BIGINT NOT NULL,
            create_time TEXT NOT NULL,
            update_time TEXT NOT NULL,
            place_time TEXT NULL,
            UNIQUE (team_id, request_id)
        );
        CREATE INDEX ix_requisitions_team ON requisitions (team_id, id);
        CREATE INDEX ix_requisitions_unsynced ON requisitions (committed, sr_confirmed, sr_synced_event_id);
        CREATE TABLE order_events (
            requisition_id TEXT NOT NULL REFERENCES requisitions (id),
            id BIGINT NOT NULL,
            created_at TEXT NOT NULL,
            status TEXT NOT NULL,
            note TEXT NOT NULL,
            actor TEXT NOT NULL,
            PRIMARY KEY (requisition_id, id)
        );
        """;

    public static IReadOnlyList<Migration> Migrations { get; } =
    [
        new(1, "requisitions and their order events", Schema, Schema.Replace(" BLOB ", " BYTEA ", StringComparison.Ordinal)),
        Outbox.Migration(2),
        new(3, "the results stage the ResultsInterpretation service reports",
            "ALTER TABLE requisitions ADD COLUMN results_stage INTEGER NOT NULL DEFAULT 0;\n" +
            "ALTER TABLE requisitions ADD COLUMN results_seq BIGINT NOT NULL DEFAULT 0;"),
        AuditLog.Migration(4),
        PeerWork.Migration(5),
        new(6, "replacement orders: which requisition replaces which", """
            CREATE TABLE requisition_replacements (
                requisition_id TEXT NOT NULL REFERENCES requisitions (id),
                replaced_by_id TEXT NOT NULL REFERENCES requisitions (id),
                team_id TEXT NOT NULL,
                PRIMARY KEY (requisition_id, replaced_by_id)
            );
            CREATE INDEX ix_requisition_replacements_by ON requisition_replacements (replaced_by_id);
            """),
    ];

    /// <summary>The longest replacement chain a read follows (a chain is a handful of orders; this bounds a read).</summary>
    public const int MaxChain = 100;

    public async Task<RequisitionRecord?> GetAsync(string teamId, string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await WithEventsAsync(connection, null, await connection.QuerySingleOrDefaultAsync<Row>(
            $"SELECT {Columns} FROM requisitions WHERE id = @id AND team_id = @teamId AND committed = 1", new { id, teamId, cancellationToken }));
    }

    /// <summary>The requisition a request_id created, committed or not.</summary>
    public async Task<RequisitionRecord?> FindByRequestAsync(string teamId, string requestId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await WithEventsAsync(connection, null, await connection.QuerySingleOrDefaultAsync<Row>(
            $"SELECT {Columns} FROM requisitions WHERE team_id = @teamId AND request_id = @requestId", new { teamId, requestId, cancellationToken }));
    }

    public async Task<IReadOnlyList<RequisitionRecord>> ListAsync(
        string teamId, RequisitionFilter filter, string? afterId, int pageSize, CancellationToken cancellationToken)
    {
        var where = new System.Text.StringBuilder("team_id = @teamId AND committed = 1");
        if (filter.Status != OrderStatus.Unspecified)
        {
            where.Append(" AND status = @Status");
        }

        if (filter.Lifecycle != LifecycleStatus.Unspecified)
        {
            where.Append(" AND lifecycle = @Lifecycle");
        }

        if (filter.Modality != TestModality.Unspecified)
        {
            where.Append(" AND modality = @Modality");
        }

        if (!string.IsNullOrEmpty(filter.PatientId))
        {
            where.Append(" AND patient_id = @PatientId");
        }

        if (filter.Draft is { } draft)
        {
            where.Append(draft ? " AND status = 0" : " AND status <> 0");
        }

        if (afterId is not null)
        {
            where.Append(" AND id < @afterId");
        }

        await using var connection = await database.OpenAsync(cancellationToken);
        // No cancellation token among the parameters: Dapper.AOT 1.1.0 generates code that does not compile (CS0103) for a
        // token beside a statement text built at run time, so the token is checked before the read (bounded by its limit).
        cancellationToken.ThrowIfCancellationRequested();
        var rows = await connection.QueryAsync<Row>(
            $"SELECT {Columns} FROM requisitions WHERE {where} ORDER BY id DESC LIMIT @limit",
            new
            {
                teamId,
                Status = (int)filter.Status,
                Lifecycle = (int)filter.Lifecycle,
                Modality = (int)filter.Modality,
                filter.PatientId,
                afterId,
                limit = pageSize + 1,
            });
        return rows.Select(r => r.ToRecord([])).ToList();
    }

    /// <summary>
    /// Inserts an uncommitted requisition for (team, request_id), or returns the one that is there
    /// (a retry, or a concurrent twin that won the unique key).
    /// </summary>
    public async Task<RequisitionRecord> InsertUncommittedAsync(
        string teamId, string requestId, string requestHash, Contracts.Requisition.V1.Requisition order, CancellationToken cancellationToken)
    {
        var now = DbTime.Now(time);
        var record = new RequisitionRecord(Guid.CreateVersion7().ToString(), teamId, requestId, requestHash, false, order.Modality, order,
            OrderStatus.Unspecified, "", LifecycleStatus.NotPurchased, 1, false, 0, 0, now, now, null, []);
        try
        {
            await database.WriteAsync(async (connection, transaction) =>
            {
                // ADO.NET itself, as Outbox.AddAsync does, not Dapper: Dapper.AOT 1.1.0 takes a byte[] member for a list and
                // expands it (DapperLib/DapperAOT#226; SQLite answers "row value misused"), through SqlMapper's run-time code.
                await using var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText =
                    "INSERT INTO requisitions (id, team_id, request_id, request_hash, committed, patient_id, modality, order_body, status, " +
                    "sub_status, lifecycle, version, sr_confirmed, sr_synced_event_id, last_event_id, create_time, update_time, place_time) " +
                    "VALUES (@Id, @TeamId, @RequestId, @RequestHash, 0, @PatientId, @Modality, @OrderBody, 0, '', @Lifecycle, 1, 0, 0, 0, " +
                    "@Time, @Time, NULL)";
                AddParameter(command, "Id", record.Id);
                AddParameter(command, "TeamId", teamId);
                AddParameter(command, "RequestId", requestId);
                AddParameter(command, "RequestHash", requestHash);
                AddParameter(command, "PatientId", order.Patient?.Id ?? "");
                AddParameter(command, "Modality", (int)order.Modality);
                AddParameter(command, "OrderBody", order.ToByteArray());
                AddParameter(command, "Lifecycle", (int)record.Lifecycle);
                AddParameter(command, "Time", DbTime.ToDb(now));
                await command.ExecuteNonQueryAsync(cancellationToken);
                return true;
            }, cancellationToken);
            return record;
        }
        catch (Exception ex) when (Database.IsUniqueViolation(ex))
        {
            return await FindByRequestAsync(teamId, requestId, cancellationToken)
                ?? throw new InvalidOperationException("A unique violation on (team_id, request_id) without a row.", ex);
        }
    }

    /// <summary>
    /// Makes the requisition visible, placed (<c>received.[modality].ordered</c>, <c>order.placed</c>)
    /// or as a draft. Committing a committed one returns it unchanged.
    /// </summary>
    public async Task<(RequisitionRecord Record, bool Changed)> CommitAsync(
        string teamId, string id, bool place, IReadOnlyList<LineItem> lineItems, string actor, CancellationToken cancellationToken)
    {
        var committed = await CommitInTransactionAsync(teamId, id, place, lineItems, actor, cancellationToken);
        if (committed.Changed && place)
        {
            CountPlaced(committed.Record);
        }

        return committed;
    }

    private Task<(RequisitionRecord Record, bool Changed)> CommitInTransactionAsync(
        string teamId, string id, bool place, IReadOnlyList<LineItem> lineItems, string actor, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var record = await WithEventsAsync(connection, transaction, await connection.QuerySingleOrDefaultAsync<Row>(
                    $"SELECT {Columns} FROM requisitions WHERE id = @id AND team_id = @teamId", new { id, teamId }, transaction))
                ?? throw new NotFoundException("requisition", id);
            if (record.Committed)
            {
                return (record, false);
            }

            // Concurrent retries of one create may all get here: the guard lets exactly one commit.
            if (await connection.ExecuteAsync("UPDATE requisitions SET committed = 1 WHERE id = @id AND committed = 0", new { id }, transaction) == 0)
            {
                var winner = await WithEventsAsync(connection, transaction, await connection.QuerySingleOrDefaultAsync<Row>(
                    $"SELECT {Columns} FROM requisitions WHERE id = @id", new { id }, transaction));
                return (winner!, false);
            }

            record = record with { Committed = true };
            if (record.Order.ReplacesRequisitionId is { Length: > 0 } replaced)
            {
                // Both carry the link: the replaced requisition gains a replacement, a change of it (version + 1).
                await connection.ExecuteAsync(
                    "INSERT INTO requisition_replacements (requisition_id, replaced_by_id, team_id) VALUES (@replaced, @id, @teamId) " +
                    "ON CONFLICT DO NOTHING", new { replaced, id, teamId }, transaction);
                await connection.ExecuteAsync(
                    "UPDATE requisitions SET version = version + 1, update_time = @now WHERE id = @replaced AND team_id = @teamId",
                    new { replaced, teamId, now = DbTime.ToDb(DbTime.Now(time)) }, transaction);
            }

            if (place)
            {
                record = await PlaceInTransactionAsync(connection, transaction, record, lineItems, actor, cancellationToken);
            }

            return (record, true);
        }, cancellationToken);

    /// <summary>Places a draft. Placing a placed requisition is FAILED_PRECONDITION.</summary>
    public async Task<RequisitionRecord> PlaceAsync(
        string teamId, string id, string? etag, IReadOnlyList<LineItem> lineItems, string actor, CancellationToken cancellationToken)
    {
        var placed = await database.WriteAsync(async (connection, transaction) =>
        {
            var record = await LoadForUpdateAsync(connection, transaction, teamId, id, etag);
            if (!record.IsDraft)
            {
                throw new IllegalTransitionException("requisition", record.SubStatus, Ordered(record.Modality),
                    OrderStatusMachine.AllowedNext(record.Modality, record.Current).ToList());
            }

            return await PlaceInTransactionAsync(connection, transaction, record, lineItems, actor, cancellationToken);
        }, cancellationToken);
        CountPlaced(placed);
        return placed;
    }

    /// <summary>labmesh.requisitions.placed, once the placing committed.</summary>
    private static void CountPlaced(RequisitionRecord record) =>
        LabMeshMetrics.RequisitionsPlaced.Add(1, new KeyValuePair<string, object?>("labmesh.modality", Modalities.Word(record.Modality)));

    /// <summary>
    /// Records an order event by the modality's rules. Recording the current status again changes
    /// nothing (Changed is false). A draft accepts only its cancellation. A stale etag is ABORTED
    /// unless the request repeats the latest event (same status and note): that is a retry of a call
    /// that committed, and changes nothing.
    /// </summary>
    public Task<(RequisitionRecord Record, bool Changed)> RecordEventAsync(
        string teamId, string id, string? etag, string status, string note, string actor, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var record = await LoadForUpdateAsync(connection, transaction, teamId, id, etag: null);
            if (!string.IsNullOrEmpty(etag) && etag != record.Etag &&
                !(record.Events.Count > 0 && record.Events[^1].Status == status && record.Events[^1].Note == note))
            {
                throw new StaleEtagException("requisition", id);
            }

            NamespacedStatus next;
            if (record.IsDraft)
            {
                // A draft was never placed: it can only be cancelled, straight from not_purchased, to a cancelled
                // status of its modality's vocabulary (anything else is INVALID_ARGUMENT, never stored).
                var cancel = Modalities.Parse(record.Modality, status, "status");
                var cancellations = OrderStatusMachine.CancellationsFrom(record.Modality, null);
                if (!cancellations.Contains(cancel.ToString()))
                {
                    throw new IllegalTransitionException("requisition", "draft", status, [.. cancellations, "PlaceRequisition"]);
                }

                next = cancel;
            }
            else
            {
                next = OrderStatusMachine.Record(record.Modality, record.Current, status);
                if (next == record.Current)
                {
                    return (record, false);
                }
            }

            var updated = await AddEventInTransactionAsync(connection, transaction, record, next, note, actor, cancellationToken);
            return (updated, true);
        }, cancellationToken);

    /// <summary>
    /// Committed requisitions whose service requests still need a confirm or the latest order event, and are due
    /// (<see cref="PeerWork"/>: <paramref name="kind"/>'s attempts, keyed by the latest order event): never tried
    /// first, then by when they were due; those backing off or parked are left out.
    /// </summary>
    public async Task<IReadOnlyList<RequisitionRecord>> ListUnsyncedAsync(string kind, string now, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        // The join names the work kind, so the statement is built at run time: the token is checked before the read, not
        // carried beside it (Dapper.AOT 1.1.0's CS0103, as in ListAsync).
        cancellationToken.ThrowIfCancellationRequested();
        var rows = await connection.QueryAsync<Row>(
            $"SELECT {Columns} FROM requisitions{PeerWork.DueJoin(kind, "requisitions.id", "requisitions.last_event_id")} " +
            $"WHERE committed = 1 AND (sr_confirmed = 0 OR sr_synced_event_id < last_event_id) AND {PeerWork.DueFilter} " +
            $"ORDER BY {PeerWork.DueOrder}, id LIMIT @limit", new { now, limit });
        return rows.Select(r => r.ToRecord([])).ToList();
    }

    public async Task MarkServiceRequestsConfirmedAsync(string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync("UPDATE requisitions SET sr_confirmed = 1 WHERE id = @id", new { id, cancellationToken });
    }

    /// <summary>Notes that the service requests have the order event <paramref name="eventId"/> (never moves back).</summary>
    public async Task MarkServiceRequestsSyncedAsync(string id, long eventId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await connection.ExecuteAsync(
            "UPDATE requisitions SET sr_synced_event_id = @eventId WHERE id = @id AND sr_synced_event_id < @eventId",
            new { id, eventId, cancellationToken });
    }

    /// <summary>
    /// Records the results milestone <paramref name="stage"/> numbered <paramref name="sequence"/>
    /// (version + 1) unless that sequence, or a later one, was recorded already.
    /// </summary>
    public Task<(RequisitionRecord Record, bool Changed)> RecordResultsStageAsync(
        string teamId, string id, LifecycleStatus stage, long sequence, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var record = await LoadForUpdateAsync(connection, transaction, teamId, id, etag: null);
            if (sequence <= record.ResultsStageSequence)
            {
                return (record, false);
            }

            var now = DbTime.Now(time);
            var updated = record with { ResultsStage = stage, ResultsStageSequence = sequence, Version = record.Version + 1, UpdateTime = now };
            var rows = await connection.ExecuteAsync(
                "UPDATE requisitions SET results_stage = @stage, results_seq = @sequence, version = @Version, update_time = @UpdateTime " +
                "WHERE id = @Id AND version = @previous",
                new { stage = (int)stage, sequence, updated.Version, UpdateTime = DbTime.ToDb(now), updated.Id, previous = record.Version },
                transaction);
            if (rows == 0)
            {
                throw new StaleEtagException("requisition", record.Id);
            }

            return (updated, true);
        }, cancellationToken);

    /// <summary>
    /// Stores a lifecycle derived anew from version <paramref name="derivedFrom"/> after a change (never on a
    /// read: <see cref="LifecycleRefresher"/>) and returns the version it made, or null when the requisition has
    /// moved on since (another change got there first: what was derived may be stale) or already has that
    /// lifecycle. The version moves like any change's, so the status cache (versioned) takes the new lifecycle.
    /// </summary>
    public async Task<long?> UpdateLifecycleAsync(string id, long derivedFrom, LifecycleStatus lifecycle, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.ExecuteScalarAsync<long?>(
            "UPDATE requisitions SET lifecycle = @lifecycle, version = version + 1 " +
            "WHERE id = @id AND version = @derivedFrom AND lifecycle <> @lifecycle RETURNING version",
            new { id, derivedFrom, lifecycle = (int)lifecycle, cancellationToken });
    }

    /// <summary>
    /// The requisitions that replace <paramref name="id"/> (oldest first), and its whole replacement chain: every
    /// requisition linked to it through replacements, either way, oldest first, itself included (empty when it
    /// has no link). Follows at most <see cref="MaxChain"/> requisitions.
    /// </summary>
    public async Task<(IReadOnlyList<string> ReplacedBy, IReadOnlyList<string> Chain)> GetReplacementsAsync(
        string teamId, string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var seen = new HashSet<string>(StringComparer.Ordinal) { id };
        var replacedBy = new List<string>();
        var queue = new Queue<string>([id]);
        while (queue.TryDequeue(out var next) && seen.Count < MaxChain)
        {
            var links = await connection.QueryAsync<LinkRow>(
                "SELECT requisition_id AS Replaced, replaced_by_id AS Replacement FROM requisition_replacements " +
                "WHERE team_id = @teamId AND (requisition_id = @next OR replaced_by_id = @next)",
                new { teamId, next, cancellationToken });
            foreach (var link in links)
            {
                if (next == id && link.Replaced == id)
                {
                    replacedBy.Add(link.Replacement);
                }

                foreach (var linked in new[] { link.Replaced, link.Replacement })
                {
                    if (seen.Add(linked))
                    {
                        queue.Enqueue(linked);
                    }
                }
            }
        }

        // Ids are UUIDv7: their text sorts by creation time, so oldest first.
        replacedBy.Sort(StringComparer.Ordinal);
        return (replacedBy, seen.Count == 1 ? [] : [.. seen.Order(StringComparer.Ordinal)]);
    }

    private async Task<RequisitionRecord> PlaceInTransactionAsync(
        DbConnection connection, DbTransaction transaction, RequisitionRecord record, IReadOnlyList<LineItem> lineItems, string actor,
        CancellationToken cancellationToken)
    {
        var now = DbTime.Now(time);
        var placed = await AddEventInTransactionAsync(connection, transaction, record with { PlaceTime = now },
            Modalities.Parse(record.Modality, Ordered(record.Modality), "status"), note: "", actor, cancellationToken);
        await connection.ExecuteAsync("UPDATE requisitions SET place_time = @time WHERE id = @id",
            new { time = DbTime.ToDb(now), id = record.Id }, transaction);
        var evt = NewEvent(placed, EventTypes.OrderPlaced, now);
        evt.OrderPlaced = new OrderPlaced { Modality = Modalities.Word(record.Modality), ReplacesRequisitionId = record.Order.ReplacesRequisitionId };
        evt.OrderPlaced.LineItems.AddRange(lineItems);
        await Outbox.AddAsync(transaction, evt, cancellationToken);
        return placed;
    }

    private async Task<RequisitionRecord> AddEventInTransactionAsync(
        DbConnection connection, DbTransaction transaction, RequisitionRecord record, NamespacedStatus next, string note, string actor,
        CancellationToken cancellationToken)
    {
        var now = DbTime.Now(time);
        var eventId = record.LastEventId + 1;
        var nextText = next.ToString();
        var orderEvent = new OrderEvent
        {
            Id = eventId,
            CreatedAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(now),
            Status = nextText,
            Note = note,
        };
        var events = record.Events.Append(orderEvent).ToList();
        var lifecycle = Lifecycle.Derive(new LifecycleInputs(false, record.Modality, events.Select(e => e.Status).ToList(), [], record.ResultsStage));
        var updated = record with
        {
            Status = next.High,
            SubStatus = nextText,
            Lifecycle = lifecycle,
            Version = record.Version + 1,
            LastEventId = eventId,
            UpdateTime = now,
            Events = events,
        };
        var rows = await connection.ExecuteAsync(
            "UPDATE requisitions SET status = @Status, sub_status = @SubStatus, lifecycle = @Lifecycle, version = @Version, " +
            "last_event_id = @LastEventId, update_time = @UpdateTime WHERE id = @Id AND version = @previous",
            new
            {
                Status = (int)updated.Status,
                updated.SubStatus,
                Lifecycle = (int)lifecycle,
                updated.Version,
                updated.LastEventId,
                UpdateTime = DbTime.ToDb(now),
                updated.Id,
                previous = record.Version,
            }, transaction);
        if (rows == 0)
        {
            // A concurrent writer (PostgreSQL, READ COMMITTED) changed it after we read it.
            throw new StaleEtagException("requisition", record.Id);
        }

        await connection.ExecuteAsync(
            "INSERT INTO order_events (requisition_id, id, created_at, status, note, actor) VALUES (@id, @eventId, @at, @status, @note, @actor)",
            new { id = record.Id, eventId, at = DbTime.ToDb(now), status = nextText, note, actor }, transaction);

        var evt = NewEvent(updated, EventTypes.OrderStatusChanged, now);
        evt.OrderStatusChanged = new OrderStatusChanged
        {
            Status = nextText,
            HighLevelStatus = Modalities.HighWord(updated.Status),
            PreviousHighLevelStatus = record.IsDraft ? "" : Modalities.HighWord(record.Status),
            LifecycleStatus = LifecycleWords.Word(lifecycle),
            OrderEventId = eventId,
        };
        await Outbox.AddAsync(transaction, evt, cancellationToken);
        return updated;
    }

    /// <summary>The first status of every placed order: <c>received.[modality].ordered</c>.</summary>
    private static string Ordered(TestModality modality) => $"received.{Modalities.Word(modality)}.ordered";

    private static Event NewEvent(RequisitionRecord record, string type, DateTimeOffset now) => new()
    {
        Type = type,
        CreatedAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(now),
        TeamId = record.TeamId,
        RequisitionId = record.Id,
        Source = ServiceName,
    };

    private async Task<RequisitionRecord> LoadForUpdateAsync(DbConnection connection, DbTransaction transaction, string teamId, string id, string? etag)
    {
        // One constant statement per database: Dapper.AOT reads each at build time.
        var row = database.Provider == StorageProvider.Postgres
            ? await connection.QuerySingleOrDefaultAsync<Row>(
                $"SELECT {Columns} FROM requisitions WHERE id = @id AND team_id = @teamId AND committed = 1 FOR UPDATE", new { id, teamId }, transaction)
            : await connection.QuerySingleOrDefaultAsync<Row>(
                $"SELECT {Columns} FROM requisitions WHERE id = @id AND team_id = @teamId AND committed = 1", new { id, teamId }, transaction);
        var record = await WithEventsAsync(connection, transaction, row) ?? throw new NotFoundException("requisition", id);
        if (!string.IsNullOrEmpty(etag) && etag != record.Etag)
        {
            throw new StaleEtagException("requisition", id);
        }

        return record;
    }

    private static void AddParameter(DbCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }

    /// <summary>
    /// The record of <paramref name="row"/> (null when none) with its order events. Each caller selects the row with a constant
    /// statement of its own, so Dapper.AOT's generator sees every statement and its parameters.
    /// </summary>
    private static async Task<RequisitionRecord?> WithEventsAsync(DbConnection connection, DbTransaction? transaction, Row? row)
    {
        if (row is null)
        {
            return null;
        }

        var events = await connection.QueryAsync<EventRow>(
            "SELECT id AS Id, created_at AS CreatedAt, status AS Status, note AS Note FROM order_events WHERE requisition_id = @Id ORDER BY id",
            new { row.Id }, transaction);
        return row.ToRecord(events.Select(e => new OrderEvent
        {
            Id = e.Id,
            CreatedAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(DbTime.FromDb(e.CreatedAt)),
            Status = e.Status,
            Note = e.Note,
        }).ToList());
    }

    internal sealed class Row
    {
        public string Id { get; set; } = "";
        public string TeamId { get; set; } = "";
        public string RequestId { get; set; } = "";
        public string RequestHash { get; set; } = "";
        public int Committed { get; set; }
        public int Modality { get; set; }
        public byte[] OrderBody { get; set; } = [];
        public int Status { get; set; }
        public string SubStatus { get; set; } = "";
        public int Lifecycle { get; set; }
        public long Version { get; set; }
        public int ServiceRequestsConfirmed { get; set; }
        public long ServiceRequestsSyncedEventId { get; set; }
        public long LastEventId { get; set; }
        public string CreateTime { get; set; } = "";
        public string UpdateTime { get; set; } = "";
        public string? PlaceTime { get; set; }
        public int ResultsStage { get; set; }
        public long ResultsStageSequence { get; set; }

        public RequisitionRecord ToRecord(IReadOnlyList<OrderEvent> events) => new(Id, TeamId, RequestId, RequestHash, Committed != 0,
            (TestModality)Modality, Contracts.Requisition.V1.Requisition.Parser.ParseFrom(OrderBody), (OrderStatus)Status, SubStatus,
            (LifecycleStatus)Lifecycle, Version, ServiceRequestsConfirmed != 0, ServiceRequestsSyncedEventId, LastEventId,
            DbTime.FromDb(CreateTime), DbTime.FromDb(UpdateTime), PlaceTime is null ? null : DbTime.FromDb(PlaceTime), events,
            (LifecycleStatus)ResultsStage, ResultsStageSequence);
    }

    internal sealed class EventRow
    {
        public long Id { get; set; }
        public string CreatedAt { get; set; } = "";
        public string Status { get; set; } = "";
        public string Note { get; set; } = "";
    }

    internal sealed class LinkRow
    {
        public string Replaced { get; set; } = "";
        public string Replacement { get; set; } = "";
    }
}
