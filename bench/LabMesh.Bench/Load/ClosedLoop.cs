using System.Diagnostics;

namespace LabMesh.Bench.Load;

/// <summary>One call of a load: returns how many response messages it received.</summary>
internal delegate Task<int> BenchCall();

/// <summary>What one closed-loop run measured.</summary>
internal sealed record LoadResult(
    long Calls,
    long Messages,
    long Errors,
    TimeSpan Elapsed,
    double P50Ms,
    double P99Ms,
    string? FirstError);

/// <summary>
/// A closed loop: <c>concurrency</c> workers each issue a call, wait for it, and issue the next.
/// Calls that complete inside the measured window count; their latency is the whole call,
/// from issuing it to the end of the response (trailers included).
/// </summary>
internal static class ClosedLoop
{
    public static async Task<LoadResult> RunAsync(
        IReadOnlyList<BenchCall> workers,
        TimeSpan warmup,
        TimeSpan duration,
        Func<Task>? onMeasureStart = null,
        Func<Task>? onMeasureEnd = null)
    {
        var state = new LoopState();
        var recorders = new Recorder[workers.Count];
        var tasks = new Task[workers.Count];
        for (var i = 0; i < workers.Count; i++)
        {
            recorders[i] = new Recorder(workers.Count);
            var call = workers[i];
            var recorder = recorders[i];
            tasks[i] = Task.Run(() => WorkerAsync(call, recorder, state));
        }

        await Task.Delay(warmup);
        if (onMeasureStart is not null)
        {
            await onMeasureStart();
        }
        var started = Stopwatch.GetTimestamp();
        Volatile.Write(ref state.Recording, true);
        await Task.Delay(duration);
        Volatile.Write(ref state.Recording, false);
        var elapsed = Stopwatch.GetElapsedTime(started);
        if (onMeasureEnd is not null)
        {
            await onMeasureEnd();
        }
        Volatile.Write(ref state.Stop, true);
        await Task.WhenAll(tasks);

        var latencies = new List<long>();
        long messages = 0, errors = 0;
        string? firstError = null;
        foreach (var r in recorders)
        {
            latencies.AddRange(r.Latencies);
            messages += r.Messages;
            errors += r.Errors;
            firstError ??= r.FirstError;
        }
        latencies.Sort();
        return new LoadResult(
            latencies.Count,
            messages,
            errors,
            elapsed,
            Percentile(latencies, 0.50),
            Percentile(latencies, 0.99),
            firstError);
    }

    /// <summary>Nearest-rank percentile of sorted Stopwatch tick counts, in milliseconds.</summary>
    public static double Percentile(List<long> sortedTicks, double p)
    {
        if (sortedTicks.Count == 0)
        {
            return double.NaN;
        }
        var rank = (int)Math.Ceiling(p * sortedTicks.Count) - 1;
        return sortedTicks[Math.Clamp(rank, 0, sortedTicks.Count - 1)] * 1000.0 / Stopwatch.Frequency;
    }

    private static async Task WorkerAsync(BenchCall call, Recorder recorder, LoopState state)
    {
        while (!Volatile.Read(ref state.Stop))
        {
            var t0 = Stopwatch.GetTimestamp();
            int messages;
            try
            {
                messages = await call();
            }
            catch (Exception ex)
            {
                if (Volatile.Read(ref state.Recording))
                {
                    recorder.Errors++;
                    recorder.FirstError ??= ex.GetType().Name + ": " + ex.Message;
                }
                else if (recorder.FirstError is null)
                {
                    recorder.FirstError = "(warm-up) " + ex.GetType().Name + ": " + ex.Message;
                }
                // A broken target fails fast; do not spin on it.
                await Task.Delay(10);
                continue;
            }
            var t1 = Stopwatch.GetTimestamp();
            if (Volatile.Read(ref state.Recording))
            {
                recorder.Latencies.Add(t1 - t0);
                recorder.Messages += messages;
            }
        }
    }

    private sealed class LoopState
    {
        public bool Recording;
        public bool Stop;
    }

    private sealed class Recorder(int workers)
    {
        // Room for ~1M calls across all workers (a 5 s window at 200k calls/s) before a list grows:
        // 65k each for 16 workers, 1k each for 1,000.
        public List<long> Latencies { get; } = new(Math.Max(1024, (1 << 20) / workers));

        public long Messages { get; set; }

        public long Errors { get; set; }

        public string? FirstError { get; set; }
    }
}
