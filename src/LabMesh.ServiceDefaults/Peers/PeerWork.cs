using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics.Metrics;
using Dapper;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LabMesh.Contracts.Common.V1;
using LabMesh.Core.Errors;
using LabMesh.Security.Identity;
using LabMesh.Messaging.Storage;
using LabMesh.Core.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LabMesh.ServiceDefaults.Peers;

/// <summary>How background workers retry and park work a peer did not take. Section <c>LabMesh:PeerWork</c>.</summary>
public sealed class PeerWorkOptions
{
    public const string Section = "LabMesh:PeerWork";

    /// <summary>An item is parked after this many refusals (non-transient errors, <see cref="PeerErrors"/>) of the same version.</summary>
    public int ParkAfter { get; set; } = 5;

    /// <summary>The wait after a transient failure, and after a first refusal (doubling with each further refusal).</summary>
    public TimeSpan FirstBackoff { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>The longest wait between two attempts of one item.</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The most items a worker takes in one pass.</summary>
    public int BatchSize { get; set; } = 100;
}

/// <summary>An item a worker stopped trying: a person looks at it, and retries it once the cause is fixed.</summary>
/// <param name="Kind">The worker's word for what the item is (e.g. <c>order_event</c>).</param>
/// <param name="ItemId">The id of the row that carries the work (a requisition, a report).</param>
/// <param name="ItemVersion">Which version of that row's work was refused (an order event id, a report version).</param>
/// <param name="TeamId">The team the item belongs to.</param>
/// <param name="Attempts">Failed attempts of this version, transient ones included.</param>
/// <param name="Refusals">Refusals (non-transient failures) of this version.</param>
/// <param name="LastError">The last refusal's status code word (e.g. <c>NOT_FOUND</c>): never the peer's message.</param>
/// <param name="ParkedAt">When it was parked.</param>
public sealed record ParkedWork(
    string Kind, string ItemId, long ItemVersion, string TeamId, int Attempts, int Refusals, string LastError, DateTimeOffset ParkedAt);

/// <summary>
/// The attempts of work a background worker pushes to a peer, one row per item version in the store's
/// <c>peer_work</c> table: every failed attempt is counted and puts the item's next attempt off (by
/// <see cref="PeerWorkOptions.FirstBackoff"/> after a transient failure: the peer, not the item, is the problem;
/// doubling per refusal up to <see cref="PeerWorkOptions.MaxBackoff"/> otherwise), and after
/// <see cref="PeerWorkOptions.ParkAfter"/> refusals the item is parked: not tried again until
/// <see cref="RetryAsync(string, string, string, CancellationToken)"/>, with a warning log line and <c>labmesh.sync.parked</c>. A later version of the
/// item (a new order event, a new report version) is new work, tried at once. A worker selects its items
/// with <see cref="DueJoin"/>, <see cref="DueFilter"/> and <see cref="DueOrder"/>, so items backing off or
/// parked are left out of the batch and never hold back the others.
/// </summary>
public sealed partial class PeerWork(Database database, PeerWorkOptions options, TimeProvider time, ILogger<PeerWork> logger)
{
    /// <summary>Items parked, by <c>labmesh.work.kind</c>.</summary>
    public static readonly Counter<long> Parked = LabMeshTelemetry.Meter.CreateCounter<long>(
        "labmesh.sync.parked", "{item}", "Items a background worker parked after repeated refusals by a peer, by kind.");

    // Column names differ from every column of the tables a worker joins this one to, so their
    // unqualified names stay unambiguous.
    private const string Schema = """
        CREATE TABLE peer_work (
            kind TEXT NOT NULL,
            item_id TEXT NOT NULL,
            item_version BIGINT NOT NULL,
            item_team TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            refusals INTEGER NOT NULL,
            next_attempt_at TEXT NOT NULL,
            parked INTEGER NOT NULL,
            last_error TEXT NOT NULL,
            changed_at TEXT NOT NULL,
            PRIMARY KEY (kind, item_id, item_version)
        );
        CREATE INDEX ix_peer_work_parked ON peer_work (parked, item_team, kind);
        """;

