namespace LabMesh.Messaging.Caching;

/// <summary>
/// The status cache (Redis <c>labmesh:status:{kind}:{id}</c> when configured, in-process otherwise).
/// Writes are versioned: a write whose version is not newer than the cached one changes nothing,
/// so concurrent writers and late repeats never put an older status back. Cache trouble never
/// fails a caller: writes that cannot reach Redis are kept and written again when it returns,
/// reads that cannot reach it are misses (the caller reads its store).
/// </summary>
public interface IStatusCache
{
    /// <summary>Writes <paramref name="value"/> for (<paramref name="kind"/>, <paramref name="id"/>) if <paramref name="version"/> is newer than the cached one.</summary>
    Task SetAsync(string kind, string id, long version, ReadOnlyMemory<byte> value, CancellationToken cancellationToken);

    /// <summary>
    /// <see cref="SetAsync"/> that reports trouble instead of keeping the write for later: it throws when the
    /// cache cannot take the write now. For the outbox path (<see cref="Events.IOutboxPublishedListener"/>),
    /// which keeps its rows and tries again, so a status change reaches the cache even if this process dies.
    /// </summary>
    Task WriteNowAsync(string kind, string id, long version, ReadOnlyMemory<byte> value, CancellationToken cancellationToken);

    /// <summary>The cached values of <paramref name="ids"/> in one round trip, in order; null for a miss.</summary>
    Task<IReadOnlyList<byte[]?>> GetManyAsync(string kind, IReadOnlyList<string> ids, CancellationToken cancellationToken);
}
