using System.Collections.Concurrent;
using LabMesh.Messaging.Redis;
using Microsoft.Extensions.Options;

namespace LabMesh.Security.Limits;

/// <summary>
/// The per-caller state behind <see cref="RateLimitInterceptor"/>: a token bucket per caller
/// (<see cref="LimitsOptions.PermitsPerSecond"/>, <see cref="LimitsOptions.Burst"/>) and a count of its
/// open streams (<see cref="LimitsOptions.MaxStreamsPerCaller"/>). With Redis, the bucket is one per
/// caller for every replica (<c>labmesh:limit:{team}\n{subject}</c>, one round trip per call); while Redis
/// cannot be reached, and without Redis, each process keeps its own bucket, so N replicas admit up to N
/// times the rate then. Stream slots are always per process.
/// </summary>
public sealed class CallerLimiter
{
    // Past this many callers, buckets that have refilled completely are dropped (a new one starts full,
    // so dropping them changes nothing): callers that come and go cannot grow the table without bound.
    private const int SweepAbove = 10_000;

    private readonly ConcurrentDictionary<string, Bucket> _buckets = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _streams = new(StringComparer.Ordinal);
    private readonly LimitsOptions _options;
    private readonly TimeProvider _time;
    private int _sweeping;

    // The table's size, kept here: ConcurrentDictionary.Count takes every lock of the table, on every call.
    private int _count;

    private const string SharedKeyPrefix = "labmesh:limit:";

    private readonly RedisConnection? _redis;

    /// <param name="options">The limits.</param>
    /// <param name="time">The clock of the per-process buckets.</param>
    /// <param name="redis">Where the shared buckets live; null: per-process buckets only.</param>
    public CallerLimiter(IOptions<LimitsOptions> options, TimeProvider time, RedisConnection? redis = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options.Value;
        _options.Validate();
        _time = time;
        _redis = redis;
    }

    /// <summary>The settings in force.</summary>
    public LimitsOptions Options => _options;

    /// <summary>How many callers have a bucket now (buckets refilled to the burst are dropped past 10,000).</summary>
    public int TrackedCallers => Volatile.Read(ref _count);

    /// <summary>
    /// Takes a permit for one call of <paramref name="caller"/> from the bucket it shares with every replica
    /// (Redis), or from this process's bucket while Redis cannot be reached or is not configured.
    /// </summary>
    /// <returns>Whether the call may go ahead, and when not, how long until the next permit.</returns>
    public async ValueTask<(bool Granted, TimeSpan RetryAfter)> AcquireAsync(string caller, CancellationToken cancellationToken)
    {
        if (_options.PermitsPerSecond > 0 && _redis is { IsConnected: true } redis)
        {
            try
            {
                return await redis.TakeTokenAsync(SharedKeyPrefix + caller, _options.PermitsPerSecond, _options.Burst, cancellationToken);
            }
            catch (RedisUnavailableException)
            {
                // The outage is logged and measured by the connection; this call counts against this replica.
            }
        }

        var granted = TryAcquire(caller, out var retryAfter);
        return (granted, retryAfter);
    }

    /// <summary>
    /// Takes a permit for one call of <paramref name="caller"/> from this process's bucket. False when it
    /// is empty, with how long until the next permit in <paramref name="retryAfter"/>.
    /// </summary>
    public bool TryAcquire(string caller, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        if (_options.PermitsPerSecond <= 0)
        {
            return true;
        }

        var now = _time.GetTimestamp();
        if (!_buckets.TryGetValue(caller, out var bucket))
        {
            var fresh = new Bucket(_options.Burst, now);
            bucket = _buckets.GetOrAdd(caller, fresh);
            // Only a caller new to the table can grow it past the bound, so only then is a sweep due.
            if (ReferenceEquals(bucket, fresh) && Interlocked.Increment(ref _count) > SweepAbove)
            {
                Sweep(now);
            }
        }

        bool granted;
        lock (bucket)
        {
            var elapsed = _time.GetElapsedTime(bucket.Updated, now).TotalSeconds;
            bucket.Tokens = Math.Min(_options.Burst, bucket.Tokens + Math.Max(0, elapsed) * _options.PermitsPerSecond);
            bucket.Updated = now;
            granted = bucket.Tokens >= 1;
            if (granted)
            {
                bucket.Tokens -= 1;
            }
            else
            {
                retryAfter = TimeSpan.FromSeconds((1 - bucket.Tokens) / _options.PermitsPerSecond);
            }
        }

        return granted;
    }

    /// <summary>
    /// Holds one stream slot of <paramref name="caller"/> until the returned handle is disposed; null when
    /// the caller already holds <see cref="LimitsOptions.MaxStreamsPerCaller"/> streams.
    /// </summary>
    public IDisposable? TryOpenStream(string caller)
    {
        if (_options.MaxStreamsPerCaller <= 0)
        {
            return NoSlot.Instance;
        }

        lock (_streams)
        {
            _streams.TryGetValue(caller, out var open);
            if (open >= _options.MaxStreamsPerCaller)
            {
                return null;
            }

            _streams[caller] = open + 1;
        }

        return new StreamSlot(this, caller);
    }

    /// <summary>The streams <paramref name="caller"/> holds open now.</summary>
    public int OpenStreams(string caller)
    {
        lock (_streams)
        {
            return _streams.TryGetValue(caller, out var open) ? open : 0;
        }
    }

    private void CloseStream(string caller)
    {
        lock (_streams)
        {
            if (_streams.TryGetValue(caller, out var open))
            {
                if (open <= 1)
                {
                    _streams.Remove(caller);
                }
                else
                {
                    _streams[caller] = open - 1;
                }
            }
        }
    }

    private void Sweep(long now)
    {
        if (Interlocked.Exchange(ref _sweeping, 1) != 0)
        {
            return;
        }

        try
        {
            var refill = TimeSpan.FromSeconds(_options.Burst / _options.PermitsPerSecond);
            foreach (var (caller, bucket) in _buckets)
            {
                bool full;
                lock (bucket)
                {
                    full = _time.GetElapsedTime(bucket.Updated, now) >= refill;
                }

                if (full && _buckets.TryRemove(caller, out _))
                {
                    Interlocked.Decrement(ref _count);
                }
            }
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0);
        }
    }

    private sealed class Bucket(double tokens, long updated)
    {
        public double Tokens { get; set; } = tokens;

        public long Updated { get; set; } = updated;
    }

    private sealed class StreamSlot(CallerLimiter owner, string caller) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner.CloseStream(caller);
            }
        }
    }

    private sealed class NoSlot : IDisposable
    {
        public static readonly NoSlot Instance = new();

        public void Dispose()
        {
        }
    }
}