    /// <summary>
    /// Keeps items out of a worker's batch while they back off or are parked: a <c>LEFT JOIN</c> of the
    /// attempts of <paramref name="kind"/> to the row whose id is <paramref name="idColumn"/> at the version
    /// <paramref name="versionColumn"/> (both qualified column names); use with <see cref="DueFilter"/>
    /// (which needs the parameter <c>@now</c>, <see cref="Now"/>) and <see cref="DueOrder"/>.
    /// </summary>
    public static string DueJoin(string kind, string idColumn, string versionColumn) =>
        kind.All(c => c is (>= 'a' and <= 'z') or '_')
            ? $" LEFT JOIN peer_work w ON w.kind = '{kind}' AND w.item_id = {idColumn} AND w.item_version = {versionColumn}"
            : throw new ArgumentException("A work kind is lower-case letters and underscores.", nameof(kind));

    /// <summary>Never tried, or neither parked nor waiting.</summary>
    public const string DueFilter = "(w.item_id IS NULL OR (w.parked = 0 AND w.next_attempt_at <= @now))";

    /// <summary>Never-tried items first, then retries by the time they were due.</summary>
    public const string DueOrder = "COALESCE(w.next_attempt_at, '')";

    private long _parked = -1;

    public PeerWorkOptions Options => options;

    /// <summary>The store's service (<c>labmesh.service</c> of <c>labmesh.sync.parked.items</c>).</summary>
    public string ServiceName => database.ServiceName;

    /// <summary>Parked items of every team as of the last <see cref="CountParkedAsync"/>; null before the first.</summary>
    public long? ParkedItems => Interlocked.Read(ref _parked) is var n && n >= 0 ? n : null;

    /// <summary>
    /// Reports <c>labmesh.sync.parked.items</c> for this store while the returned registration lives (a worker holds
    /// it while it runs, and calls <see cref="CountParkedAsync"/> after each pass).
    /// </summary>
    public IDisposable ReportParkedItems() => ParkedGauge.Register(this);

    /// <summary>Counts the parked items of every team, for <c>labmesh.sync.parked.items</c>.</summary>
    public async Task CountParkedAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var count = await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM peer_work WHERE parked = 1", new { cancellationToken });
        Interlocked.Exchange(ref _parked, count);
    }

    /// <summary>The migration creating <c>peer_work</c>, as version <paramref name="version"/> of a store.</summary>
    public static Migration Migration(int version) => new(version, "peer work: attempts, backoff and parking per item", Schema);

    /// <summary>Now, as <see cref="DueFilter"/>'s <c>@now</c>.</summary>
    public string Now() => DbTime.ToDb(time.GetUtcNow());

