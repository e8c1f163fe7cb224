using System.Globalization;

namespace LabMesh.Bench;

/// <summary>Command-line settings of one bench run (see ../README.md for each option).</summary>
internal sealed class BenchOptions
{
    public IReadOnlyList<string> Scenarios { get; private set; } = [.. ScenarioInfo.Names];

    public double DurationSeconds { get; private set; } = 5;

    public double WarmupSeconds { get; private set; } = 1;

    /// <summary>Seconds of load on each of the seven paths before the first scenario (see <see cref="Runner.PrimeAsync"/>).</summary>
    public double PrimeSeconds { get; private set; } = 1;

    /// <summary>Calls in flight at once, across all connections.</summary>
    public int Concurrency { get; private set; } = 16;

    /// <summary>HTTP/2 connections (channels, HttpClients, h2load clients).</summary>
    public int Connections { get; private set; } = 1;

    public int RequestSize { get; private set; } = 100;

    public int ResponseSize { get; private set; } = 100;

    public int StreamMessages { get; private set; } = 100;

    /// <summary>gzip-*: bytes of the text-like request and response payloads.</summary>
    public int GzipSize { get; private set; } = 16 * 1024;

    /// <summary>large-unary: bytes of the request and response payloads.</summary>
    public int LargeSize { get; private set; } = 1024 * 1024;

    /// <summary>many-streams: server-streaming calls open at once over one connection.</summary>
    public int Streams { get; private set; } = 1000;

    /// <summary>Each pair is measured this many times, alternating which server goes first; the median is kept.</summary>
    public int Rounds { get; private set; } = 1;

    /// <summary>Host both servers inside the bench process instead of child processes.</summary>
    public bool InProcess { get; private set; }

    /// <summary>Server children on CPU 0, the bench client and h2load on CPU 1.</summary>
    public bool Pin { get; private set; }

    /// <summary>The GC the server children run with: server (what ASP.NET Core apps use) or workstation.</summary>
    public string ServerGc { get; private set; } = "server";

    public string H2LoadPath { get; private set; } = "/usr/bin/h2load";

    /// <summary>The interpreter that has grpcio: Debian's, since a python3 earlier on PATH may lack it.</summary>
    public string PythonPath { get; private set; } = "/usr/bin/python3";

    /// <summary>Sample allocations by type in the servers and the client (<see cref="AllocationProfiler"/>).</summary>
    public bool AllocProfile { get; private set; }

    /// <summary>Also write the summary as a Markdown table to this file.</summary>
    public string? MarkdownPath { get; private set; }

    public TimeSpan Duration => TimeSpan.FromSeconds(DurationSeconds);

    public TimeSpan Warmup => TimeSpan.FromSeconds(WarmupSeconds);

    public string CommandLine { get; private set; } = "";

