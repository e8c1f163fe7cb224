using System.Globalization;

namespace LabMesh.Bench;

/// <summary>Command-line settings of one bench run (see ../README.md for each option).</summary>
internal sealed class BenchOptions
{
    public IReadOnlyList<string> Scenarios { get; private set; } = [.. ScenarioInfo.Names];

    public double DurationSeconds { get; private set; } = 5;

    public double WarmupSeconds { get; private set; } = 1;

    /// <summary>Seconds of load on each of the four paths before the first scenario (see <see cref="Runner.PrimeAsync"/>).</summary>
    public double PrimeSeconds { get; private set; } = 2;

    /// <summary>Calls in flight at once, across all connections.</summary>
    public int Concurrency { get; private set; } = 16;

    /// <summary>HTTP/2 connections (channels, h2load clients).</summary>
    public int Connections { get; private set; } = 1;

    /// <summary>Each pair is measured this many times, alternating which side goes first; the median is kept.</summary>
    public int Rounds { get; private set; } = 1;

    /// <summary>Servers on CPU 0, the bench client and h2load on CPU 1.</summary>
    public bool Pin { get; private set; }

    public string H2LoadPath { get; private set; } = "/usr/bin/h2load";

    /// <summary>The all-in-one host's assembly; by default the one built beside this bench.</summary>
    public string? HostDll { get; private set; }

    /// <summary>The bench's token comes from an OIDC issuer the host reads its keys from (LabMesh:Security:Authority).</summary>
    public bool Oidc { get; private set; }

    /// <summary>
    /// An OTLP endpoint (issue 21): the run compares the all-in-one host exporting its telemetry there with the same
    /// host not exporting, instead of the host with the bare server.
    /// </summary>
    public string? TelemetryEndpoint { get; private set; }

    /// <summary>OTEL_EXPORTER_OTLP_PROTOCOL for <see cref="TelemetryEndpoint"/>: grpc or http/protobuf.</summary>
    public string TelemetryProtocol { get; private set; } = "grpc";

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
                case "--rounds":
                    options.Rounds = PositiveInt(arg, Value());
                    break;
                case "--pin":
                    options.Pin = true;
                    break;
                case "--h2load":
                    options.H2LoadPath = Value();
                    break;
                case "--host-dll":
                    options.HostDll = Value();
                    break;
                case "--oidc":
                    options.Oidc = true;
                    break;
                case "--telemetry":
                    options.TelemetryEndpoint = new Uri(Value()).ToString().TrimEnd('/');
                    break;
                case "--telemetry-protocol":
                    var protocol = Value();
                    options.TelemetryProtocol = protocol is "grpc" or "http/protobuf" ? protocol : throw new ArgumentException("--telemetry-protocol is grpc or http/protobuf.");
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
        return options;
    }

    public const string Usage = """
        LabMesh.Bench: what LabMesh adds on top of grpc-dotnet, in one run. GetRequisitionStatus of a placed
        requisition on the all-in-one host (auth, rate limit, audit, cache) against a bare grpc-dotnet method
        answering the same cached response, with the same host settings.

          dotnet run -c Release --project bench/LabMesh.Bench -- [options]

          --scenario LIST       comma-separated names, or 'all' (default):
                                status-client   (a) LabMesh's channel (MeshChannels) -> host vs bare server
                                status-h2load   (b) h2load -> host vs bare server (server side only)
          --duration S          measured seconds per side (default 5)
          --warmup S            warm-up seconds before each measurement (default 1)
          --prime S             load on each of the 4 paths before measuring anything (default 2)
          --concurrency N       calls in flight at once (default 16)
          --connections N       HTTP/2 connections (default 1)
          --rounds N            measure each pair N times, alternating order; report the median (default 1)
          --pin                 servers on CPU 0, client and h2load on CPU 1 (taskset)
          --h2load PATH         h2load binary (default /usr/bin/h2load)
          --host-dll PATH       the all-in-one host's LabMesh.AllInOne.dll (default: built beside the bench)
          --oidc                the clinician's token comes from an OIDC issuer in the bench process (discovery +
                                JWKS over HTTP, LabMesh:Security:Authority) instead of the host's configured key
          --telemetry ENDPOINT  compare the host exporting traces, metrics and logs over OTLP to ENDPOINT (its standard
                                OTEL_EXPORTER_OTLP_ENDPOINT, e.g. the Aspire Dashboard's http://127.0.0.1:4317) with
                                the same host exporting nothing, instead of the host with the bare server
          --telemetry-protocol  grpc (default) or http/protobuf (OTEL_EXPORTER_OTLP_PROTOCOL)
          --markdown FILE       also write the summary tables as Markdown
        """;

    private static string[] ParseScenarios(string value)
    {
        var result = new List<string>();
        foreach (var part in value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (part == "all")
            {
                result.AddRange(ScenarioInfo.Names);
            }
            else if (ScenarioInfo.Names.Contains(part))
            {
                result.Add(part);
            }
            else
            {
                throw new ArgumentException($"Unknown scenario '{part}'. Known: {string.Join(", ", ScenarioInfo.Names)}.");
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
}
