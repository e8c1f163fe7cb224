using System.Globalization;

namespace LabMesh.Chaos;

/// <summary>Command-line settings of one run: <c>--name value</c> pairs and flags.</summary>
internal sealed record Options
{
    public double DurationSeconds { get; init; } = 180;

    public int Workers { get; init; } = 4;

    public int CriticalEvery { get; init; } = 3;

    public double DownSeconds { get; init; } = 3;

    public int PortBase { get; init; } = 7800;

    public string? State { get; init; }

    public bool Build { get; init; }

    /// <summary>Only time each replica's start to SERVING at idle (no load, no faults).</summary>
    public bool StartupOnly { get; init; }

    public string CommandLine { get; init; } = "";

    public static Options Parse(string[] args)
    {
        var options = new Options { CommandLine = string.Join(' ', args) };
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            if (name is "--build" or "--startup-only")
            {
                options = name == "--build" ? options with { Build = true } : options with { StartupOnly = true };
                continue;
            }

            var value = i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value.");
            options = name switch
            {
                "--duration" => options with { DurationSeconds = Number(name, value, 30, 3600) },
                "--workers" => options with { Workers = (int)Number(name, value, 1, 64) },
                "--critical-every" => options with { CriticalEvery = (int)Number(name, value, 1, 1000) },
                "--down" => options with { DownSeconds = Number(name, value, 0, 120) },
                "--port-base" => options with { PortBase = (int)Number(name, value, 1024, 65_400) },
                "--state" => options with { State = Path.GetFullPath(value) },
                _ => throw new ArgumentException($"Unknown option '{name}'. Run with --help."),
            };
        }

        return options;
    }

    public const string Usage = """
        LabMesh.Chaos: the fault-injection run on deploy/local, verified.

          dotnet run -c Release --project bench/LabMesh.Chaos -- [options]
          deploy/local/chaos.sh [options]          (the same)

          --duration S        seconds of load with faults (default 180; the schedule spreads its 12 faults over it)
          --workers N         callers, each placing an order and submitting a report on it in turn (default 4)
          --critical-every N  every Nth report carries a critical potassium (default 3)
          --down S            seconds a killed or stopped part stays down (default 3)
          --port-base P       LABMESH_LOCAL_PORT_BASE of the topology it starts (default 7800)
          --state DIR         LABMESH_LOCAL_STATE (default: a new directory under /tmp; purged at the end)
          --startup-only      only time each replica from process start to SERVING, idle, and stop
          --build             let up.sh build the services (default: LABMESH_LOCAL_NO_BUILD=1)
          --help              this text

        Starts deploy/local with up.sh, times each replica's restart to SERVING at idle, then drives the load through
        the gateway while it SIGKILLs each replica in turn, stops and kills Redis, fast-stops PostgreSQL and kills its
        postmaster (ctl.sh), verifies every write, critical result, stream event and webhook, prints the table and
        always ends with down.sh --purge (Ctrl+C included). Loopback only. Exit 0 only if every check passed.
        """;

    private static double Number(string name, string value, double min, double max)
    {
        var parsed = double.Parse(value, CultureInfo.InvariantCulture);
        return parsed >= min && parsed <= max ? parsed : throw new ArgumentException($"{name} must be {min} to {max}.");
    }
}
