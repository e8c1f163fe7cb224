using System.Data.Common;
using Dapper;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Security.Audit;
using LabMesh.Core.Errors;
using LabMesh.Messaging.Events;
using LabMesh.Messaging.Storage;
using LabMesh.ServiceRequest.Domain;

namespace LabMesh.ServiceRequest;

/// <summary>One service request as stored.</summary>
public sealed record ServiceRequestRecord(
    string Id,
    string TeamId,
    string RequisitionId,
    int Line,
    string Code,
    string TaskDescription,
    string PartnerId,
    ServiceRequestStatus Status,
    TaskBusinessStatus BusinessStatus,
    long Version,
    bool Pending,
    long LastOrderEventId,
    DateTimeOffset CreateTime,
    DateTimeOffset UpdateTime)
{
    public string Etag => Version.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public TaskState State => new(Status, BusinessStatus);
}

/// <summary>A change that committed, for the status cache (written after the commit).</summary>
public sealed record Change(ServiceRequestRecord Record, bool Changed);

/// <summary>Filters of <see cref="ServiceRequestStore.ListAsync"/>; null or default means any.</summary>
public sealed record ServiceRequestFilter(
    string? RequisitionId,
    string? PartnerId,
    ServiceRequestStatus Status,
    TaskBusinessStatus BusinessStatus,
    string? Code,
    bool IncludePending);

/// <summary>
/// The ServiceRequest service's store. Every mutation writes the row (version + 1), a history entry
/// and a <c>service_request.status_changed</c> event into the outbox in one transaction. Reads
/// and writes are always scoped to a team; a pending row (created for a requisition that has not
/// committed yet) is invisible except to the Requisition service's reads of its own requisition.
/// </summary>
public sealed class ServiceRequestStore(Database database, TimeProvider time)
{
    public const string ServiceName = "servicerequest";

    private const string Columns =
        "id AS Id, team_id AS TeamId, requisition_id AS RequisitionId, line AS Line, code AS Code, " +
        "task_description AS TaskDescription, partner_id AS PartnerId, status AS Status, " +
        "task_business_status AS BusinessStatus, version AS Version, pending AS Pending, " +
        "last_order_event_id AS LastOrderEventId, create_time AS CreateTime, update_time AS UpdateTime";

    public static IReadOnlyList<Migration> Migrations { get; } =
    [
        new(1, "service requests and their history", """
            CREATE TABLE service_requests (
                id TEXT PRIMARY KEY,
                team_id TEXT NOT NULL,
                requisition_id TEXT NOT NULL,
                line INTEGER NOT NULL,
                code TEXT NOT NULL,
                task_description TEXT NOT NULL,
                partner_id TEXT NOT NULL,
                status INTEGER NOT NULL,
                task_business_status INTEGER NOT NULL,
                version BIGINT NOT NULL,
                pending INTEGER NOT NULL,
                last_order_event_id BIGINT NOT NULL,
                create_time TEXT NOT NULL,
                update_time TEXT NOT NULL,
                UNIQUE (requisition_id, line)
            );
            CREATE INDEX ix_service_requests_team ON service_requests (team_id, id);
            CREATE TABLE service_request_history (
                service_request_id TEXT NOT NULL REFERENCES service_requests (id),
                sequence BIGINT NOT NULL,
                time TEXT NOT NULL,
                actor TEXT NOT NULL,
                from_status INTEGER NOT NULL,
                to_status INTEGER NOT NULL,
                from_business INTEGER NOT NULL,
                to_business INTEGER NOT NULL,
                note TEXT NOT NULL,
                cause TEXT NOT NULL,
                PRIMARY KEY (service_request_id, sequence)
            );
            """),
        Outbox.Migration(2),
        AuditLog.Migration(3),
    ];

    public Database Database => database;

