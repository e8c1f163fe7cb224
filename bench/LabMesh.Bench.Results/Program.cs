using System.Runtime;
using System.Runtime.InteropServices;
using LabMesh.Bench.Results;
using static LabMesh.Bench.Results.Report;

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(ResultsBenchOptions.Usage);
    return 0;
}

ResultsBenchOptions options;
try
{
    options = ResultsBenchOptions.Parse(args);
}
catch (Exception ex) when (ex is ArgumentException or FormatException or OverflowException)
{
    Console.Error.WriteLine(ex.Message);
    Console.Error.WriteLine(ResultsBenchOptions.Usage);
    return 2;
}

var loadAverage = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "n/a";
Console.WriteLine($"LabMesh.Bench.Results  {DateTimeOffset.Now:yyyy-MM-dd HH:mm zzz}");
Console.WriteLine($"  machine: {Environment.ProcessorCount} cores visible, {RuntimeInformation.OSDescription}, .NET {Environment.Version}, load average {loadAverage}");
Console.WriteLine($"  process: {(GCSettings.IsServerGC ? "server" : "workstation")} GC; services, client and reading loops all in this process");
Console.WriteLine($"  args: {(options.CommandLine.Length == 0 ? "(defaults)" : options.CommandLine)}");
var summary = new List<string>();

if (options.Reading)
{
    Console.WriteLine();
    Console.WriteLine(F("1. Reading throughput, in process: {0:0.#} s per side after a 0.5 s warm-up of each", options.ReadingSeconds));
    var reports = MarkerMix.Reports(ReadingBench.ReportCount, options.ReadingMarkers, seed: 20261121);
    Console.WriteLine("   mix: " + ReadingBench.Describe(reports));
    Console.WriteLine(ReadingHeader);
    var results = ReadingBench.Run(reports, TimeSpan.FromSeconds(options.ReadingSeconds), r => Console.WriteLine(ReadingLine(r, options.ReadingMarkers)));
    var (baseline, read, validated, baseline2, read2) = (results[0], results[1], results[2], results[3], results[4]);
    var readCostUs = 1e6 / read.ReportsPerSecond - 1e6 / baseline.ReportsPerSecond;
    var validateCostUs = 1e6 / validated.ReportsPerSecond - 1e6 / read.ReportsPerSecond;
    var lines = new[]
    {
        F("   read / baseline: {0:0.00} (reading costs {1:0.0} us per report, {2:0.00} us per marker, beyond cloning and attaching)",
            read.ReportsPerSecond / baseline.ReportsPerSecond, readCostUs, readCostUs / options.ReadingMarkers),
        F("   validate + read / baseline: {0:0.00} (validation adds {1:0.0} us per report)",
            validated.ReportsPerSecond / baseline.ReportsPerSecond, validateCostUs),
        F("   2 threads / 1 thread: read x{0:0.00}, baseline x{1:0.00}; read / baseline on 2 threads: {2:0.00}",
            read2.ReportsPerSecond / read.ReportsPerSecond, baseline2.ReportsPerSecond / baseline.ReportsPerSecond,
            read2.ReportsPerSecond / baseline2.ReportsPerSecond),
    };
    foreach (var line in lines)
    {
        Console.WriteLine(line);
    }
    summary.Add(F("reading: {0:N0} reports/s of {1} markers on 1 thread ({2:N0} on 2), {3:0.00} of the baseline's {4:N0}",
        read.ReportsPerSecond, options.ReadingMarkers, read2.ReportsPerSecond, read.ReportsPerSecond / baseline.ReportsPerSecond, baseline.ReportsPerSecond));
}

