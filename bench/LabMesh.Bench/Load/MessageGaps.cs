using System.Diagnostics;

namespace LabMesh.Bench.Load;

/// <summary>
/// Per-message latency of server-streaming calls, as a consumer of each stream sees it: for every
/// message, the time since the previous message of the same call (for the first, since the call
/// started). Each worker records into its own histogram, so recording takes no lock; a stream's
/// messages that arrive in one read are a gap of almost nothing apart, for either client.
/// </summary>
internal sealed class MessageGaps
{
    private readonly Clock[] _clocks;
    private volatile bool _recording;

    public MessageGaps(int workers) => _clocks = [.. Enumerable.Range(0, workers).Select(_ => new Clock(this))];

    /// <summary>Whether gaps are being counted (the measured window only).</summary>
    public bool Recording
    {
        get => _recording;
        set => _recording = value;
    }

    public Clock ForWorker(int worker) => _clocks[worker];

    /// <summary>p50 and p99 in milliseconds over every worker's gaps.</summary>
    public (double P50Ms, double P99Ms) Percentiles()
    {
        var total = new LogHistogram();
        foreach (var clock in _clocks)
        {
            total.Add(clock.Histogram);
        }
        return (total.Percentile(0.50) * 1000.0 / Stopwatch.Frequency, total.Percentile(0.99) * 1000.0 / Stopwatch.Frequency);
    }

    /// <summary>One worker's clock: one call at a time.</summary>
    internal sealed class Clock(MessageGaps owner)
    {
        private long _last;

        public LogHistogram Histogram { get; } = new();

        public void CallStarted() => _last = Stopwatch.GetTimestamp();

        public void MessageReceived()
        {
            var now = Stopwatch.GetTimestamp();
            if (owner._recording)
            {
                Histogram.Record(now - _last);
            }
            _last = now;
        }
    }
}

/// <summary>
/// Counts of non-negative values in buckets of about 3% width (32 per power of two), so that millions
/// of latencies fit in 15 KB and a percentile is read to within that width.
/// </summary>
internal sealed class LogHistogram
{
    private const int SubBits = 5;
    private const int SubBuckets = 1 << SubBits;
    private readonly long[] _counts = new long[(64 - SubBits) * SubBuckets];

    public long Count { get; private set; }

    public void Record(long value)
    {
        _counts[Index(Math.Max(0, value))]++;
        Count++;
    }

    public void Add(LogHistogram other)
    {
        for (var i = 0; i < _counts.Length; i++)
        {
            _counts[i] += other._counts[i];
        }
        Count += other.Count;
    }

    /// <summary>The middle of the bucket holding the nearest-rank percentile; NaN when empty.</summary>
    public double Percentile(double p)
    {
        if (Count == 0)
        {
            return double.NaN;
        }
        var rank = Math.Max(1, (long)Math.Ceiling(p * Count));
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                var (low, width) = Bounds(i);
                return low + (width - 1) / 2.0;
            }
        }
        throw new InvalidOperationException("The counts do not add up.");
    }

    // Values below 32 get a bucket each; above, a power of two 2^e is split into 32 buckets of 2^(e-5).
    private static int Index(long value)
    {
        if (value < SubBuckets)
        {
            return (int)value;
        }
        var exponent = 63 - (int)long.LeadingZeroCount(value);
        var sub = (int)(value >> (exponent - SubBits)) & (SubBuckets - 1);
        return (exponent - SubBits + 1) * SubBuckets + sub;
    }

    private static (long Low, long Width) Bounds(int index)
    {
        if (index < SubBuckets)
        {
            return (index, 1);
        }
        var exponent = index / SubBuckets + SubBits - 1;
        var width = 1L << (exponent - SubBits);
        return ((SubBuckets + index % SubBuckets) * width, width);
    }
}