    /// <summary>The peer took the item at <paramref name="itemVersion"/>: its attempts, and those of earlier versions, are forgotten.</summary>
    public Task SucceededAsync(string kind, string itemId, long itemVersion, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            await SucceededAsync(connection, transaction, kind, itemId, itemVersion, cancellationToken);
            return 0;
        }, cancellationToken);

    /// <summary>
    /// As <see cref="SucceededAsync(string, string, long, CancellationToken)"/>, in the caller's transaction on this store: a
    /// worker that notes the item done in its own rows forgets the attempts in the same write.
    /// </summary>
    public static Task SucceededAsync(
        DbConnection connection, DbTransaction? transaction, string kind, string itemId, long itemVersion, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(
            "DELETE FROM peer_work WHERE kind = @kind AND item_id = @itemId AND item_version <= @itemVersion",
            new { kind, itemId, itemVersion, cancellationToken }, transaction);

    /// <summary>Counts a failed attempt and sets the next one; returns true when this refusal parked the item.</summary>
    public async Task<bool> FailedAsync(string kind, string itemId, long itemVersion, string teamId, StatusCode status, CancellationToken cancellationToken)
    {
        var transient = PeerErrors.IsTransient(status);
        var now = time.GetUtcNow();
        // In a write transaction (so, on SQLite, in the file's write gate): the count read and the row written together.
        var (parked, refusals) = await database.WriteAsync(async (connection, transaction) =>
        {
            var before = await connection.QuerySingleOrDefaultAsync<AttemptRow>(
                "SELECT attempts AS Attempts, refusals AS Refusals FROM peer_work WHERE kind = @kind AND item_id = @itemId AND item_version = @itemVersion",
                new { kind, itemId, itemVersion, cancellationToken }, transaction);
            var attempts = (before?.Attempts ?? 0) + 1;
            var refusals = (before?.Refusals ?? 0) + (transient ? 0 : 1);
            var parked = refusals >= Math.Max(1, options.ParkAfter);
            var wait = transient ? options.FirstBackoff : Backoff(refusals);
            await connection.ExecuteAsync(
                """
                INSERT INTO peer_work (kind, item_id, item_version, item_team, attempts, refusals, next_attempt_at, parked, last_error, changed_at)
                VALUES (@kind, @itemId, @itemVersion, @teamId, @attempts, @refusals, @next, @parked, @error, @now)
                ON CONFLICT (kind, item_id, item_version) DO UPDATE SET attempts = excluded.attempts, refusals = excluded.refusals,
                    next_attempt_at = excluded.next_attempt_at, parked = excluded.parked, last_error = excluded.last_error, changed_at = excluded.changed_at
                """,
                new
                {
                    kind, itemId, itemVersion, teamId, attempts, refusals, next = DbTime.ToDb(now + wait), parked = parked ? 1 : 0,
                    error = StatusWord(status), now = DbTime.ToDb(now), cancellationToken,
                }, transaction);
            return (parked, refusals);
        }, cancellationToken);
        if (parked)
        {
            Parked.Add(1, new KeyValuePair<string, object?>("labmesh.work.kind", kind));
            LogParked(logger, kind, itemId, itemVersion, refusals, StatusWord(status));
        }

        return parked;
    }

    /// <summary>The team's parked items, most recently parked first.</summary>
    public async Task<IReadOnlyList<ParkedWork>> ListParkedAsync(string teamId, int limit, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        var rows = await connection.QueryAsync<ParkedRow>(
            "SELECT kind AS Kind, item_id AS ItemId, item_version AS ItemVersion, item_team AS TeamId, attempts AS Attempts, " +
            "refusals AS Refusals, last_error AS LastError, changed_at AS ChangedAt FROM peer_work " +
            "WHERE parked = 1 AND item_team = @teamId ORDER BY changed_at DESC, kind, item_id LIMIT @limit",
            new { teamId, limit, cancellationToken });
        return rows.Select(r => new ParkedWork(r.Kind, r.ItemId, r.ItemVersion, r.TeamId, r.Attempts, r.Refusals, r.LastError,
            DbTime.FromDb(r.ChangedAt))).ToList();
    }

    /// <summary>Unparks the team's item (every parked version of it): due at once, with its refusals counted afresh. False when none is parked.</summary>
    public async Task<bool> RetryAsync(string teamId, string kind, string itemId, CancellationToken cancellationToken)
    {
        var now = Now();
        var changed = await database.WriteAsync((connection, transaction) => connection.ExecuteAsync(
            "UPDATE peer_work SET parked = 0, refusals = 0, next_attempt_at = @now, changed_at = @now " +
            "WHERE kind = @kind AND item_id = @itemId AND item_team = @teamId AND parked = 1",
            new { kind, itemId, teamId, now, cancellationToken }, transaction), cancellationToken);
        return changed > 0;
    }

    /// <summary><c>ListParkedWork</c>: the caller's team's parked items.</summary>
    public async Task<ListParkedWorkResponse> ListAsync(Caller caller, ListParkedWorkRequest request, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(request);
        var size = PageToken.Size(request.PageSize);
        var response = new ListParkedWorkResponse();
        response.ParkedWork.AddRange((await ListParkedAsync(caller.TeamId, size, cancellationToken)).Select(p => new Contracts.Common.V1.ParkedWork
        {
            Kind = p.Kind,
            ItemId = p.ItemId,
            ItemVersion = p.ItemVersion,
            Attempts = p.Attempts,
            Refusals = p.Refusals,
            LastError = p.LastError,
            ParkTime = Timestamp.FromDateTimeOffset(p.ParkedAt),
        }));
        return response;
    }

    /// <summary>
    /// <c>RetryParkedWork</c>: unparks one of the caller's team's items of one of <paramref name="kinds"/> (this service's);
    /// INVALID_ARGUMENT for another kind or no item id, NOT_FOUND when that item is not parked.
    /// </summary>
    public async Task RetryAsync(Caller caller, RetryParkedWorkRequest request, IReadOnlyCollection<string> kinds, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(kinds);
        if (!kinds.Contains(request.Kind))
        {
            throw new InvalidArgumentException("kind", $"must be one of this service's kinds: {string.Join(", ", kinds.Select(k => '"' + k + '"'))}.");
        }

        if (string.IsNullOrWhiteSpace(request.ItemId))
        {
            throw new InvalidArgumentException("item_id", "is required: the id of a parked item (ListParkedWork).");
        }

        if (!await RetryAsync(caller.TeamId, request.Kind, request.ItemId, cancellationToken))
        {
            throw new NotFoundException("parked work", request.ItemId);
        }
    }

    private TimeSpan Backoff(int refusals)
    {
        var doubled = options.FirstBackoff * Math.Pow(2, Math.Min(refusals - 1, 20));
        var capped = doubled < options.MaxBackoff ? doubled : options.MaxBackoff;
        // Up to 20% less, so replicas that failed together do not retry together.
        return capped * (0.8 + (0.2 * Random.Shared.NextDouble()));
    }

    /// <summary>UNAVAILABLE, NOT_FOUND, ...: the protocol's names.</summary>
    private static string StatusWord(StatusCode status) =>
        string.Concat(status.ToString().Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + c : c.ToString())).ToUpperInvariant();

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "Parked {Kind} {ItemId} (version {ItemVersion}) after {Refusals} refusals, the last {Status}: not tried again until an admin retries it (RetryParkedWork)")]
    private static partial void LogParked(ILogger logger, string kind, string itemId, long itemVersion, int refusals, string status);

    internal sealed class AttemptRow
    {
        public int Attempts { get; set; }
        public int Refusals { get; set; }
    }

    internal sealed class ParkedRow
    {
        public string Kind { get; set; } = "";
        public string ItemId { get; set; } = "";
        public long ItemVersion { get; set; }
        public string TeamId { get; set; } = "";
        public int Attempts { get; set; }
        public int Refusals { get; set; }
        public string LastError { get; set; } = "";
        public string ChangedAt { get; set; } = "";
    }
}

