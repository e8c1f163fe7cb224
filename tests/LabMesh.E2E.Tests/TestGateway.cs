using System.Diagnostics;
using System.Globalization;
using LabMesh.Testing;

namespace LabMesh.E2E.Tests;

/// <summary>
/// A gateway process of a test's own (services/LabMesh.Gateway as deployed, in Production) in front of replicas it
/// names, on free loopback ports, with settings on its command line; and kill -STOP / -CONT of a topology process.
/// </summary>
internal static class TestGateway
{
    /// <summary>Starts the gateway with <paramref name="cluster"/>'s destinations CLUSTER-1, -2, ... at <paramref name="replicas"/>.</summary>
    public static (ChildProcess Process, string Address, string RestAddress) Start(string cluster, IReadOnlyList<string> replicas, IEnumerable<string> settings)
    {
        var address = string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{FreePort.Next()}");
        var rest = string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{FreePort.Next()}");
        List<string> arguments =
        [
            Repository.Built("services/LabMesh.Gateway", "LabMesh.Gateway.dll"),
            "--Kestrel:Endpoints:Grpc:Url", address,
            "--Kestrel:Endpoints:Rest:Url", rest,
        ];
        for (var i = 0; i < replicas.Count; i++)
        {
            arguments.AddRange([string.Create(CultureInfo.InvariantCulture, $"--ReverseProxy:Clusters:{cluster}:Destinations:{cluster}-{i + 1}:Address"), replicas[i]]);
        }

        arguments.AddRange(settings);
        var process = ChildProcess.Start("dotnet", arguments, Repository.Root, new Dictionary<string, string> { ["ASPNETCORE_ENVIRONMENT"] = "Production" });
        return (process, address, rest);
    }

    /// <summary>kill -STOP / -CONT of a process of the topology (by its pid), within <paramref name="bound"/>.</summary>
    public static async Task SignalAsync(string signal, int pid, TimeSpan bound)
    {
        using var kill = Process.Start("kill", ["-" + signal, pid.ToString(CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync().WaitAsync(bound);
        Assert.Equal(0, kill.ExitCode);
    }
}
