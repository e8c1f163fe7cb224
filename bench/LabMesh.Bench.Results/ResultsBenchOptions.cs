using System.Globalization;

namespace LabMesh.Bench.Results;

/// <summary>Command-line settings of one run (see ../README.md).</summary>
internal sealed class ResultsBenchOptions
{
    /// <summary>Which parts run: <c>reading</c>, <c>e2e</c> or both.</summary>
    public bool Reading { get; private set; } = true;

    public bool EndToEnd { get; private set; } = true;

    /// <summary>Measured seconds per side of the end-to-end part.</summary>
    public double DurationSeconds { get; private set; } = 8;

    /// <summary>Warm-up seconds before each measured side of the end-to-end part.</summary>
    public double WarmupSeconds { get; private set; } = 2;

    /// <summary>Calls in flight at once, end to end.</summary>
    public int Concurrency { get; private set; } = 4;

    /// <summary>Markers per SubmitResults / InterpretMarkers request.</summary>
    public int Markers { get; private set; } = 10;

    /// <summary>Requisitions placed before the SubmitResults load, shared out among the workers.</summary>
    public int Requisitions { get; private set; } = 32;

    /// <summary>Measured seconds per side of the reading part.</summary>
    public double ReadingSeconds { get; private set; } = 2;

    /// <summary>Markers per report in the reading part.</summary>
    public int ReadingMarkers { get; private set; } = 20;

    /// <summary>Seconds of SubmitResults load with the per-method listeners on (<see cref="RpcBreakdown"/>), for the per-call breakdown (0: none).</summary>
    public double BreakdownSeconds { get; private set; } = 3;

    public string CommandLine { get; private set; } = "";

    public TimeSpan Duration => TimeSpan.FromSeconds(DurationSeconds);

    public TimeSpan Warmup => TimeSpan.FromSeconds(WarmupSeconds);

    public static ResultsBenchOptions Parse(string[] args)
    {
        var options = new ResultsBenchOptions { CommandLine = string.Join(' ', args) };
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{arg} needs a value.");
            switch (arg)
            {
                case "--part":
                    var part = Value();
                    options.Reading = part is "all" or "reading";
                    options.EndToEnd = part is "all" or "e2e";
                    if (!options.Reading && !options.EndToEnd)
                    {
                        throw new ArgumentException($"--part is all, reading or e2e, not '{part}'.");
                    }
                    break;
                case "--duration":
                    options.DurationSeconds = Positive(arg, Value());
                    break;
                case "--warmup":
                    options.WarmupSeconds = NonNegative(arg, Value());
                    break;
                case "--concurrency":
                    options.Concurrency = Count(arg, Value(), 1, 256);
                    break;
                case "--markers":
                    options.Markers = Count(arg, Value(), 1, 500);
                    break;
                case "--requisitions":
                    options.Requisitions = Count(arg, Value(), 1, 1000);
                    break;
                case "--reading-duration":
                    options.ReadingSeconds = Positive(arg, Value());
                    break;
                case "--reading-markers":
                    options.ReadingMarkers = Count(arg, Value(), 1, 500);
                    break;
                case "--breakdown":
                    options.BreakdownSeconds = NonNegative(arg, Value());
                    break;
                default:
                    throw new ArgumentException($"Unknown option '{arg}'. Run with --help.");
            }
        }
        if (options.Requisitions < options.Concurrency)
        {
            throw new ArgumentException("--requisitions must be at least --concurrency (each worker submits to its own requisitions).");
        }
        return options;
    }

    public const string Usage = """
        LabMesh.Bench.Results: the ResultsInterpretation service, each figure against a baseline of the same run.

          dotnet run -c Release --project bench/LabMesh.Bench.Results -- [options]

          --part P                all (default), reading or e2e
          --duration S            end to end: measured seconds per call kind (default 8)
          --warmup S              end to end: warm-up seconds before each (default 2)
          --concurrency N         end to end: calls in flight at once, one channel (default 4)
          --markers N             end to end: markers per SubmitResults / InterpretMarkers (default 10)
          --requisitions N        end to end: requisitions placed first, not measured (default 32)
          --breakdown S           end to end: seconds of SubmitResults with the gRPC meter on, for the
                                  per-call breakdown; not part of the figures (default 3, 0 = skip)
          --reading-duration S    reading: measured seconds per side (default 2)
          --reading-markers N     reading: markers per report (default 20)
          --help                  this text

        Reading (in process): reports per second through MarkerReader.Read for every marker and
        MarkerReader.Overall, against the same loop with a default reading (clone + set), 1 and 2 threads.
        End to end: Requisition, ServiceRequest and ResultsInterpretation hosted here like the all-in-one
        host (one h2c loopback port, peers pointed at it, SQLite in a temp directory); SubmitResults
        (store + outbox + peer calls) against InterpretMarkers (same validation and reading, nothing
        else) and GetResults of one requisition, on the same channel.
        """;

    private static double Positive(string name, string value)
    {
        var parsed = double.Parse(value, CultureInfo.InvariantCulture);
        return parsed > 0 && double.IsFinite(parsed) ? parsed : throw new ArgumentException($"{name} must be positive.");
    }

    private static double NonNegative(string name, string value)
    {
        var parsed = double.Parse(value, CultureInfo.InvariantCulture);
        return parsed >= 0 && double.IsFinite(parsed) ? parsed : throw new ArgumentException($"{name} must be 0 or more.");
    }

    private static int Count(string name, string value, int min, int max)
    {
        var parsed = int.Parse(value, CultureInfo.InvariantCulture);
        return parsed >= min && parsed <= max ? parsed : throw new ArgumentException($"{name} must be {min} to {max}.");
    }
}
