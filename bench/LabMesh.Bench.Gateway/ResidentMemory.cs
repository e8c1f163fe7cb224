using System.Globalization;

namespace LabMesh.Bench.Gateway;

/// <summary>One process's memory as /proc/PID/status has it, and which GC it runs (from its thread names).</summary>
internal sealed record ResidentMemory(string Name, int Pid, long RssKb, long AnonKb, long FileKb, long ShmemKb, long PssKb, int Threads, int ServerGcThreads, string GcEnvironment)
{
    public double RssMb => RssKb * 1024 / 1e6;

    public double AnonMb => AnonKb * 1024 / 1e6;

    public double FileMb => FileKb * 1024 / 1e6;

    /// <summary>RssShmem: for .NET the runtime's executable memory (/memfd:doublemapper: JIT'd code, stubs, type data).</summary>
    public double ShmemMb => ShmemKb * 1024 / 1e6;

    /// <summary>Proportional set size: shared pages (the framework's mapped assemblies) divided among the processes mapping them.</summary>
    public double PssMb => PssKb * 1024 / 1e6;

    /// <summary>Server GC: one ".NET Server GC" thread per heap; workstation GC has none.</summary>
    public string Gc => ServerGcThreads > 0 ? $"server ({ServerGcThreads} heaps)" : "workstation";

    public static ResidentMemory? Read(string name, int pid)
    {
        var status = $"/proc/{pid}/status";
        if (!File.Exists(status))
        {
            return null;
        }

        var fields = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(status))
        {
            if (line.Split(':', 2) is [var key, var value] && key is "VmRSS" or "RssAnon" or "RssFile" or "RssShmem" or "Threads")
            {
                fields[key] = long.Parse(value.Trim().Split(' ')[0], CultureInfo.InvariantCulture);
            }
        }

        var rollup = $"/proc/{pid}/smaps_rollup";
        var pss = File.Exists(rollup)
            ? File.ReadLines(rollup).Where(l => l.StartsWith("Pss:", StringComparison.Ordinal))
                .Select(l => long.Parse(l["Pss:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture)).FirstOrDefault()
            : 0;
        return new ResidentMemory(name, pid, fields.GetValueOrDefault("VmRSS"), fields.GetValueOrDefault("RssAnon"), fields.GetValueOrDefault("RssFile"), fields.GetValueOrDefault("RssShmem"), pss,
            (int)fields.GetValueOrDefault("Threads"), CountThreads(pid, ".NET Server GC"), GcVariables(pid));
    }

    private static int CountThreads(int pid, string name)
    {
        try
        {
            return Directory.EnumerateDirectories($"/proc/{pid}/task")
                .Count(task => File.Exists(task + "/comm") && File.ReadAllText(task + "/comm").Trim() == name);
        }
        catch (IOException)
        {
            return 0;
        }
    }

    // Only the GC's own variables are read out of the environment: the replicas' also holds the signing key and passwords.
    private static string GcVariables(int pid)
    {
        try
        {
            var gc = File.ReadAllText($"/proc/{pid}/environ").Split('\0')
                .Where(v => v.StartsWith("DOTNET_gc", StringComparison.OrdinalIgnoreCase) || v.StartsWith("DOTNET_GC", StringComparison.Ordinal)
                    || v.StartsWith("COMPlus_gc", StringComparison.OrdinalIgnoreCase));
            var joined = string.Join(' ', gc);
            return joined.Length == 0 ? "-" : joined;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return "?";
        }
    }
}