    /// <summary>
    /// The team's visible service request <paramref name="id"/>; with <paramref name="partnerId"/> (the partner scope the
    /// authorization interceptor decided for the call), only one assigned to that partner.
    /// </summary>
    public async Task<ServiceRequestRecord?> GetAsync(string teamId, string id, string? partnerId, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        // One constant statement per case: Dapper.AOT reads each at build time (and carries the token only beside a constant one).
        var row = partnerId is null
            ? await connection.QuerySingleOrDefaultAsync<Row>(
                $"SELECT {Columns} FROM service_requests WHERE id = @id AND team_id = @teamId AND pending = 0",
                new { id, teamId, cancellationToken })
            : await connection.QuerySingleOrDefaultAsync<Row>(
                $"SELECT {Columns} FROM service_requests WHERE id = @id AND team_id = @teamId AND pending = 0 AND partner_id = @partnerId",
                new { id, teamId, partnerId, cancellationToken });
        return row?.ToRecord();
    }

    /// <summary>
    /// The partner a service request of the team is assigned to, pending or not; null when the team has none of that id.
    /// A service request keeps its partner from creation on (nothing updates <c>partner_id</c>), so the answer holds for
    /// the rest of the call: what the authorization interceptor's partner rule needs (<see cref="ServiceRequestAssignments"/>).
    /// </summary>
    public async Task<string?> PartnerOfAsync(string teamId, string id, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        return await connection.QuerySingleOrDefaultAsync<string>(
            "SELECT partner_id FROM service_requests WHERE id = @id AND team_id = @teamId", new { id, teamId, cancellationToken });
    }

    /// <summary>Newest first; up to <paramref name="pageSize"/> + 1 rows so the caller knows whether another page follows.</summary>
    public async Task<IReadOnlyList<ServiceRequestRecord>> ListAsync(
        string teamId, ServiceRequestFilter filter, string? afterId, int pageSize, CancellationToken cancellationToken)
    {
        var sql = new System.Text.StringBuilder($"SELECT {Columns} FROM service_requests WHERE team_id = @teamId");
        if (!filter.IncludePending)
        {
            sql.Append(" AND pending = 0");
        }

        if (!string.IsNullOrEmpty(filter.RequisitionId))
        {
            sql.Append(" AND requisition_id = @RequisitionId");
        }

        if (!string.IsNullOrEmpty(filter.PartnerId))
        {
            sql.Append(" AND partner_id = @PartnerId");
        }

        if (filter.Status != ServiceRequestStatus.Unspecified)
        {
            sql.Append(" AND status = @Status");
        }

        if (filter.BusinessStatus != TaskBusinessStatus.Unspecified)
        {
            sql.Append(" AND task_business_status = @BusinessStatus");
        }

        if (!string.IsNullOrEmpty(filter.Code))
        {
            sql.Append(" AND code = @Code");
        }

        if (afterId is not null)
        {
            sql.Append(" AND id < @afterId");
        }

        sql.Append(" ORDER BY id DESC LIMIT @limit");
        await using var connection = await database.OpenAsync(cancellationToken);
        // No cancellation token among the parameters: Dapper.AOT 1.1.0 generates code that does not compile (CS0103) for a
        // token beside a statement text built at run time, so the token is checked before the read (bounded by its limit).
        cancellationToken.ThrowIfCancellationRequested();
        var rows = await connection.QueryAsync<Row>(sql.ToString(), new
        {
            teamId,
            filter.RequisitionId,
            filter.PartnerId,
            Status = (int)filter.Status,
            BusinessStatus = (int)filter.BusinessStatus,
            filter.Code,
            afterId,
            limit = pageSize + 1,
        });
        return rows.Select(r => r.ToRecord()).ToList();
    }

    /// <summary>The visible service requests of <paramref name="ids"/> that belong to the team.</summary>
    public async Task<IReadOnlyList<ServiceRequestRecord>> GetManyAsync(string teamId, IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        // The ids as one JSON array parameter (DbIdSet), read as a set: one constant statement per database.
        var json = DbIdSet.ToJson(ids);
        var rows = database.Provider == StorageProvider.Postgres
            ? await connection.QueryAsync<Row>(
                $"SELECT {Columns} FROM service_requests WHERE id IN (SELECT json_array_elements_text(CAST(@json AS json))) AND team_id = @teamId AND pending = 0",
                new { json, teamId, cancellationToken })
            : await connection.QueryAsync<Row>(
                $"SELECT {Columns} FROM service_requests WHERE id IN (SELECT value FROM json_each(@json)) AND team_id = @teamId AND pending = 0",
                new { json, teamId, cancellationToken });
        return rows.Select(r => r.ToRecord()).ToList();
    }

