using System.Diagnostics;

namespace LabMesh.Bench.Notification;

/// <summary>What an open-loop run issued: the measured operations, what it had to skip, and how late it issued them.</summary>
internal sealed record OpenLoopRun(long Issued, long Skipped, TimeSpan Window, double LateP99Ms, double LateMaxMs, CpuUse Cpu, string ThreadPool)
{
    public double Rate => Issued / Window.TotalSeconds;
}

/// <summary>
/// An open loop: operation i is issued at start + i / rate whatever happened to the operations before it
/// (a result does not wait for the previous one to be accepted), for the warm-up and then the measured
/// window. The timer wakes about every millisecond at best, so each wake issues everything that is due
/// by then: the rate holds on average, with a few milliseconds of jitter at worst (reported as lateness).
/// An operation that would make more than <c>maxInFlight</c> in flight is not issued and is counted as
/// skipped: past that point the system is not keeping up with the rate, and the run says so. CPU is
/// taken from the first measured operation to the last one issued.
/// </summary>
internal static class OpenLoop
{
    /// <param name="rate">Operations per second.</param>
    /// <param name="warmup">Issued at the rate first, not measured.</param>
    /// <param name="duration">The measured window.</param>
    /// <param name="maxInFlight">Operations in flight beyond which the next is skipped.</param>
    /// <param name="operation">Issues operation <c>i</c>; <c>measured</c> is false during the warm-up.</param>
    public static async Task<OpenLoopRun> RunAsync(double rate, TimeSpan warmup, TimeSpan duration, int maxInFlight, Func<long, bool, Task> operation)
    {
        var inFlight = 0;
        var pending = new List<Task>();
        var lateness = new List<double>();
        long issued = 0, skipped = 0;
        var total = (long)Math.Round((warmup + duration).TotalSeconds * rate);
        var firstMeasured = (long)Math.Round(warmup.TotalSeconds * rate);
        CpuWindow? cpu = null;
        ThreadPoolWatch? pool = null;
        var start = Stopwatch.GetTimestamp();
        for (long i = 0; i < total; i++)
        {
            var due = start + (long)(i / rate * Stopwatch.Frequency);
            var wait = due - Stopwatch.GetTimestamp();
            if (wait > 0)
            {
                await Task.Delay(TimeSpan.FromTicks(wait * TimeSpan.TicksPerSecond / Stopwatch.Frequency));
            }

            var measured = i >= firstMeasured;
            if (measured && cpu is null)
            {
                cpu = new CpuWindow();
                pool = new ThreadPoolWatch();
            }

            if (Volatile.Read(ref inFlight) >= maxInFlight)
            {
                if (measured)
                {
                    skipped++;
                }

                continue;
            }

            if (measured)
            {
                issued++;
                lateness.Add(Distribution.Ms(Stopwatch.GetTimestamp() - due));
            }

            Interlocked.Increment(ref inFlight);
            pending.Add(Track(operation(i, measured)));
        }

        var cpuUse = (cpu ?? new CpuWindow()).Stop();
        pool?.Dispose();
        await Task.WhenAll(pending);
        var late = lateness.ToArray();
        Array.Sort(late);
        return new OpenLoopRun(issued, skipped, duration, Distribution.Percentile(late, 0.99), Distribution.Percentile(late, 1.0), cpuUse, pool?.ToString() ?? "");

        async Task Track(Task task)
        {
            try
            {
                await task;
            }
            finally
            {
                Interlocked.Decrement(ref inFlight);
            }
        }
    }
}
