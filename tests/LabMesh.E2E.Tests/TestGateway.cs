using System.Diagnostics;
using System.Globalization;
using LabMesh.Testing;

namespace LabMesh.E2E.Tests;

/// <summary>
/// A gateway process of a test's own (services/LabMesh.Gateway as deployed, in Production) in front of replicas it
/// names, on free loopback ports, with settings on its command line; and kill -STOP / -CONT of a topology process.
/// As deployed means the program the topology's own gateway runs, read from its command line: the Native AOT executable
/// or <c>dotnet</c> and the assembly, whichever deploy/local started.
/// </summary>
internal static class TestGateway
{
    /// <summary>Starts the gateway with <paramref name="cluster"/>'s destinations CLUSTER-1, -2, ... at <paramref name="replicas"/>.</summary>
    public static (ChildProcess Process, string Address, string RestAddress) Start(LocalTopology topology, string cluster, IReadOnlyList<string> replicas, IEnumerable<string> settings)
    {
        var address = string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{FreePort.Next()}");
        var rest = string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{FreePort.Next()}");
        var (program, arguments) = Deployed(topology);
        arguments.AddRange(["--Kestrel:Endpoints:Grpc:Url", address, "--Kestrel:Endpoints:Rest:Url", rest]);
        for (var i = 0; i < replicas.Count; i++)
        {
            arguments.AddRange([string.Create(CultureInfo.InvariantCulture, $"--ReverseProxy:Clusters:{cluster}:Destinations:{cluster}-{i + 1}:Address"), replicas[i]]);
        }

        arguments.AddRange(settings);
        var process = ChildProcess.Start(program, arguments, Repository.Root, new Dictionary<string, string> { ["ASPNETCORE_ENVIRONMENT"] = "Production" });
        return (process, address, rest);
    }

    /// <summary>The program the topology's gateway runs: its executable, or <c>dotnet</c> and the assembly (its settings, the <c>--</c> arguments, left out).</summary>
    private static (string Program, List<string> Arguments) Deployed(LocalTopology topology)
    {
        var pid = topology.Pid("gateway") ?? throw new InvalidOperationException("the topology's gateway is not running");
        var command = File.ReadAllText(string.Create(CultureInfo.InvariantCulture, $"/proc/{pid}/cmdline")).Split('\0', StringSplitOptions.RemoveEmptyEntries);
        var program = command[0];
        return Path.GetFileName(program) == "dotnet" ? (program, [command[1]]) : (program, []);
    }

    /// <summary>kill -STOP / -CONT of a process of the topology (by its pid), within <paramref name="bound"/>.</summary>
    public static async Task SignalAsync(string signal, int pid, TimeSpan bound)
    {
        using var kill = Process.Start("kill", ["-" + signal, pid.ToString(CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync().WaitAsync(bound);
        Assert.Equal(0, kill.ExitCode);
    }
}