    /// <summary>
    /// Up to <paramref name="limit"/> changes of a service request of the team after sequence <paramref name="afterSequence"/>,
    /// oldest first; with <paramref name="partnerId"/>, only of one assigned to that partner.
    /// </summary>
    public async Task<IReadOnlyList<ServiceRequestChange>> GetHistoryAsync(
        string teamId, string id, string? partnerId, long afterSequence, int limit, CancellationToken cancellationToken)
    {
        if (await GetAsync(teamId, id, partnerId, cancellationToken) is null)
        {
            throw new NotFoundException("service request", id);
        }

        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<HistoryRow>(
            "SELECT sequence AS Sequence, time AS Time, actor AS Actor, from_status AS FromStatus, to_status AS ToStatus, " +
            "from_business AS FromBusiness, to_business AS ToBusiness, note AS Note, cause AS Cause " +
            "FROM service_request_history WHERE service_request_id = @id AND sequence > @afterSequence ORDER BY sequence LIMIT @limit",
            new { id, afterSequence, limit, cancellationToken });
        return rows.Select(r => new ServiceRequestChange
        {
            Sequence = r.Sequence,
            Time = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(DbTime.FromDb(r.Time)),
            Actor = r.Actor,
            FromStatus = (ServiceRequestStatus)r.FromStatus,
            ToStatus = (ServiceRequestStatus)r.ToStatus,
            FromTaskBusinessStatus = (TaskBusinessStatus)r.FromBusiness,
            ToTaskBusinessStatus = (TaskBusinessStatus)r.ToBusiness,
            Note = r.Note,
            Cause = r.Cause,
        }).ToList();
    }