    public static BenchOptions Parse(string[] args)
    {
        var options = new BenchOptions { CommandLine = string.Join(' ', args) };
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{arg} needs a value.");
            switch (arg)
            {
                case "--scenario":
                case "--scenarios":
                    options.Scenarios = ParseScenarios(Value());
                    break;
                case "--duration":
                    options.DurationSeconds = PositiveDouble(arg, Value());
                    break;
                case "--warmup":
                    options.WarmupSeconds = double.Parse(Value(), CultureInfo.InvariantCulture);
                    break;
                case "--prime":
                    options.PrimeSeconds = double.Parse(Value(), CultureInfo.InvariantCulture);
                    break;
                case "--concurrency":
                    options.Concurrency = PositiveInt(arg, Value());
                    break;
                case "--connections":
                    options.Connections = PositiveInt(arg, Value());
                    break;
                case "--request-size":
                    options.RequestSize = NonNegativeInt(arg, Value());
                    break;
                case "--response-size":
                    options.ResponseSize = NonNegativeInt(arg, Value());
                    break;
                case "--stream-messages":
                    options.StreamMessages = PositiveInt(arg, Value());
                    break;
                case "--gzip-size":
                    options.GzipSize = PositiveInt(arg, Value());
                    break;
                case "--large-size":
                    options.LargeSize = PositiveInt(arg, Value());
                    break;
                case "--streams":
                    options.Streams = PositiveInt(arg, Value());
                    break;
                case "--rounds":
                    options.Rounds = PositiveInt(arg, Value());
                    break;
                case "--in-process":
                    options.InProcess = true;
                    break;
                case "--pin":
                    options.Pin = true;
                    break;
                case "--server-gc":
                    options.ServerGc = Value() switch
                    {
                        "server" => "server",
                        "workstation" => "workstation",
                        var other => throw new ArgumentException($"--server-gc is server or workstation, not '{other}'."),
                    };
                    break;
                case "--alloc-profile":
                    options.AllocProfile = true;
                    break;
                case "--h2load":
                    options.H2LoadPath = Value();
                    break;
                case "--python":
                    options.PythonPath = Value();
                    break;
                case "--markdown":
                    options.MarkdownPath = Value();
                    break;
                default:
                    throw new ArgumentException($"Unknown option '{arg}'. Run with --help.");
            }
        }
        if (options.Concurrency < options.Connections)
        {
            throw new ArgumentException("--concurrency must be at least --connections.");
        }
        if (options.InProcess && options.Pin)
        {
            throw new ArgumentException("--pin needs the servers in child processes (drop --in-process).");
        }
        return options;
    }

    public const string Usage = """
        LabMesh.Bench: LabMesh's gRPC runtime against a bare Kestrel HTTP/2 endpoint, in one run.

          dotnet run -c Release --project bench/LabMesh.Bench -- [options]

          --scenario LIST       comma-separated names, 'all' (default), or words selecting every name that
                                contains them: 'h2load', 'e2e', 'unary', 'stream', 'gzip', 'grpcio':
                                h2load-unary, h2load-stream   h2load -> LabMesh server vs bare endpoint
                                e2e-unary, e2e-stream         LabMesh client+server vs HttpClient+bare endpoint
                                client-unary                  LabMesh client vs HttpClient, both -> bare endpoint
                                server-unary                  HttpClient -> LabMesh server vs bare endpoint
                                gzip-unary, gzip-stream       LabMesh client+server, gzip both ways vs uncompressed
                                large-unary                   as e2e-unary with --large-size messages
                                many-streams                  as e2e-stream with --streams calls over one connection
                                grpcio-unary, grpcio-stream   h2load -> LabMesh server vs Python grpcio server
          --duration S          measured seconds per target (default 5)
          --warmup S            warm-up seconds before each measurement (default 1)
          --prime S             load on each of the 7 paths before measuring anything (default 1)
          --concurrency N       calls in flight at once (default 16)
          --connections N       HTTP/2 connections (default 1)
          --request-size B      request payload bytes (default 100)
          --response-size B     response payload bytes, each streamed message too (default 100)
          --stream-messages N   messages per server-streaming call (default 100)
          --gzip-size B         gzip-*: text-like request and response payload bytes (default 16384)
          --large-size B        large-unary: request and response payload bytes (default 1048576)
          --streams N           many-streams: calls open at once, one connection (default 1000)
          --rounds N            measure each pair N times, alternating order; report the median (default 1)
          --pin                 servers on CPU 0, client and h2load on CPU 1 (taskset)
          --server-gc MODE      server (default) or workstation, for both server processes
          --in-process          host the servers in the bench process (debugging; CPU/alloc columns mix)
          --alloc-profile       print sampled allocations by type per measurement (perturbs the figures a little)
          --h2load PATH         h2load binary (default /usr/bin/h2load)
          --python PATH         interpreter with python3-grpcio (default /usr/bin/python3)
          --markdown FILE       also write the summary table as Markdown
        """;

    private static string[] ParseScenarios(string value)
    {
        var result = new List<string>();
        foreach (var part in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            switch (part)
            {
                case "all":
                    result.AddRange(ScenarioInfo.Names);
                    break;
                case var group when ScenarioInfo.Groups.Contains(group):
                    result.AddRange(ScenarioInfo.Names.Where(s => s.Contains(group, StringComparison.Ordinal)));
                    break;
                default:
                    if (!ScenarioInfo.Names.Contains(part))
                    {
                        throw new ArgumentException($"Unknown scenario '{part}'. Known: {string.Join(", ", ScenarioInfo.Names)}.");
                    }
                    result.Add(part);
                    break;
            }
        }
        return [.. result.Distinct()];
    }

    private static double PositiveDouble(string name, string value)
    {
        var d = double.Parse(value, CultureInfo.InvariantCulture);
        return d > 0 ? d : throw new ArgumentException($"{name} must be positive.");
    }

    private static int PositiveInt(string name, string value)
    {
        var n = int.Parse(value, CultureInfo.InvariantCulture);
        return n > 0 ? n : throw new ArgumentException($"{name} must be positive.");
    }

    private static int NonNegativeInt(string name, string value)
    {
        var n = int.Parse(value, CultureInfo.InvariantCulture);
        return n >= 0 ? n : throw new ArgumentException($"{name} must not be negative.");
    }
}
