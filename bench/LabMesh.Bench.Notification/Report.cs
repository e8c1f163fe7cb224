using System.Diagnostics;
using System.Globalization;
using System.Runtime;

namespace LabMesh.Bench.Notification;

/// <summary>Percentiles of one set of latencies, in milliseconds (nearest rank; values may be negative).</summary>
internal sealed record Distribution(int Count, double P50, double P90, double P99, double Max)
{
    public static Distribution Of(IEnumerable<double> values)
    {
        var sorted = values.ToArray();
        Array.Sort(sorted);
        return new Distribution(sorted.Length, Percentile(sorted, 0.50), Percentile(sorted, 0.90), Percentile(sorted, 0.99), Percentile(sorted, 1.0));
    }

    public static double Percentile(double[] sorted, double p)
    {
        if (sorted.Length == 0)
        {
            return double.NaN;
        }

        var rank = (int)Math.Ceiling(p * sorted.Length) - 1;
        return sorted[Math.Clamp(rank, 0, sorted.Length - 1)];
    }

    public static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;
}

/// <summary>How the figures are printed: fixed-width lines, invariant culture.</summary>
internal static class Report
{
    public static string F(string format, params object?[] args) => string.Format(CultureInfo.InvariantCulture, format, args);

    public static string Ms(Distribution d) => F("p50 {0,7:0.00}  p90 {1,7:0.00}  p99 {2,7:0.00}  max {3,7:0.00}", d.P50, d.P90, d.P99, d.Max);

    /// <summary>The machine as this run sees it: cores, CPU model, memory, OS, runtime, load average.</summary>
    public static IEnumerable<string> Machine()
    {
        var model = ReadFirst("/proc/cpuinfo", "model name")?.Split(':', 2)[1].Trim() ?? "unknown CPU";
        var memory = ReadFirst("/proc/meminfo", "MemTotal")?.Split(':', 2)[1].Trim() ?? "?";
        yield return F("machine: {0} cores visible ({1}), {2}, {3}", Environment.ProcessorCount, model, memory, System.Runtime.InteropServices.RuntimeInformation.OSDescription);
        yield return F(".NET {0}, {1} GC; services, Redis client, load and receiver all in this process; redis-server a process of its own",
            Environment.Version, System.Runtime.GCSettings.IsServerGC ? "server" : "workstation");
        yield return "load average: " + LoadAverage();
    }

    public static string LoadAverage() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "n/a";

    private static string? ReadFirst(string path, string prefix) =>
        File.Exists(path) ? File.ReadLines(path).FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal)) : null;
}

/// <summary>
/// CPU over a window: this process's (services, client, receiver), and the whole machine's from
/// /proc/stat (the difference is redis-server and anything else running, e.g. other builds).
/// </summary>
internal sealed class CpuWindow
{
    private readonly long _started = Stopwatch.GetTimestamp();
    private readonly TimeSpan _process = Environment.CpuUsage.TotalTime;
    private readonly (long Busy, long Total) _machine = MachineJiffies();
    private readonly long _jitMethods = JitInfo.GetCompiledMethodCount();
    private readonly TimeSpan _jitTime = JitInfo.GetCompilationTime();

    public CpuUse Stop()
    {
        var elapsed = Stopwatch.GetElapsedTime(_started);
        var process = Environment.CpuUsage.TotalTime - _process;
        var (busy, total) = MachineJiffies();
        var machineCores = total == _machine.Total ? double.NaN : (double)(busy - _machine.Busy) / (total - _machine.Total) * Environment.ProcessorCount;
        return new CpuUse(elapsed, process / elapsed, machineCores)
        {
            JitMethods = JitInfo.GetCompiledMethodCount() - _jitMethods,
            JitTime = JitInfo.GetCompilationTime() - _jitTime,
        };
    }

    /// <summary>
    /// Waits until the JIT has compiled nothing for <paramref name="quiet"/> (tiered compilation's promotions of what
    /// ran before, in the background), at most <paramref name="bound"/>: a window measured after it starts with the
    /// code the process has warmed as far as it goes, whichever side ran before. Answers the wait and the methods
    /// compiled meanwhile.
    /// </summary>
    public static async Task<(TimeSpan Waited, long Methods, bool Settled)> SettleJitAsync(TimeSpan quiet, TimeSpan bound)
    {
        var started = Stopwatch.GetTimestamp();
        var first = JitInfo.GetCompiledMethodCount();
        var last = first;
        var quietSince = Stopwatch.GetTimestamp();
        while (Stopwatch.GetElapsedTime(started) < bound)
        {
            await Task.Delay(50);
            var now = JitInfo.GetCompiledMethodCount();
            if (now != last)
            {
                last = now;
                quietSince = Stopwatch.GetTimestamp();
            }
            else if (Stopwatch.GetElapsedTime(quietSince) >= quiet)
            {
                return (Stopwatch.GetElapsedTime(started), last - first, true);
            }
        }

        return (Stopwatch.GetElapsedTime(started), last - first, false);
    }

    private static (long Busy, long Total) MachineJiffies()
    {
        if (!File.Exists("/proc/stat"))
        {
            return (0, 0);
        }

        // cpu  user nice system idle iowait irq softirq steal guest guest_nice
        var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();
        var idle = fields[3] + fields[4];
        var busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7];
        return (busy, busy + idle);
    }
}

/// <summary>Cores busy over a window: this process, and the whole machine.</summary>
internal sealed record CpuUse(TimeSpan Elapsed, double ProcessCores, double MachineCores)
{
    /// <summary>Methods the JIT compiled in the window (any tier, the whole process), and its time compiling them.</summary>
    public long JitMethods { get; init; }

    public TimeSpan JitTime { get; init; }

    /// <summary>This process's CPU in the window per operation, in microseconds.</summary>
    public double MicrosecondsPer(int operations) => ProcessCores * Elapsed.TotalMilliseconds * 1000 / operations;

    public override string ToString() => Report.F("cores busy: this process {0:0.00}, machine {1:0.00} of {2}", ProcessCores, MachineCores, Environment.ProcessorCount);
}

/// <summary>
/// Samples the thread pool every 10 ms on a thread of its own: the most threads and the longest queue
/// of work items seen. A long queue while the CPU is not busy means work waits for a thread (the
/// SQLite calls run synchronously on pool threads).
/// </summary>
internal sealed class ThreadPoolWatch : IDisposable
{
    private readonly Thread _thread;
    private volatile bool _stop;

    public ThreadPoolWatch()
    {
        _thread = new Thread(Sample) { IsBackground = true, Name = "bench thread-pool watch" };
        _thread.Start();
    }

    public int MaxThreads { get; private set; }

    public long MaxQueued { get; private set; }

    public override string ToString() => Report.F("thread pool: up to {0} threads, up to {1} work items queued", MaxThreads, MaxQueued);

    public void Dispose()
    {
        _stop = true;
        _thread.Join();
    }

    private void Sample()
    {
        while (!_stop)
        {
            MaxThreads = Math.Max(MaxThreads, ThreadPool.ThreadCount);
            MaxQueued = Math.Max(MaxQueued, ThreadPool.PendingWorkItemCount);
            Thread.Sleep(10);
        }
    }
}