    /// <summary>
    /// Creates the service requests of a requisition, pending. Idempotent: when the requisition has
    /// them already, returns those (ALREADY_EXISTS if they differ from what is asked now).
    /// </summary>
    public async Task<IReadOnlyList<ServiceRequestRecord>> CreateForRequisitionAsync(
        string teamId, string requisitionId, IReadOnlyList<NewServiceRequest> items, string actor, CancellationToken cancellationToken)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await database.WriteAsync(async (connection, transaction) =>
                {
                    var existing = await SelectByRequisitionAsync(connection, transaction, requisitionId);
                    if (existing.Count > 0)
                    {
                        if (existing[0].TeamId != teamId || !SameItems(existing, items))
                        {
                            throw new AlreadyExistsException("requisition", requisitionId,
                                $"Requisition '{requisitionId}' already has different service requests.");
                        }

                        return existing;
                    }

                    var now = DbTime.Now(time);
                    var created = new List<ServiceRequestRecord>(items.Count);
                    for (var line = 0; line < items.Count; line++)
                    {
                        var item = items[line];
                        var record = new ServiceRequestRecord(Guid.CreateVersion7().ToString(), teamId, requisitionId, line, item.Code,
                            item.TaskDescription, item.PartnerId, ServiceRequestStatus.Active, TaskBusinessStatus.Unspecified,
                            1, Pending: true, 0, now, now);
                        await connection.ExecuteAsync(
                            "INSERT INTO service_requests (id, team_id, requisition_id, line, code, task_description, partner_id, status, " +
                            "task_business_status, version, pending, last_order_event_id, create_time, update_time) VALUES " +
                            "(@Id, @TeamId, @RequisitionId, @Line, @Code, @TaskDescription, @PartnerId, @Status, @BusinessStatus, " +
                            "@Version, 1, 0, @CreateTime, @UpdateTime)",
                            Parameters(record), transaction);
                        await AddHistoryAsync(connection, transaction, record, 1, actor,
                            new TaskState(ServiceRequestStatus.Unspecified, TaskBusinessStatus.Unspecified), note: "", cause: "created", now);
                        created.Add(record);
                    }

                    return (IReadOnlyList<ServiceRequestRecord>)created;
                }, cancellationToken);
            }
            catch (Exception ex) when (attempt == 0 && Database.IsUniqueViolation(ex))
            {
                // Another replica created them at the same moment: read theirs on the next pass.
            }
        }
    }

    /// <summary>Makes a requisition's pending service requests visible, with one creation event each.</summary>
    public Task<IReadOnlyList<Change>> ConfirmAsync(string teamId, string requisitionId, string actor, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var rows = await SelectByRequisitionAsync(connection, transaction, requisitionId, forUpdate: true);
            if (rows.Count == 0 || rows[0].TeamId != teamId)
            {
                throw new NotFoundException("requisition", requisitionId);
            }

            var now = DbTime.Now(time);
            var result = new List<Change>(rows.Count);
            foreach (var row in rows)
            {
                if (!row.Pending)
                {
                    result.Add(new Change(row, false));
                    continue;
                }

                var confirmed = row with { Pending = false, Version = row.Version + 1, UpdateTime = now };
                await connection.ExecuteAsync(
                    "UPDATE service_requests SET pending = 0, version = @Version, update_time = @UpdateTime WHERE id = @Id",
                    Parameters(confirmed), transaction);
                await Outbox.AddAsync(transaction, StatusChangedEvent(confirmed,
                    new TaskState(ServiceRequestStatus.Unspecified, TaskBusinessStatus.Unspecified), actor, now), cancellationToken);
                result.Add(new Change(confirmed, true));
            }

            return (IReadOnlyList<Change>)result;
        }, cancellationToken);

    /// <summary>
    /// The partner's PATCH of seed 000 (task_business_status), under the etag if one is given; with
    /// <paramref name="partnerId"/>, only of a service request assigned to that partner.
    /// </summary>
    public Task<Change> UpdateTaskStatusAsync(
        string teamId, string id, string? partnerId, string? etag, TaskBusinessStatus next, string? description, string note, string actor,
        CancellationToken cancellationToken) =>
        MutateAsync(teamId, id, partnerId, etag, actor, note, cause: "", cancellationToken, record =>
        {
            var state = TaskStatusMachine.UpdateBusinessStatus(record.State, next);
            return record with
            {
                Status = state.Status,
                BusinessStatus = state.BusinessStatus,
                TaskDescription = description ?? record.TaskDescription,
            };
        });

    /// <summary>The owner's cancel (FHIR <c>revoked</c>).</summary>
    public Task<Change> RevokeAsync(string teamId, string id, string? etag, string reason, string actor, CancellationToken cancellationToken) =>
        MutateAsync(teamId, id, partnerId: null, etag, actor, reason, cause: "revoked", cancellationToken, record =>
        {
            var state = TaskStatusMachine.Revoke(record.State);
            return record with { Status = state.Status, BusinessStatus = state.BusinessStatus };
        });

    /// <summary>
    /// Applies an order event to every service request of the requisition (pending ones too), by the
    /// consistency table. An event id at or below a row's last applied one changes nothing.
    /// </summary>
    public Task<IReadOnlyList<Change>> ApplyOrderEventAsync(
        string teamId, string requisitionId, string orderStatus, long orderEventId, string actor, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var rows = await SelectByRequisitionAsync(connection, transaction, requisitionId, forUpdate: true);
            if (rows.Count == 0 || rows[0].TeamId != teamId)
            {
                throw new NotFoundException("requisition", requisitionId);
            }

            var now = DbTime.Now(time);
            var result = new List<Change>(rows.Count);
            foreach (var row in rows)
            {
                if (orderEventId <= row.LastOrderEventId)
                {
                    result.Add(new Change(row, false));
                    continue;
                }

                var state = TaskStatusMachine.ApplyOrderEvent(row.State, orderStatus);
                var changed = state != row.State;
                var next = row with
                {
                    Status = state.Status,
                    BusinessStatus = state.BusinessStatus,
                    LastOrderEventId = orderEventId,
                    Version = changed ? row.Version + 1 : row.Version,
                    UpdateTime = changed ? now : row.UpdateTime,
                };
                await connection.ExecuteAsync(
                    "UPDATE service_requests SET status = @Status, task_business_status = @BusinessStatus, " +
                    "last_order_event_id = @LastOrderEventId, version = @Version, update_time = @UpdateTime WHERE id = @Id",
                    Parameters(next), transaction);
                if (changed)
                {
                    await RecordChangeAsync(connection, transaction, row, next, actor, note: "", cause: orderStatus, now, cancellationToken);
                }

                result.Add(new Change(next, changed));
            }

            return (IReadOnlyList<Change>)result;
        }, cancellationToken);

    /// <summary>
    /// Applies a result report to the named service requests of one requisition (<see cref="TaskStatusMachine.ApplyResults"/>),
    /// in one transaction; every id must belong to the requisition. Returns the change of each id, and every service
    /// request of the requisition (pending ones included) in line order as the transaction left them.
    /// </summary>
    public Task<(IReadOnlyList<Change> Changes, IReadOnlyList<ServiceRequestRecord> All)> ApplyResultsAsync(
        string teamId, string requisitionId, IReadOnlyList<string> ids, bool final, string cause, string actor, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var rows = await SelectByRequisitionAsync(connection, transaction, requisitionId, forUpdate: true);
            if (rows.Count == 0 || rows[0].TeamId != teamId)
            {
                throw new NotFoundException("requisition", requisitionId);
            }

            var byId = rows.ToDictionary(r => r.Id, StringComparer.Ordinal);
            var unknown = ids.Select((id, i) => (id, i)).Where(x => !byId.ContainsKey(x.id))
                .Select(x => new FieldViolation($"service_request_ids[{x.i}]", $"'{x.id}' is not a service request of requisition '{requisitionId}'."))
                .ToList();
            if (unknown.Count > 0)
            {
                throw new InvalidArgumentException(unknown);
            }

            var now = DbTime.Now(time);
            var result = new List<Change>(ids.Count);
            foreach (var id in ids)
            {
                var row = byId[id];
                var state = TaskStatusMachine.ApplyResults(row.State, final);
                if (state == row.State)
                {
                    result.Add(new Change(row, false));
                    continue;
                }

                var next = await MoveAsync(connection, transaction, row, state, actor, note: "", cause, now, cancellationToken);
                byId[id] = next;
                result.Add(new Change(next, true));
            }

            return ((IReadOnlyList<Change>)result, (IReadOnlyList<ServiceRequestRecord>)rows.Select(r => byId[r.Id]).ToList());
        }, cancellationToken);

    /// <summary>
    /// The owner's reschedule (<see cref="TaskStatusMachine.Reschedule"/>) of every service request of the requisition,
    /// in one transaction: each one reopened gets a history entry (actor, the reason as note, cause <c>rescheduled</c>)
    /// and an event. Returns every service request of the requisition, changed or not.
    /// </summary>
    public Task<IReadOnlyList<Change>> RescheduleAsync(
        string teamId, string requisitionId, string reason, string actor, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            var rows = await SelectByRequisitionAsync(connection, transaction, requisitionId, forUpdate: true);
            if (rows.Count == 0 || rows[0].TeamId != teamId || rows.Any(r => r.Pending))
            {
                throw new NotFoundException("requisition", requisitionId);
            }

            var now = DbTime.Now(time);
            var result = new List<Change>(rows.Count);
            foreach (var row in rows)
            {
                var state = TaskStatusMachine.Reschedule(row.State);
                if (state == row.State)
                {
                    result.Add(new Change(row, false));
                    continue;
                }

                var next = await MoveAsync(connection, transaction, row, state, actor, reason, "rescheduled", now, cancellationToken);
                result.Add(new Change(next, true));
            }

            return (IReadOnlyList<Change>)result;
        }, cancellationToken);

    private async Task<Change> MutateAsync(
        string teamId, string id, string? partnerId, string? etag, string actor, string note, string cause, CancellationToken cancellationToken,
        Func<ServiceRequestRecord, ServiceRequestRecord> apply)
    {
        while (true)
        {
            var outcome = await database.WriteAsync(async (connection, transaction) =>
            {
                var row = (await connection.QuerySingleOrDefaultAsync<Row>(
                    $"SELECT {Columns} FROM service_requests WHERE id = @id AND team_id = @teamId AND pending = 0",
                    new { id, teamId }, transaction))?.ToRecord() ?? throw new NotFoundException("service request", id);
                if (partnerId is not null && row.PartnerId != partnerId)
                {
                    throw new NotFoundException("service request", id);
                }

                if (!string.IsNullOrEmpty(etag) && etag != row.Etag)
                {
                    throw new StaleEtagException("service request", id);
                }

                var applied = apply(row);
                if (applied == row)
                {
                    return new Change(row, false);
                }

                var now = DbTime.Now(time);
                var next = applied with { Version = row.Version + 1, UpdateTime = now };
                // The version guard makes a concurrent writer that read the same row lose instead of
                // overwriting: on PostgreSQL (READ COMMITTED) both may have read it.
                var updated = await connection.ExecuteAsync(
                    "UPDATE service_requests SET status = @Status, task_business_status = @BusinessStatus, " +
                    "task_description = @TaskDescription, version = @Version, update_time = @UpdateTime " +
                    "WHERE id = @Id AND version = @previous",
                    new { Status = (int)next.Status, BusinessStatus = (int)next.BusinessStatus, next.TaskDescription, next.Version, UpdateTime = DbTime.ToDb(now), next.Id, previous = row.Version },
                    transaction);
                if (updated == 0)
                {
                    return null;
                }

                await RecordChangeAsync(connection, transaction, row, next, actor, note, cause, now, cancellationToken);
                return new Change(next, true);
            }, cancellationToken);

            if (outcome is not null)
            {
                return outcome;
            }

            if (!string.IsNullOrEmpty(etag))
            {
                throw new StaleEtagException("service request", id);
            }
        }
    }

    /// <summary>Moves <paramref name="row"/> (locked by the caller's transaction) to <paramref name="state"/> as a new version, with its history entry and event.</summary>
    private static async Task<ServiceRequestRecord> MoveAsync(
        DbConnection connection, DbTransaction transaction, ServiceRequestRecord row, TaskState state,
        string actor, string note, string cause, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var next = row with { Status = state.Status, BusinessStatus = state.BusinessStatus, Version = row.Version + 1, UpdateTime = now };
        await connection.ExecuteAsync(
            "UPDATE service_requests SET status = @Status, task_business_status = @BusinessStatus, " +
            "version = @Version, update_time = @UpdateTime WHERE id = @Id",
            Parameters(next), transaction);
        await RecordChangeAsync(connection, transaction, row, next, actor, note, cause, now, cancellationToken);
        return next;
    }

    private static async Task RecordChangeAsync(
        DbConnection connection, DbTransaction transaction, ServiceRequestRecord before, ServiceRequestRecord after,
        string actor, string note, string cause, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var sequence = await connection.ExecuteScalarAsync<long>(
            "SELECT COALESCE(MAX(sequence), 0) + 1 FROM service_request_history WHERE service_request_id = @Id", new { before.Id }, transaction);
        await AddHistoryAsync(connection, transaction, after, sequence, actor, before.State, note, cause, now);
        if (before.State != after.State)
        {
            await Outbox.AddAsync(transaction, StatusChangedEvent(after, before.State, actor, now), cancellationToken);
        }
    }

    private static Task<int> AddHistoryAsync(
        DbConnection connection, DbTransaction transaction, ServiceRequestRecord after, long sequence, string actor,
        TaskState from, string note, string cause, DateTimeOffset now) =>
        connection.ExecuteAsync(
            "INSERT INTO service_request_history (service_request_id, sequence, time, actor, from_status, to_status, from_business, " +
            "to_business, note, cause) VALUES (@id, @sequence, @time, @actor, @fromStatus, @toStatus, @fromBusiness, @toBusiness, @note, @cause)",
            new
            {
                id = after.Id,
                sequence,
                time = DbTime.ToDb(now),
                actor,
                fromStatus = (int)from.Status,
                toStatus = (int)after.Status,
                fromBusiness = (int)from.BusinessStatus,
                toBusiness = (int)after.BusinessStatus,
                note,
                cause,
            },
            transaction);

    private static Event StatusChangedEvent(ServiceRequestRecord after, TaskState before, string actor, DateTimeOffset now) => new()
    {
        Type = EventTypes.ServiceRequestStatusChanged,
        CreatedAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(now),
        TeamId = after.TeamId,
        RequisitionId = after.RequisitionId,
        ServiceRequestId = after.Id,
        Source = ServiceName,
        ServiceRequestStatusChanged = new ServiceRequestStatusChanged
        {
            Status = EventWord(after.Status),
            PreviousStatus = EventWord(before.Status),
            TaskBusinessStatus = EventWord(after.BusinessStatus),
            PreviousTaskBusinessStatus = EventWord(before.BusinessStatus),
            Code = after.Code,
            Actor = actor,
        },
    };

    /// <summary>Events carry the seed's word, or "" for none.</summary>
    private static string EventWord(ServiceRequestStatus status) => status == ServiceRequestStatus.Unspecified ? "" : TaskStatusMachine.Word(status);

    private static string EventWord(TaskBusinessStatus status) => status == TaskBusinessStatus.Unspecified ? "" : TaskStatusMachine.Word(status);

    /// <summary>
    /// The requisition's service requests; with <paramref name="forUpdate"/>, locked until the transaction ends
    /// (PostgreSQL; SQLite's write transactions are serial already). A read-modify-write of several rows
    /// (an order event, a result report, a confirm) takes them so, or a concurrent one that read the same rows
    /// would overwrite its changes: READ COMMITTED lets both read the old values. Rows are locked in line order,
    /// so two such writers never wait on each other in a cycle.
    /// </summary>
    private async Task<IReadOnlyList<ServiceRequestRecord>> SelectByRequisitionAsync(
        DbConnection connection, DbTransaction transaction, string requisitionId, bool forUpdate = false)
    {
        var lockClause = forUpdate && database.Provider == StorageProvider.Postgres ? " FOR UPDATE" : "";
        var rows = await connection.QueryAsync<Row>(
            $"SELECT {Columns} FROM service_requests WHERE requisition_id = @requisitionId ORDER BY line{lockClause}",
            new { requisitionId }, transaction);
        return rows.Select(r => r.ToRecord()).ToList();
    }

    private static bool SameItems(IReadOnlyList<ServiceRequestRecord> existing, IReadOnlyList<NewServiceRequest> items) =>
        existing.Count == items.Count &&
        existing.Zip(items).All(pair => pair.First.Code == pair.Second.Code && pair.First.PartnerId == pair.Second.PartnerId &&
                                        pair.First.TaskDescription == pair.Second.TaskDescription);

    /// <summary>
    /// A record's columns as the statements bind them. Typed (not an <c>object</c>) so Dapper.AOT's generator sees its members and
    /// binds, for each statement, the ones its SQL names.
    /// </summary>
    private static RowParameters Parameters(ServiceRequestRecord r) => new(
        r.Id, r.TeamId, r.RequisitionId, r.Line, r.Code, r.TaskDescription, r.PartnerId, (int)r.Status, (int)r.BusinessStatus, r.Version,
        r.LastOrderEventId, DbTime.ToDb(r.CreateTime), DbTime.ToDb(r.UpdateTime));

    internal sealed record RowParameters(
        string Id,
        string TeamId,
        string RequisitionId,
        int Line,
        string Code,
        string TaskDescription,
        string PartnerId,
        int Status,
        int BusinessStatus,
        long Version,
        long LastOrderEventId,
        string CreateTime,
        string UpdateTime);

    internal sealed class Row
    {
        public string Id { get; set; } = "";
        public string TeamId { get; set; } = "";
        public string RequisitionId { get; set; } = "";
        public int Line { get; set; }
        public string Code { get; set; } = "";
        public string TaskDescription { get; set; } = "";
        public string PartnerId { get; set; } = "";
        public int Status { get; set; }
        public int BusinessStatus { get; set; }
        public long Version { get; set; }
        public int Pending { get; set; }
        public long LastOrderEventId { get; set; }
        public string CreateTime { get; set; } = "";
        public string UpdateTime { get; set; } = "";

        public ServiceRequestRecord ToRecord() => new(Id, TeamId, RequisitionId, Line, Code, TaskDescription, PartnerId,
            (ServiceRequestStatus)Status, (TaskBusinessStatus)BusinessStatus, Version, Pending != 0, LastOrderEventId,
            DbTime.FromDb(CreateTime), DbTime.FromDb(UpdateTime));
    }

    internal sealed class HistoryRow
    {
        public long Sequence { get; set; }
        public string Time { get; set; } = "";
        public string Actor { get; set; } = "";
        public int FromStatus { get; set; }
        public int ToStatus { get; set; }
        public int FromBusiness { get; set; }
        public int ToBusiness { get; set; }
        public string Note { get; set; } = "";
        public string Cause { get; set; } = "";
    }
}
