using System.Globalization;
using LabMesh.Testing;

namespace LabMesh.Bench.Gateway;

/// <summary>How the figures are printed: fixed-width lines, invariant culture.</summary>
internal static class Report
{
    public static string F(string format, params object?[] args) => string.Format(CultureInfo.InvariantCulture, format, args);

    public static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    public static string Machine()
    {
        var model = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim()
            : null;
        return F("{0} cores ({1}), {2}, .NET {3}", Environment.ProcessorCount, model ?? "unknown CPU",
            System.Runtime.InteropServices.RuntimeInformation.OSDescription, Environment.Version);
    }

    public static double Median(IEnumerable<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length == 0 ? double.NaN : sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }
}

/// <summary>Redis counters around a window: what the status reads did to the cache.</summary>
internal sealed record CacheCounters(long Hits, long Misses, long MgetCalls, long Commands)
{
    public static async Task<CacheCounters> ReadAsync(LocalTopology topology)
    {
        var info = await RedisInfoAsync(topology, "stats", "commandstats");
        return new CacheCounters(Long(info, "keyspace_hits"), Long(info, "keyspace_misses"), Calls(info, "cmdstat_mget"), Long(info, "total_commands_processed"));
    }

    public static CacheCounters operator -(CacheCounters a, CacheCounters b) => new(a.Hits - b.Hits, a.Misses - b.Misses, a.MgetCalls - b.MgetCalls, a.Commands - b.Commands);

    /// <summary>Redis INFO fields (name -> value) of the given sections, through redis-cli.</summary>
    private static async Task<Dictionary<string, string>> RedisInfoAsync(LocalTopology topology, params string[] sections)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var section in sections)
        {
            await using var cli = ChildProcess.Start("redis-cli",
                ["--no-auth-warning", "-a", LocalTopology.RedisPassword, "-p", topology.RedisPort.ToString(CultureInfo.InvariantCulture), "INFO", section],
                LocalTopology.Root);
            await cli.WaitForExitAsync(TimeSpan.FromSeconds(30));
            foreach (var line in cli.StandardOutput.Select(l => l.Trim()))
            {
                if (line.Split(':', 2) is [var name, var value] && !name.StartsWith('#'))
                {
                    fields[name] = value;
                }
            }
        }

        return fields;
    }

    private static long Long(Dictionary<string, string> info, string name) =>
        info.TryGetValue(name, out var value) ? long.Parse(value, CultureInfo.InvariantCulture) : 0;

    // cmdstat_mget:calls=123,usec=...,usec_per_call=...
    private static long Calls(Dictionary<string, string> info, string name) =>
        info.TryGetValue(name, out var value) && value.Split(',').FirstOrDefault(p => p.StartsWith("calls=", StringComparison.Ordinal)) is { } calls
            ? long.Parse(calls["calls=".Length..], CultureInfo.InvariantCulture)
            : 0;
}
