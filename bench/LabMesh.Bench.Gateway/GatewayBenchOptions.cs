using System.Globalization;

namespace LabMesh.Bench.Gateway;

/// <summary>Command-line settings of one run (see ../README.md): <c>--name value</c> pairs and two flags.</summary>
internal sealed record GatewayBenchOptions
{
    public int Rounds { get; init; } = 3;

    public double WarmupSeconds { get; init; } = 1;

    public double DurationSeconds { get; init; } = 8;

    public int Concurrency { get; init; } = 16;

    public int Requisitions { get; init; } = 20;

    /// <summary>Calls per second of the open-loop comparison after the closed loop; 0 leaves it out.</summary>
    public double Rate { get; init; } = 1000;

    public double IdleSeconds { get; init; } = 30;

    public int PortBase { get; init; } = 7600;

    public string? State { get; init; }

    /// <summary>Environment (NAME=VALUE,...) for replica 2 of every service and a second bare host, restarted after the main run.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Variant { get; init; } = [];

    /// <summary>
    /// A second gateway in front of the same Requisition replicas (nginx, gateway:N=V,... or a URL; Candidate.cs),
    /// compared against the topology's gateway in the same rounds, closed and open loop; null leaves it out.
    /// </summary>
    public string? Candidate { get; init; }

    /// <summary>Calls per second of the overload part (2d, GatewayBench.Overload.cs); 0 leaves it out.</summary>
    public double Overload { get; init; }

    public double OverloadSeconds { get; init; } = 5;

    /// <summary>Seconds requisition-2 is frozen (SIGSTOP, then SIGCONT) from the start of the overload phase: a replica that stalls; 0 none.</summary>
    public double StallSeconds { get; init; }

    /// <summary>Only the overload part: no memory readings, no closed or open loop comparison.</summary>
    public bool OverloadOnly { get; init; }

    /// <summary>With --overload and --candidate: round 1 runs the candidate first, then the gateway, then direct (both gateways' first load before direct's backlog).</summary>
    public bool CandidateFirst { get; init; }

    public TimeSpan OverloadDuration => TimeSpan.FromSeconds(OverloadSeconds);

    /// <summary>Let up.sh build the services first (otherwise LABMESH_LOCAL_NO_BUILD=1: run what is built).</summary>
    public bool Build { get; init; }

    public string CommandLine { get; init; } = "";

    public TimeSpan Warmup => TimeSpan.FromSeconds(WarmupSeconds);

    public TimeSpan Duration => TimeSpan.FromSeconds(DurationSeconds);

    public TimeSpan Idle => TimeSpan.FromSeconds(IdleSeconds);

    public static GatewayBenchOptions Parse(string[] args)
    {
        var options = new GatewayBenchOptions { CommandLine = string.Join(' ', args) };
        for (var i = 0; i < args.Length; i++)
        {
            var name = args[i];
            if (name == "--build")
            {
                options = options with { Build = true };
                continue;
            }

            if (name == "--overload-only")
            {
                options = options with { OverloadOnly = true };
                continue;
            }

            if (name == "--candidate-first")
            {
                options = options with { CandidateFirst = true };
                continue;
            }

            var value = i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{name} needs a value.");
            options = name switch
            {
                "--rounds" => options with { Rounds = (int)Number(name, value, 1, 20) },
                "--warmup" => options with { WarmupSeconds = Number(name, value, 0, 60) },
                "--duration" => options with { DurationSeconds = Number(name, value, 1, 120) },
                "--concurrency" => options with { Concurrency = (int)Number(name, value, 1, 1024) },
                "--rate" => options with { Rate = Number(name, value, 0, 100_000) },
                "--requisitions" => options with { Requisitions = (int)Number(name, value, 1, 1000) },
                "--idle" => options with { IdleSeconds = Number(name, value, 0, 300) },
                "--port-base" => options with { PortBase = (int)Number(name, value, 1024, 65_400) },
                "--state" => options with { State = Path.GetFullPath(value) },
                "--variant" => options with { Variant = Variables(value) },
                "--candidate" => options with { Candidate = value },
                "--overload" => options with { Overload = Number(name, value, 0, 100_000) },
                "--overload-seconds" => options with { OverloadSeconds = Number(name, value, 1, 60) },
                "--stall" => options with { StallSeconds = Number(name, value, 0, 10) },
                _ => throw new ArgumentException($"Unknown option '{name}'. Run with --help."),
            };
        }

        return options.OverloadOnly && options.Overload <= 0 ? throw new ArgumentException("--overload-only needs --overload R.") : options;
    }

