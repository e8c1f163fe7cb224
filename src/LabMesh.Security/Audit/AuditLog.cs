using System.Data.Common;
using System.Text;
using Dapper;
using LabMesh.Messaging.Storage;

namespace LabMesh.Security.Audit;

/// <summary>One audit record as stored (<c>audit_log</c>); the changed fields are paths joined by commas.</summary>
internal sealed class AuditRow
{
    public string Id { get; set; } = "";
    public string TeamId { get; set; } = "";
    public DateTimeOffset At { get; set; }
    public string Actor { get; set; } = "";
    public string Role { get; set; } = "";
    public string Method { get; set; } = "";
    public string TargetType { get; set; } = "";
    public string TargetId { get; set; } = "";
    public string ChangedFields { get; set; } = "";
    public string Outcome { get; set; } = AuditLog.Ok;
    public string OnBehalfOf { get; set; } = "";
}

/// <summary>What <see cref="AuditLog.QueryAsync"/> selects; null filters match anything.</summary>
internal sealed record AuditQuery(
    string? After, string? TargetType, string? TargetId, string? Actor, string? Method, DateTimeOffset? Start, DateTimeOffset? End);

/// <summary>
/// The <c>audit_log</c> table every service keeps in its own store: written by the audit
/// interceptor (through <see cref="AuditScope"/>, in the handler's own transaction when it writes),
/// read by <c>AuditService.GetAuditLog</c>. Nothing in the API updates or deletes a record; the
/// interceptor itself only fills in a create's target id and the outcome of a call that failed
/// after it had committed.
/// </summary>
public static class AuditLog
{
    internal const string Ok = "OK";

    private const string Columns =
        "id AS Id, team_id AS TeamId, at AS At, actor AS Actor, role AS Role, method AS Method, target_type AS TargetType, " +
        "target_id AS TargetId, changed_fields AS ChangedFields, outcome AS Outcome, on_behalf_of AS OnBehalfOf";

    private const string Schema = """
        CREATE TABLE audit_log (
            id TEXT PRIMARY KEY,
            team_id TEXT NOT NULL,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            role TEXT NOT NULL,
            method TEXT NOT NULL,
            target_type TEXT NOT NULL,
            target_id TEXT NOT NULL,
            changed_fields TEXT NOT NULL,
            outcome TEXT NOT NULL,
            on_behalf_of TEXT NOT NULL
        );
        CREATE INDEX ix_audit_team ON audit_log (team_id, id);
        CREATE INDEX ix_audit_target ON audit_log (team_id, target_type, target_id, id);
        """;

    /// <summary>
    /// The step that creates the <c>audit_log</c> table; every service puts it in its own migration
    /// list under a version of its choosing (as with the outbox).
    /// </summary>
    public static Migration Migration(int version) => new(version, "audit log", Schema);

