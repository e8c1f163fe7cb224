using System.Diagnostics;
using System.Globalization;
using LabMesh.Testing;

namespace LabMesh.Bench.Gateway;

/// <summary>
/// CPU time of the processes on a call's path (the gateway, a candidate gateway with its workers, the two Requisition replicas,
/// Redis, this bench) and of the whole machine, from /proc, so a window can say where its cores went.
/// </summary>
internal sealed class ProcessCpu
{
    private const double TicksPerSecond = 100; // USER_HZ on Linux
    private readonly Dictionary<string, int[]> _groups;
    private readonly Dictionary<string, long> _start;
    private readonly (long Busy, long Total) _machine;
    private readonly long _started = Stopwatch.GetTimestamp();

    private ProcessCpu(Dictionary<string, int[]> groups)
    {
        _groups = groups;
        _start = groups.ToDictionary(g => g.Key, g => g.Value.Sum(Ticks));
        _machine = Machine();
    }

    public static ProcessCpu Start(LocalTopology topology, Candidate? candidate = null)
    {
        var groups = new Dictionary<string, int[]>(StringComparer.Ordinal);
        if (topology.Pid("gateway") is { } gateway)
        {
            groups["gateway"] = [gateway, .. Children(gateway)];
        }

        if (candidate?.Pid is { } other)
        {
            groups[candidate.Name] = [other, .. Children(other)];
        }

        foreach (var replica in LocalTopology.Replicas)
        {
            var name = LocalTopology.Replica("requisition", replica);
            if (topology.Pid(name) is { } pid)
            {
                groups[name] = [pid];
            }
        }

        if (topology.Pid("redis") is { } redis)
        {
            groups["redis"] = [redis];
        }

        groups["bench"] = [Environment.ProcessId];
        return new ProcessCpu(groups);
    }

    /// <summary>Cores each group used since the start (1.0 = one core busy all the time), and the machine's.</summary>
    public string Stop()
    {
        var seconds = Stopwatch.GetElapsedTime(_started).TotalSeconds;
        var parts = _groups.Select(g => Report.F("{0} {1:0.00}", g.Key, (g.Value.Sum(Ticks) - _start[g.Key]) / TicksPerSecond / seconds));
        var (busy, total) = Machine();
        var machine = total == _machine.Total ? double.NaN : (double)(busy - _machine.Busy) / (total - _machine.Total) * Environment.ProcessorCount;
        return "cores: " + string.Join(", ", parts) + Report.F("; machine {0:0.00} of {1}", machine, Environment.ProcessorCount);
    }

    // utime + stime, fields 14 and 15 of /proc/PID/stat (after the parenthesised command name).
    private static long Ticks(int pid)
    {
        try
        {
            var fields = StatFields(pid);
            return fields is null ? 0 : long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static string[]? StatFields(int pid)
    {
        var path = $"/proc/{pid}/stat";
        if (!File.Exists(path))
        {
            return null;
        }

        var text = File.ReadAllText(path);
        return text[(text.LastIndexOf(')') + 2)..].Split(' ');
    }

    private static IEnumerable<int> Children(int parent)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid))
            {
                string[]? fields;
                try
                {
                    fields = StatFields(pid);
                }
                catch (IOException)
                {
                    continue;
                }

                // Field 4, the parent pid, is the second after the command name.
                if (fields is not null && fields[1] == parent.ToString(CultureInfo.InvariantCulture))
                {
                    yield return pid;
                }
            }
        }
    }

    private static (long Busy, long Total) Machine()
    {
        // cpu  user nice system idle iowait irq softirq steal ...
        var line = File.Exists("/proc/stat") ? File.ReadLines("/proc/stat").First() : "cpu 0 0 0 0";
        var values = line.Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1).Take(8).Select(v => long.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        var idle = values[3] + (values.Length > 4 ? values[4] : 0);
        return (values.Sum() - idle, values.Sum());
    }
}
