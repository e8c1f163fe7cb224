using System.Collections.Concurrent;

namespace LabMesh.Messaging.Caching;

/// <summary>
/// <see cref="IStatusCache"/> inside the process, for the all-in-one host: the same rules as the Redis
/// cache (a write lands only when its version is newer than the live entry's; entries expire a TTL after
/// their last write) without a server. Expired entries are swept at most once a minute, during writes.
/// </summary>
public sealed class InMemoryStatusCache : IStatusCache
{
    private static readonly TimeSpan SweepInterval = TimeSpan.FromMinutes(1);

    private readonly ConcurrentDictionary<(string Kind, string Id), Entry> _entries = new();
    private readonly TimeSpan _ttl;
    private readonly TimeProvider _time;
    private long _nextSweepTimestamp;

    /// <param name="ttl">How long an entry lives after its last write.</param>
    /// <param name="timeProvider">The clock; <see cref="TimeProvider.System"/> when null.</param>
    public InMemoryStatusCache(TimeSpan ttl, TimeProvider? timeProvider = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ttl, TimeSpan.Zero);
        _ttl = ttl;
        _time = timeProvider ?? TimeProvider.System;
        _nextSweepTimestamp = _time.GetTimestamp();
    }

    /// <inheritdoc/>
    public Task SetAsync(string kind, string id, long version, ReadOnlyMemory<byte> value, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(kind);
        ArgumentException.ThrowIfNullOrEmpty(id);
        ArgumentOutOfRangeException.ThrowIfNegative(version);
        cancellationToken.ThrowIfCancellationRequested();

        var now = _time.GetTimestamp();
        var expires = now + (long)(_ttl.TotalSeconds * _time.TimestampFrequency);
        var entry = new Entry(version, value.ToArray(), expires);
        _entries.AddOrUpdate(
            (kind, id),
            static (_, state) => state.Entry,
            static (_, current, state) => current.ExpiresAt <= state.Now || state.Entry.Version > current.Version ? state.Entry : current,
            (Entry: entry, Now: now));

        SweepIfDue(now);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task WriteNowAsync(string kind, string id, long version, ReadOnlyMemory<byte> value, CancellationToken cancellationToken) =>
        SetAsync(kind, id, version, value, cancellationToken);

    /// <inheritdoc/>
    public Task<IReadOnlyList<byte[]?>> GetManyAsync(string kind, IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var now = _time.GetTimestamp();
        var result = new byte[]?[ids.Count];
        for (var i = 0; i < result.Length; i++)
        {
            if (_entries.TryGetValue((kind, ids[i]), out var entry) && entry.ExpiresAt > now)
            {
                // A copy, as Redis would hand out: a caller changing it must not change the cache.
                result[i] = (byte[])entry.Value.Clone();
            }
        }

        return Task.FromResult<IReadOnlyList<byte[]?>>(result);
    }

    private void SweepIfDue(long now)
    {
        var due = Interlocked.Read(ref _nextSweepTimestamp);
        var next = now + (long)(SweepInterval.TotalSeconds * _time.TimestampFrequency);
        if (now < due || Interlocked.CompareExchange(ref _nextSweepTimestamp, next, due) != due)
        {
            return;
        }

        foreach (var pair in _entries)
        {
            if (pair.Value.ExpiresAt <= now)
            {
                // Removes only the expired entry seen here, never a fresh write that replaced it.
                _entries.TryRemove(pair);
            }
        }
    }

    private sealed class Entry(long version, byte[] value, long expiresAt)
    {
        public long Version { get; } = version;

        public byte[] Value { get; } = value;

        public long ExpiresAt { get; } = expiresAt;
    }
}
