using System.Collections.Concurrent;
using LabMesh.Messaging.Redis;
using Microsoft.Extensions.Logging;

namespace LabMesh.Messaging.Caching;

/// <summary>
/// <see cref="IStatusCache"/> in Redis: one string per status at <c>labmesh:status:{kind}:{id}</c>
/// holding <c>{version}:{bytes}</c>, written only when newer, read in one MGET. A write Redis cannot
/// take is kept in memory (the latest version per key, up to <see cref="RedisOptions.MaxPendingStatusWrites"/>
/// keys) and written again when the connection is restored, and every second until it succeeds, so
/// the cache heals after an outage; a write dropped at that bound is logged, and its key may show an
/// older status until it expires. Writes kept in memory die with the process: what makes a status change
/// durable is the outbox path (<see cref="WriteNowAsync"/> from an <see cref="Events.IOutboxPublishedListener"/>).
/// </summary>
public sealed partial class RedisStatusCache : IStatusCache, IAsyncDisposable, IDisposable
{
    private const string KeyPrefix = "labmesh:status:";
    private const int FlushBatchSize = 256;
    private static readonly TimeSpan RetryInterval = TimeSpan.FromSeconds(1);

    private readonly RedisConnection _redis;
    private readonly TimeSpan _ttl;
    private readonly int _maxPending;
    private readonly ILogger _logger;
    private readonly ConcurrentDictionary<string, PendingWrite> _pending = new(StringComparer.Ordinal);
    private readonly SemaphoreSlim _flushGate = new(1, 1);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _retryLoop;
    private int _pendingCount;
    private long _dropped;
    private int _writeOutageLogged;
    private int _readOutageLogged;
    private int _disposed;

    public RedisStatusCache(RedisConnection redis, ILogger<RedisStatusCache> logger)
    {
        _redis = redis;
        _ttl = redis.Options.StatusTtl;
        _maxPending = redis.Options.MaxPendingStatusWrites;
        _logger = logger;
        _redis.ConnectionRestored += OnConnectionRestored;
        _retryLoop = RetryLoopAsync(_stopping.Token);
    }

    /// <summary>Writes waiting for Redis to come back.</summary>
    internal int PendingWriteCount => Volatile.Read(ref _pendingCount);

    /// <inheritdoc/>
    public async Task SetAsync(string kind, string id, long version, ReadOnlyMemory<byte> value, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(version);
        var key = Key(kind, id);
        if (!_redis.IsConnected)
        {
            Defer(key, version, value.ToArray(), null);
            return;
        }

        try
        {
            await _redis.SetVersionedAsync(key, version, value, _ttl, cancellationToken);
        }
        catch (RedisUnavailableException ex)
        {
            Defer(key, version, value.ToArray(), ex);
            return;
        }
        catch (OperationCanceledException)
        {
            // The write may or may not have landed; writing it again later is harmless (versioned)
            // and keeps the cache from holding an older status than the caller's store.
            Defer(key, version, value.ToArray(), null);
            throw;
        }

        ForgetUpTo(key, version);
    }

    /// <inheritdoc/>
    /// <exception cref="RedisUnavailableException">Redis could not take the write.</exception>
    public async Task WriteNowAsync(string kind, string id, long version, ReadOnlyMemory<byte> value, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(version);
        var key = Key(kind, id);
        await _redis.SetVersionedAsync(key, version, value, _ttl, cancellationToken);
        ForgetUpTo(key, version);
    }