/// <summary><c>labmesh.sync.parked.items</c>: one measurement per running worker's store, by service.</summary>
internal static class ParkedGauge
{
    private static readonly ConcurrentDictionary<PeerWork, byte> Stores = new();

    static ParkedGauge() => LabMeshTelemetry.Meter.CreateObservableGauge(
        "labmesh.sync.parked.items",
        () => Stores.Keys.Where(w => w.ParkedItems is not null)
            .Select(w => new Measurement<long>(w.ParkedItems!.Value, new KeyValuePair<string, object?>("labmesh.service", w.ServiceName))),
        "{item}", "Items parked now (every team), as of the worker's last pass.");

    public static IDisposable Register(PeerWork work)
    {
        Stores[work] = 0;
        return new Registration(work);
    }

    private sealed class Registration(PeerWork work) : IDisposable
    {
        public void Dispose() => Stores.TryRemove(work, out _);
    }
}

/// <summary>Registers <see cref="PeerWork"/>.</summary>
public static class PeerWorkServiceCollectionExtensions
{
    /// <summary>
    /// A keyed singleton <see cref="PeerWork"/> (key <paramref name="serviceName"/>) on that service's store, with
    /// <see cref="PeerWorkOptions"/> from <c>LabMesh:PeerWork</c>; the store's migrations must include <see cref="PeerWork.Migration"/>.
    /// </summary>
    public static IServiceCollection AddPeerWork(this IServiceCollection services, string serviceName)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<PeerWorkOptions>().BindConfiguration(PeerWorkOptions.Section);
        services.AddKeyedSingleton(serviceName, (sp, _) => new PeerWork(
            sp.GetRequiredKeyedService<Database>(serviceName),
            sp.GetRequiredService<IOptions<PeerWorkOptions>>().Value,
            sp.GetService<TimeProvider>() ?? TimeProvider.System,
            sp.GetRequiredService<ILogger<PeerWork>>()));
        return services;
    }
}