if (options.EndToEnd)
{
    Console.WriteLine();
    Console.WriteLine(F(
        "2. End to end: {0} calls in flight on one channel, {1} markers per request, {2:0.#} s warm-up + {3:0.#} s measured per call kind",
        options.Concurrency, options.Markers, options.WarmupSeconds, options.DurationSeconds));
    await using var host = await MeshHost.StartAsync();
    Console.WriteLine($"   services: Requisition + ServiceRequest + ResultsInterpretation on {host.Address} (h2c), SQLite under {host.DataDirectory}");
    using var bench = new EndToEndBench(options, host.Address, Console.WriteLine);
    await bench.SetUpAsync();
    Console.WriteLine(LoadHeader);
    var e2e = await bench.RunAsync();
    var (submit, interpret, getResults) = (e2e.Submit, e2e.Interpret, e2e.GetResults);
    Console.WriteLine(F(
        "   SubmitResults / InterpretMarkers: throughput {0:0.000}, p50 x{1:0.0}, p99 x{2:0.0}, p99.9 x{3:0.0}, CPU per call x{4:0.0}, allocated per call x{5:0.0}",
        submit.Rate / interpret.Rate, submit.P50Ms / interpret.P50Ms, submit.P99Ms / interpret.P99Ms, submit.P999Ms / interpret.P999Ms,
        submit.CpuUsPerCall / interpret.CpuUsPerCall, submit.KbPerCall / interpret.KbPerCall));
    Console.WriteLine(F(
        "   SubmitResults / GetResults:       throughput {0:0.000}, p50 x{1:0.0}, p99 x{2:0.0}, CPU per call x{3:0.0}",
        submit.Rate / getResults.Rate, submit.P50Ms / getResults.P50Ms, submit.P99Ms / getResults.P99Ms, submit.CpuUsPerCall / getResults.CpuUsPerCall));
    if (e2e.Breakdown is { } breakdown)
    {
        PrintBreakdown(breakdown, options.BreakdownSeconds);
    }
    summary.Add(F("SubmitResults: {0:N0} calls/s, p50 {1:0.00} ms, p99 {2:0.00} ms, p99.9 {3:0.00} ms; {4:0.000} of InterpretMarkers' {5:N0} calls/s (p50 {6:0.00} ms, p99 {7:0.00} ms)",
        submit.Rate, submit.P50Ms, submit.P99Ms, submit.P999Ms, submit.Rate / interpret.Rate, interpret.Rate, interpret.P50Ms, interpret.P99Ms));
    if (submit.Errors + interpret.Errors + getResults.Errors > 0)
    {
        summary.Add("ERRORS during the measured windows: the figures above are not valid.");
    }
}

Console.WriteLine();
Console.WriteLine("Summary");
foreach (var line in summary)
{
    Console.WriteLine("  " + line);
}
return 0;

static void PrintBreakdown(IReadOnlyList<RpcTotals> totals, double seconds)
{
    const string Submit = "ResultsInterpretationService/SubmitResults";
    var submits = totals.FirstOrDefault(t => t.Side == "server" && t.Method == Submit)?.Calls ?? 0;
    Console.WriteLine();
    Console.WriteLine(F("   Where a SubmitResults goes ({0:0.#} s more of the same load with ASP.NET Core's request meter and grpc-dotnet's client activities on; not part of the figures above):", seconds));
    if (submits == 0)
    {
        Console.WriteLine("   (no SubmitResults completed)");
        return;
    }
    Console.WriteLine("   method                                            side    per submit   mean ms   ms per submit");
    foreach (var t in totals.OrderByDescending(t => t.Method == Submit).ThenBy(t => t.Method, StringComparer.Ordinal).ThenBy(t => t.Side, StringComparer.Ordinal))
    {
        Console.WriteLine(F("   {0,-49} {1,-7} {2,10:0.00} {3,9:0.000} {4,15:0.000}",
            t.Method, t.Side, (double)t.Calls / submits, t.MeanMs, t.TotalMs / submits));
    }

    double PerSubmit(string side, string method) => (totals.FirstOrDefault(t => t.Side == side && t.Method == method)?.TotalMs ?? 0) / submits;
    var server = PerSubmit("server", Submit);
    var client = PerSubmit("client", Submit);
    // The calls ResultsWorkflow and ResultsEffects make (MeshGateway); their own nested calls are inside them.
    var peers = PerSubmit("client", "RequisitionService/GetRequisition")
        + PerSubmit("client", "ServiceRequestService/RecordResults")
        + PerSubmit("client", "RequisitionService/RecordResultsStage");
    Console.WriteLine(F(
        "   per SubmitResults: {0:0.00} ms seen by the caller = {1:0.00} ms in the server request ({2:0.00} ms waiting on peer calls + {3:0.00} ms of its own: " +
        "validation, reading, its store, outbox) + {4:0.00} ms between client and server request",
        client, server, peers, server - peers, client - server));
}