    public const string Usage = """
        LabMesh.Bench.Gateway: deploy/local's topology from outside, each figure against a baseline of the same run.

          dotnet run -c Release --project bench/LabMesh.Bench.Gateway -- [options]

          --rounds N            pairs of windows (gateway, direct), alternating which goes first (default 3)
          --warmup S            seconds of load before each window, not recorded (default 1)
          --duration S          measured seconds per window (default 8)
          --concurrency N       GetRequisitionStatus calls in flight, one HTTP/2 connection (default 16)
          --rate R              then the same comparison as an open loop: R calls/s due whatever the answers
                                do, latency from when each was due (default 1000; 0 leaves it out)
          --requisitions N      requisitions created first and read in turn (default 20)
          --idle S              seconds without traffic before each memory reading (default 30)
          --port-base P         LABMESH_LOCAL_PORT_BASE of the topology it starts (default 7600)
          --state DIR           LABMESH_LOCAL_STATE (default: a new directory under /tmp; purged at the end)
          --variant N=V[,N=V]   after the main run, restart replica 2 of every service with this environment
                                (e.g. DOTNET_gcServer=0), start a second bare host with it, and compare
                                memory and direct GetRequisitionStatus against replica 1
          --candidate C         a second gateway in front of the topology's Requisition replicas (BASE+11, BASE+12),
                                compared against the topology's gateway (services/LabMesh.Gateway) in the same
                                rounds, closed and open loop, on BASE+93: nginx (deploy/local's gateway before
                                YARP, its configuration as it was), gateway:N=V[,N=V] (another LabMesh.Gateway
                                with that environment, e.g. gateway:DOTNET_gcServer=0), gateway@PATH[:N=V,...]
                                (another build of it: a .dll run with dotnet, main before a change or a
                                ReadyToRun publish; else an executable, a Native AOT publish), or a URL
                                already running; a LabMesh.Gateway is measured from when /healthz/ready says 200
          --overload R          then overload and recovery (2d): open loop at --rate (2,000 if 0) for 5 s, R calls/s
                                for --overload-seconds, --rate again for 10 s, through the gateway and direct to
                                requisition-1 in alternating rounds: calls shed, other errors, p99, the lowest
                                successes per 250 ms, the gateway's connections to the replicas, time to recover
          --overload-seconds S  seconds of the overload phase (default 5)
          --stall S             with --overload: requisition-2 frozen (SIGSTOP) for the first S seconds of the
                                overload phase, then resumed (SIGCONT): a replica that stalls (default 0: none)
          --overload-only       with --overload: only that part (no memory readings, no closed/open loop comparison)
          --candidate-first     with --overload and --candidate: round 1 runs the candidate, the gateway, then direct
                                (each gateway's first load comes before direct's overload; later rounds reversed)
          --build               let up.sh build the services (default: LABMESH_LOCAL_NO_BUILD=1)
          --help                this text

        Starts deploy/local (up.sh) with LabMesh__Limits__PermitsPerSecond=0 (the per-caller rate limit off) and
        always stops it with down.sh --purge, Ctrl+C included.
        """;

    private static double Number(string name, string value, double min, double max)
    {
        var parsed = double.Parse(value, CultureInfo.InvariantCulture);
        return parsed >= min && parsed <= max ? parsed : throw new ArgumentException($"{name} must be {min} to {max}.");
    }

    private static List<KeyValuePair<string, string>> Variables(string value) =>
    [
        .. value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(pair =>
            pair.Split('=', 2) is [var key, var v] && key.Length > 0
                ? KeyValuePair.Create(key, v)
                : throw new ArgumentException($"--variant takes NAME=VALUE pairs, not '{pair}'.")),
    ];
}
