using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace LabMesh.Bench.Gateway;

/// <summary>
/// deploy/local's topology, driven through its own scripts (up.sh, ctl.sh, down.sh) with a state directory
/// and port base of its own. The replicas inherit the environment the scripts are given, which is how the
/// rate limit is turned off for the benchmark.
/// </summary>
internal sealed class LocalTopology
{
    public const string RedisPassword = "labmesh-local-only";
    public static readonly string[] Services = ["requisition", "servicerequest", "resultsinterpretation", "notification"];
    public static readonly int[] Replicas = [1, 2];
    private static readonly Dictionary<string, int> Offsets = new() { ["requisition"] = 11, ["servicerequest"] = 21, ["resultsinterpretation"] = 31, ["notification"] = 41 };

    private readonly Dictionary<string, string> _environment;

    public LocalTopology(string root, string state, int portBase, bool build)
    {
        Root = root;
        State = state;
        PortBase = portBase;
        _environment = new Dictionary<string, string>
        {
            ["LABMESH_LOCAL_STATE"] = state,
            ["LABMESH_LOCAL_PORT_BASE"] = portBase.ToString(CultureInfo.InvariantCulture),
            ["LABMESH_LOCAL_NO_BUILD"] = build ? "0" : "1",
            // The per-caller token bucket would otherwise answer RESOURCE_EXHAUSTED to a closed loop.
            ["LabMesh__Limits__PermitsPerSecond"] = "0",
        };
    }

    public string Root { get; }

    public string State { get; }

    public int PortBase { get; }

    public string Gateway => $"http://127.0.0.1:{PortBase}";

    public int RedisPort => PortBase + 79;

    public IReadOnlyDictionary<string, string> Environment => _environment;

    public static string Replica(string service, int replica) => $"{service}-{replica}";

    public string Address(string service, int replica) => $"http://127.0.0.1:{PortBase + Offsets[service] + replica - 1}";

    public string KeyPem => File.ReadAllText(Path.Combine(State, "keys", "signing-key.pem"));

    /// <summary>The repository root: the first directory above this executable holding LabMesh.sln.</summary>
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

    /// <summary>The ports the topology would take that something already listens on.</summary>
    public IReadOnlyList<int> BusyPorts()
    {
        var ports = new List<int> { PortBase, PortBase + 54, RedisPort };
        foreach (var offset in Offsets.Values)
        {
            ports.AddRange([PortBase + offset, PortBase + offset + 1]);
        }

        return [.. ports.Where(p => !IsFree(p))];
    }

    public Task<int> UpAsync(string log, CancellationToken cancellationToken) => RunAsync("up.sh", [], null, log, cancellationToken);

    /// <summary>down.sh --purge; never cancelled, so it runs to the end however the benchmark ends.</summary>
    public Task<int> DownAsync(string log) => RunAsync("down.sh", ["--purge"], null, log, CancellationToken.None);

    /// <summary>Stops a replica (graceful) and starts it again with <paramref name="extra"/> added to its environment.</summary>
    public async Task<int> RestartAsync(string replica, IEnumerable<KeyValuePair<string, string>> extra, string log, CancellationToken cancellationToken)
    {
        var stopped = await RunAsync("ctl.sh", ["stop", replica], null, log, cancellationToken);
        return stopped != 0 ? stopped : await RunAsync("ctl.sh", ["start", replica], extra, log, cancellationToken);
    }

    /// <summary>The pid in a part's pid file (up.sh writes the replica's own dotnet process there).</summary>
    public int? Pid(string part)
    {
        var file = Path.Combine(State, "run", part + ".pid");
        return File.Exists(file) && int.TryParse(File.ReadAllText(file).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : null;
    }

    /// <summary>Redis INFO fields (name -> value) of the given sections, through redis-cli.</summary>
    public async Task<Dictionary<string, string>> RedisInfoAsync(params string[] sections)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var section in sections)
        {
            var start = new ProcessStartInfo("redis-cli") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in new[] { "--no-auth-warning", "-a", RedisPassword, "-p", RedisPort.ToString(CultureInfo.InvariantCulture), "INFO", section })
            {
                start.ArgumentList.Add(arg);
            }

            using var process = Process.Start(start) ?? throw new InvalidOperationException("redis-cli did not start");
            var output = await process.StandardOutput.ReadToEndAsync();
            await process.WaitForExitAsync();
            foreach (var line in output.Split('\n', StringSplitOptions.TrimEntries))
            {
                if (line.Split(':', 2) is [var name, var value] && !name.StartsWith('#'))
                {
                    fields[name] = value;
                }
            }
        }

        return fields;
    }

    private async Task<int> RunAsync(string script, string[] args, IEnumerable<KeyValuePair<string, string>>? extra, string log, CancellationToken cancellationToken)
    {
        var start = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = Root };
        start.ArgumentList.Add(Path.Combine(Root, "deploy", "local", script));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in _environment.Concat(extra ?? []))
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("bash did not start");
        await using var writer = new StreamWriter(log, append: true) { AutoFlush = true };
        await writer.WriteLineAsync($"$ {script} {string.Join(' ', args)}");
        var lines = new object();
        void Copy(object sender, DataReceivedEventArgs e)
        {
            if (e.Data is not null)
            {
                lock (lines)
                {
                    writer.WriteLine(e.Data);
                }
            }
        }

        process.OutputDataReceived += Copy;
        process.ErrorDataReceived += Copy;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // Stopped mid-way (Ctrl+C, SIGTERM): end the script and what it started in the foreground, so down.sh
            // does not race it; down.sh then stops whatever it had already started.
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync(CancellationToken.None);
            throw;
        }

        process.WaitForExit();
        return process.ExitCode;
    }

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
}
