using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace LabMesh.Chaos;

/// <summary>
/// deploy/local driven through its scripts' command lines only (up.sh, ctl.sh, down.sh), with a state directory
/// and port base of its own. What this depends on: those three commands and their arguments, the pid files in
/// <c>$STATE/run/PART.pid</c>, the key in <c>$STATE/keys/signing-key.pem</c>, and the port layout of lib.sh.
/// </summary>
internal sealed class Topology(string root, string state, int portBase, bool build, string scriptLog)
{
    public static readonly string[] Services = ["requisition", "servicerequest", "resultsinterpretation", "notification"];
    public static readonly int[] Replicas = [1, 2];
    private static readonly Dictionary<string, int> Offsets = new() { ["requisition"] = 11, ["servicerequest"] = 21, ["resultsinterpretation"] = 31, ["notification"] = 41 };
    private static readonly double ClockTicks = 100; // USER_HZ on Linux

    public string State => state;

    public string Gateway => $"http://127.0.0.1:{portBase}";

    public static IEnumerable<string> ReplicaNames => Services.SelectMany(s => Replicas.Select(r => $"{s}-{r}"));

    public string KeyPem => File.ReadAllText(Path.Combine(state, "keys", "signing-key.pem"));

    public string Address(string part) =>
        $"http://127.0.0.1:{portBase + Offsets[part[..part.LastIndexOf('-')]] + int.Parse(part[(part.LastIndexOf('-') + 1)..], CultureInfo.InvariantCulture) - 1}";

    public IEnumerable<int> Ports() =>
        [portBase, portBase + 54, portBase + 79, portBase + 95, .. Offsets.Values.SelectMany(o => Replicas.Select(r => portBase + o + r - 1))];

    public static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "LabMesh.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("LabMesh.sln not found above " + AppContext.BaseDirectory);
    }

    public Task<int> UpAsync(CancellationToken cancellationToken) => RunAsync("up.sh", [], cancellationToken);

    public Task<int> DownAsync() => RunAsync("down.sh", ["--purge"], CancellationToken.None);

    public Task<int> CtlAsync(string action, string part, CancellationToken cancellationToken = default) =>
        RunAsync("ctl.sh", [action, part], cancellationToken);

    /// <summary>
    /// <c>ctl.sh start PART</c> for a replica, timed from the process's own start (its start time in /proc, so the
    /// script's and dotnet's launch are inside) to its first SERVING answer to grpc.health.v1 Check, polled every
    /// 20 ms over one HTTP/2 connection (null if it did not answer within 120 s).
    /// </summary>
    public async Task<double?> StartTimedAsync(string part, CancellationToken cancellationToken)
    {
        var pidFile = Path.Combine(state, "run", part + ".pid");
        var before = File.Exists(pidFile) ? File.ReadAllText(pidFile).Trim() : "";
        var starting = CtlAsync("start", part, cancellationToken);
        var limit = Stopwatch.StartNew();
        string? pid = null;
        while (pid is null && limit.Elapsed < TimeSpan.FromSeconds(30))
        {
            await Task.Delay(5, cancellationToken);
            if (File.Exists(pidFile) && File.ReadAllText(pidFile).Trim() is { Length: > 0 } read && read != before)
            {
                pid = read;
            }
        }

        var seconds = pid is null ? null : await TimeToServingAsync(Address(part), pid, cancellationToken);
        await starting;
        return seconds;
    }

    /// <summary>Seconds from process <paramref name="pid"/>'s start to its first SERVING answer at <paramref name="address"/>; null after 120 s.</summary>
    public static async Task<double?> TimeToServingAsync(string address, string pid, CancellationToken cancellationToken)
    {
        using var channel = GrpcChannel.ForAddress(address);
        var health = new Health.HealthClient(channel);
        var started = ProcessStartSeconds(pid);
        var limit = Stopwatch.StartNew();
        while (started is not null && limit.Elapsed < TimeSpan.FromSeconds(120))
        {
            try
            {
                var answer = await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(1), cancellationToken: cancellationToken);
                if (answer.Status == HealthCheckResponse.Types.ServingStatus.Serving)
                {
                    return UptimeSeconds() - started.Value;
                }
            }
            catch (Grpc.Core.RpcException)
            {
                // Not listening or not ready yet.
            }

            await Task.Delay(20, cancellationToken);
        }

        return null;
    }

    public int? Pid(string part)
    {
        var file = Path.Combine(state, "run", part + ".pid");
        return File.Exists(file) && int.TryParse(File.ReadAllText(file).Trim(), CultureInfo.InvariantCulture, out var pid) ? pid : null;
    }

    internal static double? ProcessStartSeconds(string pid)
    {
        try
        {
            // Field 22 of /proc/PID/stat, after the parenthesised command name: start time in clock ticks since boot.
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[19], CultureInfo.InvariantCulture) / ClockTicks;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static double UptimeSeconds() =>
        double.Parse(File.ReadAllText("/proc/uptime").Split(' ')[0], CultureInfo.InvariantCulture);

    private async Task<int> RunAsync(string script, string[] arguments, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo(Path.Combine(root, "deploy", "local", script))
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = root,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.Environment["LABMESH_LOCAL_STATE"] = state;
        start.Environment["LABMESH_LOCAL_PORT_BASE"] = portBase.ToString(CultureInfo.InvariantCulture);
        start.Environment["LABMESH_LOCAL_NO_BUILD"] = build ? "0" : "1";
        // The receiver of this tool is on loopback, which the services' webhook allow-list refuses by default.
        start.Environment["LabMesh__Notification__Webhooks__AllowedNetworks__0"] = "127.0.0.0/8";
        // A handful of callers at full speed: the per-caller rate limit is not what is tested.
        start.Environment["LabMesh__Limits__PermitsPerSecond"] = "0";
        using var process = Process.Start(start) ?? throw new InvalidOperationException(script + " did not start");
        var output = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        var errors = process.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        finally
        {
            await File.AppendAllTextAsync(scriptLog, $"$ {script} {string.Join(' ', arguments)}\n{await output}{await errors}", CancellationToken.None);
        }

        return process.ExitCode;
    }
}
