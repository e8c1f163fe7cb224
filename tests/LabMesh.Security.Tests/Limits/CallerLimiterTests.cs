using LabMesh.Security.Limits;
using Microsoft.Extensions.Options;

namespace LabMesh.Security.Tests.Limits;

public sealed class CallerLimiterTests
{
    [Fact]
    public void TryAcquire_BurstThenEmpty_RefillsAtTheRate()
    {
        var time = new ManualTime();
        var limiter = Limiter(time, permitsPerSecond: 4, burst: 3);

        Assert.True(limiter.TryAcquire("team\nann", out _));
        Assert.True(limiter.TryAcquire("team\nann", out _));
        Assert.True(limiter.TryAcquire("team\nann", out _));
        Assert.False(limiter.TryAcquire("team\nann", out var retryAfter));
        Assert.Equal(TimeSpan.FromMilliseconds(250), retryAfter);

        time.Advance(TimeSpan.FromMilliseconds(249));
        Assert.False(limiter.TryAcquire("team\nann", out retryAfter));
        Assert.InRange(retryAfter, TimeSpan.Zero, TimeSpan.FromMilliseconds(2));
        time.Advance(TimeSpan.FromMilliseconds(2));
        Assert.True(limiter.TryAcquire("team\nann", out _));

        // A long idle refills to the burst, never beyond it.
        time.Advance(TimeSpan.FromHours(1));
        for (var i = 0; i < 3; i++)
        {
            Assert.True(limiter.TryAcquire("team\nann", out _));
        }

        Assert.False(limiter.TryAcquire("team\nann", out _));
    }

    [Fact]
    public void TryAcquire_ManyCallers_RefilledBucketsAreDropped_SoTheTableStaysBounded()
    {
        var time = new ManualTime();
        var limiter = Limiter(time, permitsPerSecond: 10, burst: 10);
        for (var i = 0; i < 10_000; i++)
        {
            Assert.True(limiter.TryAcquire("team\ncaller-" + i, out _));
        }

        time.Advance(TimeSpan.FromMilliseconds(500));
        Assert.True(limiter.TryAcquire("team\ncaller-0", out _));
        Assert.Equal(10_000, limiter.TrackedCallers);

        // One second after their call the others' buckets are full again (10 at 10/s); the next new caller sweeps them.
        time.Advance(TimeSpan.FromMilliseconds(500));
        Assert.True(limiter.TryAcquire("team\nnewcomer", out _));

        // Left: the newcomer and caller-0, whose bucket is still refilling.
        Assert.Equal(2, limiter.TrackedCallers);
    }

    [Fact]
    public void TryAcquire_IsPerCaller()
    {
        var limiter = Limiter(new ManualTime(), permitsPerSecond: 1, burst: 1);

        Assert.True(limiter.TryAcquire("team\nann", out _));
        Assert.False(limiter.TryAcquire("team\nann", out _));
        Assert.True(limiter.TryAcquire("team\nbob", out _));
        Assert.True(limiter.TryAcquire("other\nann", out _));
    }

    [Fact]
    public void TryAcquire_ZeroRate_NeverLimits()
    {
        var limiter = Limiter(new ManualTime(), permitsPerSecond: 0, burst: 1);

        for (var i = 0; i < 1_000; i++)
        {
            Assert.True(limiter.TryAcquire("team\nann", out _));
        }
    }

    [Fact]
    public void TryOpenStream_BoundPerCaller_FreedOnceOnDispose()
    {
        var limiter = Limiter(new ManualTime(), permitsPerSecond: 0, burst: 1, maxStreams: 2);

        var first = limiter.TryOpenStream("team\nann");
        var second = limiter.TryOpenStream("team\nann");
        Assert.NotNull(first);
        Assert.NotNull(second);
        Assert.Null(limiter.TryOpenStream("team\nann"));
        Assert.NotNull(limiter.TryOpenStream("team\nbob"));

        first!.Dispose();
        first.Dispose();
        Assert.Equal(1, limiter.OpenStreams("team\nann"));
        var third = limiter.TryOpenStream("team\nann");
        Assert.NotNull(third);
        Assert.Null(limiter.TryOpenStream("team\nann"));
        second!.Dispose();
        third!.Dispose();
        Assert.Equal(0, limiter.OpenStreams("team\nann"));
    }

    [Theory]
    [InlineData(-1, 10, 1, 4096, "PermitsPerSecond")]
    [InlineData(double.NaN, 10, 1, 4096, "PermitsPerSecond")]
    [InlineData(1, 0, 1, 4096, "Burst")]
    [InlineData(1, 10, -1, 4096, "MaxStreamsPerCaller")]
    [InlineData(1, 10, 1, 100, "MaxRequestBytes")]
    public void Options_OutOfRange_AreRefusedNamingTheKey(double permits, int burst, int streams, int bytes, string key)
    {
        var options = new LimitsOptions { PermitsPerSecond = permits, Burst = burst, MaxStreamsPerCaller = streams, MaxRequestBytes = bytes };

        var error = Assert.Throws<InvalidOperationException>(options.Validate);
        Assert.Contains("LabMesh:Limits:" + key, error.Message, StringComparison.Ordinal);
    }

    private static CallerLimiter Limiter(TimeProvider time, double permitsPerSecond, int burst, int maxStreams = 16) =>
        new(Options.Create(new LimitsOptions { PermitsPerSecond = permitsPerSecond, Burst = burst, MaxStreamsPerCaller = maxStreams }), time);

    private sealed class ManualTime : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }
}
