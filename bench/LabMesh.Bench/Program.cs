using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using LabMesh.Bench;
using LabMesh.Bench.Servers;

if (args.Length > 0 && args[0] == "serve")
{
    return await ServerProcess.ServeAsync(args);
}
if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(BenchOptions.Usage);
    return 0;
}

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (Exception ex) when (ex is ArgumentException or FormatException)
{
    Console.Error.WriteLine(ex.Message);
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

// --pin: the client runs on CPU 1 and the servers on CPU 0. Affinity set from inside would only
// cover threads started later, so start this program again under taskset.
const string PinnedVariable = "LABMESH_BENCH_PINNED";
if (options.Pin && Environment.GetEnvironmentVariable(PinnedVariable) != "1")
{
    var (fileName, prefix) = ServerProcess.SelfCommand();
    var start = new ProcessStartInfo("taskset") { UseShellExecute = false };
    foreach (var arg in new[] { "-c", "1", fileName }.Concat(prefix).Concat(args))
    {
        start.ArgumentList.Add(arg);
    }
    start.Environment[PinnedVariable] = "1";
    using var pinned = Process.Start(start) ?? throw new InvalidOperationException("Could not start taskset.");
    await pinned.WaitForExitAsync();
    return pinned.ExitCode;
}

if (options.AllocProfile)
{
    AllocationProfiler.Start();
}

var payloads = new Payloads(options.RequestSize, options.ResponseSize, options.StreamMessages);
var loadAverage = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "n/a";
Console.WriteLine($"LabMesh.Bench  {DateTimeOffset.Now.ToString("yyyy-MM-dd HH:mm zzz", CultureInfo.InvariantCulture)}");
Console.WriteLine($"  machine: {Environment.ProcessorCount} cores visible, {RuntimeInformation.OSDescription}, .NET {Environment.Version}, load average {loadAverage}");
Console.WriteLine($"  args: {(options.CommandLine.Length == 0 ? "(defaults)" : options.CommandLine)}");
Console.WriteLine(string.Format(
    CultureInfo.InvariantCulture,
    "  load: {0} calls in flight over {1} connection(s); request {2} B, response {3} B, {4} msgs per stream; {5}s warm-up + {6}s measured per side, {7} round(s)",
    options.Concurrency, options.Connections, options.RequestSize, options.ResponseSize, options.StreamMessages,
    options.WarmupSeconds, options.DurationSeconds, options.Rounds));
Console.WriteLine(options.InProcess
    ? "  servers: in the bench process (CPU and allocation columns include client and server)"
    : $"  servers: child processes ({options.ServerGc} GC for .NET), Kestrel h2c on 127.0.0.1{(options.Pin ? "; servers on CPU 0, client/h2load on CPU 1" : "; client, h2load and server share all cores")}");
Console.WriteLine(string.Format(
    CultureInfo.InvariantCulture,
    "  own-server scenarios: gzip {0} B text-like payloads; large {1} B; many-streams {2} calls over one connection; grpcio via {3}",
    options.GzipSize, options.LargeSize, options.Streams, options.PythonPath));
Console.WriteLine("  columns: rate; call latency p50/p99; CPU time and bytes allocated per op (op = call, or message for streams) in the server and in the bench client");

await using var labMesh = await ServerProcess.StartAsync(ServerSettings.For(ServerKind.LabMesh, payloads, options), options);
await using var bare = await ServerProcess.StartAsync(ServerSettings.For(ServerKind.Bare, payloads, options), options);
Console.WriteLine($"  LabMesh server {labMesh.Address}, bare server {bare.Address}");

var runner = new Runner(options, payloads, labMesh, bare);
if (options.Scenarios.Any(s => !ScenarioInfo.Get(s).OwnServers))
{
    Console.WriteLine();
    Console.WriteLine("Checking every path once:");
    if (!await runner.CheckAsync())
    {
        Console.WriteLine("Some paths fail; their scenarios will report errors.");
    }

    Console.WriteLine();
    Console.WriteLine($"Priming every path for {options.PrimeSeconds.ToString(CultureInfo.InvariantCulture)}s...");
    await runner.PrimeAsync();
}

Console.WriteLine();
Report.PrintHeader();
foreach (var scenario in options.Scenarios)
{
    await runner.RunScenarioAsync(scenario);
}

var markdown = Report.Markdown(runner.Results);
Console.WriteLine();
Console.WriteLine($"Load average at the end: {Runner.LoadAverage()} (the bench alone brings 2 cores to about 4; the figures are trustworthy when the load was low before it started)");
Console.WriteLine("Summary (Markdown):");
Console.WriteLine();
Console.WriteLine(markdown);
if (options.MarkdownPath is not null)
{
    await File.WriteAllTextAsync(options.MarkdownPath, markdown);
}
return 0;