    /// <inheritdoc/>
    public async Task<IReadOnlyList<byte[]?>> GetManyAsync(string kind, IReadOnlyList<string> ids, CancellationToken cancellationToken)
    {
        if (ids.Count == 0)
        {
            return [];
        }

        var keys = new string[ids.Count];
        for (var i = 0; i < keys.Length; i++)
        {
            keys[i] = Key(kind, ids[i]);
        }

        var result = new byte[]?[keys.Length];
        if (!_redis.IsConnected)
        {
            return result;
        }

        IReadOnlyList<VersionedValue?> values;
        try
        {
            values = await _redis.GetVersionedManyAsync(keys, cancellationToken);
            Volatile.Write(ref _readOutageLogged, 0);
        }
        catch (RedisUnavailableException ex)
        {
            if (Interlocked.Exchange(ref _readOutageLogged, 1) == 0)
            {
                LogReadsFailing(_logger, ex);
            }

            return result;
        }

        var checkPending = Volatile.Read(ref _pendingCount) > 0;
        for (var i = 0; i < keys.Length; i++)
        {
            if (values[i] is not { } stored)
            {
                continue;
            }

            // A newer status still waiting to be written: a miss sends the caller to its store.
            if (checkPending && _pending.TryGetValue(keys[i], out var pending) && pending.Version > stored.Version)
            {
                continue;
            }

            result[i] = stored.Value;
        }

        return result;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _redis.ConnectionRestored -= OnConnectionRestored;
        _stopping.Cancel();
        var pending = Volatile.Read(ref _pendingCount);
        if (pending > 0)
        {
            LogDisposedWithPending(_logger, pending);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Dispose();
        await _retryLoop;
    }

    private static string Key(string kind, string id)
    {
        ArgumentException.ThrowIfNullOrEmpty(kind);
        ArgumentException.ThrowIfNullOrEmpty(id);
        if (kind.Contains(':', StringComparison.Ordinal))
        {
            throw new ArgumentException("A status kind contains no ':'.", nameof(kind));
        }

        return KeyPrefix + kind + ":" + id;
    }

    private void Defer(string key, long version, byte[] value, Exception? exception)
    {
        while (true)
        {
            if (_pending.TryGetValue(key, out var current))
            {
                if (current.Version >= version || _pending.TryUpdate(key, new PendingWrite(version, value), current))
                {
                    break;
                }
            }
            else
            {
                if (Volatile.Read(ref _pendingCount) >= _maxPending)
                {
                    if (Interlocked.Increment(ref _dropped) == 1)
                    {
                        LogPendingFull(_logger, _maxPending);
                    }

                    return;
                }

                if (_pending.TryAdd(key, new PendingWrite(version, value)))
                {
                    Interlocked.Increment(ref _pendingCount);
                    break;
                }
            }
        }

        if (Interlocked.Exchange(ref _writeOutageLogged, 1) == 0)
        {
            LogWritesDeferred(_logger, exception);
        }
    }

    private void ForgetUpTo(string key, long version)
    {
        if (Volatile.Read(ref _pendingCount) == 0)
        {
            return;
        }

        while (_pending.TryGetValue(key, out var pending) && pending.Version <= version)
        {
            if (_pending.TryRemove(KeyValuePair.Create(key, pending)))
            {
                Interlocked.Decrement(ref _pendingCount);
                break;
            }
        }
    }

    private void OnConnectionRestored(object? sender, EventArgs e) => _ = FlushAsync(_stopping.Token);

    private async Task RetryLoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(RetryInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(cancellationToken))
            {
                await FlushAsync(cancellationToken);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Disposed.
        }
    }

    private async Task FlushAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _pendingCount) == 0 || !_redis.IsConnected || cancellationToken.IsCancellationRequested)
        {
            return;
        }

        if (!_flushGate.Wait(0, CancellationToken.None))
        {
            return;
        }

        try
        {
            var written = 0;
            foreach (var batch in _pending.ToArray().Chunk(FlushBatchSize))
            {
                await Task.WhenAll(batch.Select(entry => WritePendingAsync(entry.Key, entry.Value, cancellationToken)));
                written += batch.Length;
            }

            var dropped = Interlocked.Exchange(ref _dropped, 0);
            if (dropped > 0)
            {
                LogPendingWrittenAfterDrops(_logger, written, dropped);
            }
            else
            {
                LogPendingWritten(_logger, written);
            }

            if (Volatile.Read(ref _pendingCount) == 0)
            {
                Volatile.Write(ref _writeOutageLogged, 0);
            }
        }
        catch (RedisUnavailableException ex)
        {
            LogFlushFailed(_logger, PendingWriteCount, ex);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Disposed.
        }
        catch (Exception ex)
        {
            LogFlushCrashed(_logger, ex);
        }
        finally
        {
            _flushGate.Release();
        }
    }

    private async Task WritePendingAsync(string key, PendingWrite write, CancellationToken cancellationToken)
    {
        await _redis.SetVersionedAsync(key, write.Version, write.Value, _ttl, cancellationToken);
        if (_pending.TryRemove(KeyValuePair.Create(key, write)))
        {
            Interlocked.Decrement(ref _pendingCount);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Status cache: Redis cannot take writes; keeping them in memory to write when it returns")]
    private static partial void LogWritesDeferred(ILogger logger, Exception? exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Status cache: Redis cannot serve reads; answering misses until it returns")]
    private static partial void LogReadsFailing(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Status cache: {Limit} writes already wait for Redis; dropping further writes (their keys may show an older status until it expires)")]
    private static partial void LogPendingFull(ILogger logger, int limit);

    [LoggerMessage(Level = LogLevel.Information, Message = "Status cache: wrote {Count} deferred writes to Redis")]
    private static partial void LogPendingWritten(ILogger logger, int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Status cache: wrote {Count} deferred writes to Redis; {Dropped} writes were dropped during the outage and their keys may show an older status until it expires")]
    private static partial void LogPendingWrittenAfterDrops(ILogger logger, int count, long dropped);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Status cache: writing {Count} deferred writes failed; retrying")]
    private static partial void LogFlushFailed(ILogger logger, int count, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Status cache: writing deferred writes failed unexpectedly; retrying")]
    private static partial void LogFlushCrashed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Status cache: stopped with {Count} writes never written to Redis")]
    private static partial void LogDisposedWithPending(ILogger logger, int count);

    // A class, not a record: removal compares by reference, so a newer write to the same key survives
    // the removal of the one it replaced.
    private sealed class PendingWrite(long version, byte[] value)
    {
        public long Version { get; } = version;

        public byte[] Value { get; } = value;
    }
}
