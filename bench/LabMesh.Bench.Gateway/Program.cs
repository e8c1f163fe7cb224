using System.Globalization;
using System.Runtime.InteropServices;
using LabMesh.Bench.Gateway;
using LabMesh.Testing;
using static LabMesh.Bench.Gateway.Report;

if (args is [BareHost.Mode, var port])
{
    return await BareHost.ServeAsync(int.Parse(port, CultureInfo.InvariantCulture));
}

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(GatewayBenchOptions.Usage);
    return 0;
}

GatewayBenchOptions options;
try
{
    options = GatewayBenchOptions.Parse(args);
}
catch (Exception ex) when (ex is ArgumentException or FormatException or OverflowException)
{
    Console.Error.WriteLine(ex.Message);
    Console.Error.WriteLine(GatewayBenchOptions.Usage);
    return 2;
}

var state = options.State ?? Path.Combine(Path.GetTempPath(), $"labmesh-bench-gateway-{Environment.ProcessId}");
// Outside the state directory, which down.sh --purge deletes: the scripts' output stays for a failed run.
var scriptLog = Path.Combine(Path.GetTempPath(), $"labmesh-bench-gateway-{Environment.ProcessId}.log");
// The replicas inherit the scripts' environment: the per-caller token bucket would otherwise answer
// RESOURCE_EXHAUSTED to a closed loop.
var topology = new LocalTopology(state, options.PortBase, options.Build, environment: new Dictionary<string, string> { ["LabMesh__Limits__PermitsPerSecond"] = "0" })
{
    ScriptLog = scriptLog,
};

Console.WriteLine($"LabMesh.Bench.Gateway  {DateTimeOffset.Now:yyyy-MM-dd HH:mm zzz}");
Console.WriteLine("  machine: " + Machine());
Console.WriteLine("  load average (1, 5, 15 min): " + LoadAverage());
Console.WriteLine($"  args: {(options.CommandLine.Length == 0 ? "(defaults)" : options.CommandLine)}");

var busy = topology.Ports().Concat(GatewayBench.BarePorts(options)).Where(p => !FreePort.IsFree(p)).ToList();
if (busy.Count > 0)
{
    Console.Error.WriteLine($"Ports already in use: {string.Join(", ", busy)}. Pick another --port-base.");
    return 1;
}

using var stopping = new CancellationTokenSource();
void Stop(PosixSignalContext context)
{
    context.Cancel = true;
    Console.WriteLine($"  {context.Signal}: stopping; the topology is taken down next");
    stopping.Cancel();
}

using var onInterrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
using var onTerminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
using var onHangUp = PosixSignalRegistration.Create(PosixSignal.SIGHUP, Stop);

var bench = new GatewayBench(topology, options, scriptLog, Console.WriteLine);
try
{
    await bench.RunAsync(stopping.Token);
    return 0;
}
catch (OperationCanceledException) when (stopping.IsCancellationRequested)
{
    return 130;
}
catch (Exception ex) when (ex is BenchFailedException)
{
    Console.Error.WriteLine("Failed: " + ex.Message);
    return 1;
}
finally
{
    await bench.StopBareHostsAsync();
    Console.WriteLine($"  down.sh --purge ({state}) ...");
    var down = (await topology.DownAsync()).ExitCode;
    Console.WriteLine(down == 0 ? "  the topology is stopped and its state deleted" : $"  down.sh exited {down}: see {scriptLog}");
    Console.WriteLine("  load average now: " + LoadAverage());
}