    /// <summary>Inserts <paramref name="row"/> in <paramref name="transaction"/>.</summary>
    internal static Task InsertAsync(DbConnection connection, DbTransaction? transaction, AuditRow row, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(
            """
            INSERT INTO audit_log (id, team_id, at, actor, role, method, target_type, target_id, changed_fields, outcome, on_behalf_of)
            VALUES (@id, @team, @at, @actor, @role, @method, @targettype, @targetid, @changed, @outcome, @onbehalfof)
            """,
            new
            {
                id = row.Id, team = row.TeamId, at = DbTime.ToDb(row.At), actor = row.Actor, role = row.Role, method = row.Method,
                targettype = row.TargetType, targetid = row.TargetId, changed = row.ChangedFields, outcome = row.Outcome,
                onbehalfof = row.OnBehalfOf, cancellationToken,
            },
            transaction);

    /// <summary>Records a call that committed nothing on its store inside the call, in a transaction of its own.</summary>
    internal static Task RecordAsync(Database database, AuditRow row) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            await InsertAsync(connection, transaction, row, CancellationToken.None);
            return 0;
        }, CancellationToken.None);

    /// <summary>
    /// For a create (a method whose target id is in its response): names the id the call in progress is creating on
    /// <paramref name="storeName"/>, before the write transaction that creates it commits, so its audit record is
    /// written with the id in that transaction instead of being completed by a second write after the call.
    /// Nothing happens outside such a call or once its record is written.
    /// </summary>
    public static void NameCreated(string storeName, string id)
    {
        if (AuditScope.Current is { } scope && scope.Store == storeName)
        {
            scope.NameTarget(id);
        }
    }

    /// <summary>Fills in the target id of a create, known only from its response.</summary>
    internal static Task SetTargetAsync(Database database, string id, string targetId) =>
        database.WriteAsync((connection, transaction) => connection.ExecuteAsync(
            "UPDATE audit_log SET target_id = @targetid WHERE id = @id", new { id, targetid = targetId }, transaction), CancellationToken.None);

    /// <summary>Marks a call that failed after it had committed part of its change.</summary>
    internal static Task SetOutcomeAsync(Database database, string id, string outcome) =>
        database.WriteAsync((connection, transaction) => connection.ExecuteAsync(
            "UPDATE audit_log SET outcome = @outcome WHERE id = @id", new { id, outcome }, transaction), CancellationToken.None);

    /// <summary>The team's records that match <paramref name="query"/>, newest first, at most <paramref name="limit"/>.</summary>
    internal static async Task<IReadOnlyList<AuditRow>> QueryAsync(
        Database database, string teamId, AuditQuery query, int limit, CancellationToken cancellationToken)
    {
        // Only the filters given: each is an equality or a range the indexes can use.
        var sql = new StringBuilder($"SELECT {Columns} FROM audit_log WHERE team_id = @Team");
        var parameters = new QueryParameters(teamId, limit, query.After, query.TargetType, query.TargetId, query.Actor, query.Method,
            query.Start is { } start ? DbTime.ToDb(start) : null, query.End is { } end ? DbTime.ToDb(end) : null);
        void Filter(string condition, object? value)
        {
            if (value is not null)
            {
                sql.Append(" AND ").Append(condition);
            }
        }

        Filter("id < @After", parameters.After);
        Filter("target_type = @TargetType", parameters.TargetType);
        Filter("target_id = @TargetId", parameters.TargetId);
        Filter("(actor = @Actor OR on_behalf_of = @Actor)", parameters.Actor);
        Filter("method = @Method", parameters.Method);
        Filter("at >= @Start", parameters.Start);
        Filter("at < @End", parameters.End);
        sql.Append(" ORDER BY id DESC LIMIT @Limit");

        await using var connection = await database.OpenAsync(cancellationToken);
        cancellationToken.ThrowIfCancellationRequested();
        var rows = await connection.QueryAsync<StoredRow>(sql.ToString(), parameters);
        return [.. rows.Select(r => r.ToRow())];
    }

    /// <summary>
    /// The parameters of <see cref="QueryAsync"/>'s statement, typed for Dapper.AOT; a filter not given is null and not named by the
    /// statement's text. No cancellation token among them: Dapper.AOT 1.1.0 generates code that does not compile (CS0103) for a
    /// token beside a statement text built at run time, so the call's token is checked before the read (bounded by its limit).
    /// </summary>
    internal sealed record QueryParameters(
        string Team, int Limit, string? After, string? TargetType, string? TargetId, string? Actor, string? Method, string? Start, string? End);

    /// <summary>A row as read: the time is text in the store.</summary>
    internal sealed class StoredRow
    {
        public string Id { get; set; } = "";
        public string TeamId { get; set; } = "";
        public string At { get; set; } = "";
        public string Actor { get; set; } = "";
        public string Role { get; set; } = "";
        public string Method { get; set; } = "";
        public string TargetType { get; set; } = "";
        public string TargetId { get; set; } = "";
        public string ChangedFields { get; set; } = "";
        public string Outcome { get; set; } = "";
        public string OnBehalfOf { get; set; } = "";

        public AuditRow ToRow() => new()
        {
            Id = Id, TeamId = TeamId, At = DbTime.FromDb(At), Actor = Actor, Role = Role, Method = Method,
            TargetType = TargetType, TargetId = TargetId, ChangedFields = ChangedFields, Outcome = Outcome, OnBehalfOf = OnBehalfOf,
        };
    }
}
