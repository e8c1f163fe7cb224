using System.Runtime.InteropServices;
using System.Globalization;
using LabMesh.Chaos;
using LabMesh.Testing;

if (args is [BareGrpcHost.Mode, var port])
{
    return await BareGrpcHost.ServeAsync(int.Parse(port, CultureInfo.InvariantCulture));
}

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(Options.Usage);
    return 0;
}

Options options;
try
{
    options = Options.Parse(args);
}
catch (Exception ex) when (ex is ArgumentException or FormatException or OverflowException)
{
    Console.Error.WriteLine(ex.Message);
    Console.Error.WriteLine(Options.Usage);
    return 2;
}

var state = options.State ?? Path.Combine(Path.GetTempPath(), $"labmesh-chaos-{Environment.ProcessId}");
// Outside the state directory, which down.sh --purge deletes: the scripts' output stays for a failed run.
var scriptLog = Path.Combine(Path.GetTempPath(), $"labmesh-chaos-{Environment.ProcessId}.log");
var topology = new LocalTopology(state, options.PortBase, options.Build, environment: new Dictionary<string, string>
{
    // The receiver of this tool is on loopback, which the services' webhook allow-list refuses by default.
    ["LabMesh__Notification__Webhooks__AllowedNetworks__0"] = "127.0.0.0/8",
    // A handful of callers at full speed: the per-caller rate limit is not what is tested.
    ["LabMesh__Limits__PermitsPerSecond"] = "0",
})
{
    ScriptLog = scriptLog,
};

Console.WriteLine($"LabMesh.Chaos  {DateTimeOffset.Now:yyyy-MM-dd HH:mm zzz}");
Console.WriteLine($"  args: {(options.CommandLine.Length == 0 ? "(defaults)" : options.CommandLine)}");
Console.WriteLine($"  load average: {File.ReadAllText("/proc/loadavg").Trim()}");
Console.WriteLine($"  deploy/local: state {state}, port base {options.PortBase}; scripts' output in {scriptLog}");
// BASE+95: the bare grpc-dotnet host the start-up times are compared with.
var busy = topology.Ports().Append(options.PortBase + 95).Where(p => !FreePort.IsFree(p)).ToList();
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

try
{
    var passed = await new ChaosRun(topology, options, Console.WriteLine).RunAsync(stopping.Token);
    Console.WriteLine(passed ? "PASSED: every check held" : "FAILED: see the checks above");
    return passed ? 0 : 1;
}
catch (OperationCanceledException) when (stopping.IsCancellationRequested)
{
    return 130;
}
catch (ChaosFailedException ex)
{
    Console.Error.WriteLine("Failed: " + ex.Message);
    return 1;
}
finally
{
    Console.WriteLine($"  down.sh --purge ({state}) ...");
    var down = (await topology.DownAsync()).ExitCode;
    Console.WriteLine(down == 0 ? "  the topology is stopped and its state deleted" : $"  down.sh exited {down}: see {scriptLog}");
}
