using System.Diagnostics;

namespace LabMesh.Bench.Results;

/// <summary>One call of a load, by worker <c>worker</c>, its <c>sequence</c>-th call.</summary>
internal delegate Task BenchCall(int worker, long sequence);

/// <summary>What one closed-loop window measured; CPU and allocations are the whole process's (client and services).</summary>
internal sealed record LoadResult(
    string Name,
    long Calls,
    long Errors,
    TimeSpan Elapsed,
    double P50Ms,
    double P99Ms,
    double P999Ms,
    double MaxMs,
    TimeSpan CpuTime,
    long AllocatedBytes,
    int Gen0,
    int Gen1,
    int Gen2,
    string? FirstError)
{
    public double Rate => Calls / Elapsed.TotalSeconds;

    /// <summary>CPU time of the whole process over the window, in cores (2.0 = both cores of this machine).</summary>
    public double CoresBusy => CpuTime / Elapsed;

    public double CpuUsPerCall => Calls == 0 ? double.NaN : CpuTime.TotalMicroseconds / Calls;

    public double KbPerCall => Calls == 0 ? double.NaN : AllocatedBytes / 1024.0 / Calls;
}

/// <summary>
/// A closed loop: <c>concurrency</c> workers each issue a call, wait for it and issue the next. Calls
/// that complete inside the measured window count; a call's latency runs from issuing it to its
/// response (trailers included). Percentiles by nearest rank over every call in the window.
/// </summary>
internal static class ClosedLoop
{
    public static async Task<LoadResult> RunAsync(string name, int concurrency, BenchCall call, TimeSpan warmup, TimeSpan duration)
    {
        var state = new LoopState();
        var recorders = new Recorder[concurrency];
        var tasks = new Task[concurrency];
        for (var i = 0; i < concurrency; i++)
        {
            var worker = i;
            recorders[i] = new Recorder();
            tasks[i] = Task.Run(() => WorkerAsync(worker, call, recorders[worker], state));
        }

        await Task.Delay(warmup);
        var cpu = Environment.CpuUsage.TotalTime;
        var allocated = GC.GetTotalAllocatedBytes(precise: false);
        int gen0 = GC.CollectionCount(0), gen1 = GC.CollectionCount(1), gen2 = GC.CollectionCount(2);
        var started = Stopwatch.GetTimestamp();
        Volatile.Write(ref state.Recording, true);
        await Task.Delay(duration);
        Volatile.Write(ref state.Recording, false);
        var elapsed = Stopwatch.GetElapsedTime(started);
        var cpuTime = Environment.CpuUsage.TotalTime - cpu;
        var bytes = GC.GetTotalAllocatedBytes(precise: false) - allocated;
        gen0 = GC.CollectionCount(0) - gen0;
        gen1 = GC.CollectionCount(1) - gen1;
        gen2 = GC.CollectionCount(2) - gen2;
        Volatile.Write(ref state.Stop, true);
        await Task.WhenAll(tasks);

        var latencies = recorders.SelectMany(r => r.Latencies).ToList();
        latencies.Sort();
        return new LoadResult(
            name,
            latencies.Count,
            recorders.Sum(r => r.Errors),
            elapsed,
            Percentile(latencies, 0.50),
            Percentile(latencies, 0.99),
            Percentile(latencies, 0.999),
            Percentile(latencies, 1.0),
            cpuTime,
            bytes,
            gen0,
            gen1,
            gen2,
            recorders.Select(r => r.FirstError).FirstOrDefault(e => e is not null));
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

    private static async Task WorkerAsync(int worker, BenchCall call, Recorder recorder, LoopState state)
    {
        long sequence = 0;
        while (!Volatile.Read(ref state.Stop))
        {
            var t0 = Stopwatch.GetTimestamp();
            try
            {
                await call(worker, sequence++);
            }
            catch (Exception ex)
            {
                if (Volatile.Read(ref state.Recording))
                {
                    recorder.Errors++;
                }
                recorder.FirstError ??= ex.GetType().Name + ": " + ex.Message;
                // A broken target fails fast; do not spin on it.
                await Task.Delay(10);
                continue;
            }
            var t1 = Stopwatch.GetTimestamp();
            if (Volatile.Read(ref state.Recording))
            {
                recorder.Latencies.Add(t1 - t0);
            }
        }
    }

    private sealed class LoopState
    {
        public bool Recording;
        public bool Stop;
    }

    private sealed class Recorder
    {
        public List<long> Latencies { get; } = new(1 << 14);

        public long Errors { get; set; }

        public string? FirstError { get; set; }
    }
}
