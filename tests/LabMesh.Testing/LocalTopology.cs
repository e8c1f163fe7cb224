using System.Diagnostics;
using System.Globalization;
using Xunit;

namespace LabMesh.Testing;

/// <summary>
/// deploy/local's topology driven through its own scripts only (up.sh, ctl.sh, check.sh, down.sh) with a state
/// directory and port base of its own: the end-to-end tests' fixture (<see cref="LocalTopologyFixture"/>) and the
/// benchmarks' (bench/LabMesh.Bench.Gateway, bench/LabMesh.Chaos) topology. What this depends on: those commands and
/// their arguments, the pid files in <c>$STATE/run/PART.pid</c>, the logs in <c>$STATE/logs/PART.log</c>, the keys in
/// <c>$STATE/keys/</c> and the port layout of lib.sh; not on what the gateway is.
/// </summary>
public class LocalTopology
{
    public const string RedisPassword = "labmesh-local-only";

    /// <summary>The services, as lib.sh names them.</summary>
    public static readonly string[] Services = ["requisition", "servicerequest", "resultsinterpretation", "notification"];

    /// <summary>The replicas of each service.</summary>
    public static readonly int[] Replicas = [1, 2];

    private static readonly Dictionary<string, int> Offsets = new() { ["requisition"] = 11, ["servicerequest"] = 21, ["resultsinterpretation"] = 31, ["notification"] = 41 };

    private readonly Dictionary<string, string> _environment;

    /// <param name="state">LABMESH_LOCAL_STATE: the topology's files.</param>
    /// <param name="portBase">LABMESH_LOCAL_PORT_BASE: the first of its 100 ports.</param>
    /// <param name="build">Whether up.sh builds the services first (else LABMESH_LOCAL_NO_BUILD=1).</param>
    /// <param name="configuration">LABMESH_LOCAL_CONFIGURATION, the build the services run from; null: the scripts' own (Release).</param>
    /// <param name="environment">More variables for every script, which the replicas they start inherit.</param>
    public LocalTopology(string state, int portBase, bool build, string? configuration = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        State = state;
        PortBase = portBase;
        Configuration = configuration ?? "Release";
        _environment = new Dictionary<string, string>(environment ?? new Dictionary<string, string>())
        {
            ["LABMESH_LOCAL_STATE"] = state,
            ["LABMESH_LOCAL_PORT_BASE"] = portBase.ToString(CultureInfo.InvariantCulture),
            ["LABMESH_LOCAL_NO_BUILD"] = build ? "0" : "1",
        };
        if (configuration is not null)
        {
            _environment["LABMESH_LOCAL_CONFIGURATION"] = configuration;
        }
    }

    public static string Root => Repository.Root;

    public string State { get; }

    public int PortBase { get; }

    /// <summary>The build configuration the services and the <c>labmesh</c> command run from.</summary>
    public string Configuration { get; }

    /// <summary>Where each script's command line and output is appended (null: kept only in the <see cref="ScriptRun"/>).</summary>
    public string? ScriptLog { get; init; }

    /// <summary>The bound on one script's run; past it the script and what it started in the foreground are killed.</summary>
    public TimeSpan ScriptTimeout { get; init; } = Timeout.InfiniteTimeSpan;

    /// <summary>The gateway's gRPC (h2c) address, where the topology is called.</summary>
    public string Gateway => Url(PortBase);

    /// <summary>The gateway's REST listener (JSON over HTTP/1.1).</summary>
    public string RestGateway => Url(PortBase + 1);

    public int PostgresPort => PortBase + 54;

    public int RedisPort => PortBase + 79;

    /// <summary>Every replica's part name (<c>requisition-1</c>, ...).</summary>
    public static IEnumerable<string> ReplicaNames => Services.SelectMany(s => Replicas.Select(r => Replica(s, r)));

    public static string Replica(string service, int replica) => $"{service}-{replica.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>A replica's own gRPC address.</summary>
    public string Address(string service, int replica) => Url(PortBase + Offsets[service] + replica - 1);

    /// <summary>A replica's own gRPC address by its part name (<c>notification-2</c>).</summary>
    public string Address(string part)
    {
        var dash = part.LastIndexOf('-');
        return Address(part[..dash], int.Parse(part[(dash + 1)..], CultureInfo.InvariantCulture));
    }

    /// <summary>The ports the topology listens on (the gateway's two, PostgreSQL, Redis and every replica's gRPC port).</summary>
    public IEnumerable<int> Ports() =>
        [PortBase, PortBase + 1, PostgresPort, RedisPort, .. Offsets.Values.SelectMany(o => Replicas.Select(r => PortBase + o + r - 1))];

    /// <summary>The topology's signing key (PEM), made by up.sh.</summary>
    public string KeyPem => File.ReadAllText(Path.Combine(State, "keys", "signing-key.pem"));

    /// <summary>The same key in the file format the <c>labmesh</c> command reads (LABMESH_DEV_KEY).</summary>
    public string KeyFile => Path.Combine(State, "keys", "labmesh-local-key.json");

    /// <summary>The built <c>labmesh.dll</c> the topology's scripts use.</summary>
    public string Cli => Path.Combine(Root, "tools", "LabMesh.Cli", "bin", Configuration, "net10.0", "labmesh.dll");

    public Task<ScriptRun> UpAsync(CancellationToken cancellationToken = default) => RunAsync("up.sh", [], null, cancellationToken);

    /// <summary>down.sh, with --purge unless <paramref name="keepState"/>; never cancelled, so it runs to the end however the caller ends.</summary>
    public Task<ScriptRun> DownAsync(bool keepState = false) => RunAsync("down.sh", keepState ? [] : ["--purge"], null, CancellationToken.None);

    public Task<ScriptRun> CheckAsync(CancellationToken cancellationToken = default) => RunAsync("check.sh", [], null, cancellationToken);

    /// <summary><c>ctl.sh ACTION PART</c>, e.g. ("kill", "requisition-1"); <paramref name="extra"/> is added to its environment (a started replica's).</summary>
    public Task<ScriptRun> CtlRunAsync(string action, string part, IEnumerable<KeyValuePair<string, string>>? extra = null, CancellationToken cancellationToken = default) =>
        RunAsync("ctl.sh", [action, part], extra, cancellationToken);

    /// <summary><c>ctl.sh ACTION PART</c>; throws with its output when it fails.</summary>
    public async Task CtlAsync(string action, string part, CancellationToken cancellationToken = default)
    {
        var run = await CtlRunAsync(action, part, null, cancellationToken);
        if (run.ExitCode != 0)
        {
            throw new InvalidOperationException($"ctl.sh {action} {part} failed:\n{run}");
        }
    }

    /// <summary>The pid in a part's pid file (up.sh writes a replica's own process there: dotnet, or its Native AOT executable), alive or not.</summary>
    public int? Pid(string part)
    {
        var file = Path.Combine(State, "run", part + ".pid");
        return File.Exists(file) && int.TryParse(File.ReadAllText(file).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) ? pid : null;
    }

    /// <summary>The pid in a part's pid file when that process is alive (as lib.sh's running_pid), else null.</summary>
    public int? RunningPid(string part)
    {
        if (Pid(part) is not { } pid)
        {
            return null;
        }

        try
        {
            using var process = Process.GetProcessById(pid);
            return process.HasExited ? null : pid;
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    /// <summary>
    /// The services whose replicas run as Native AOT executables (lib.sh's LABMESH_LOCAL_AOT, or its default), each with
    /// the executable they run, as lib.sh says it in this topology's environment.
    /// </summary>
    public async Task<IReadOnlyDictionary<string, string>> AotExecutablesAsync(CancellationToken cancellationToken = default)
    {
        const string List = """source "$1" && for s in "${AOT_SERVICES[@]}"; do printf '%s %s\n' "$s" "$(aot_executable "$s")"; done""";
        await using var process = ChildProcess.Start("bash", ["-c", List, "lib.sh", Path.Combine(Root, "deploy", "local", "lib.sh")], Root, _environment, standardInput: false);
        var exitCode = await process.WaitForExitAsync(TimeSpan.FromSeconds(30), cancellationToken);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"lib.sh did not list its Native AOT services (exit {exitCode}):\n{string.Join('\n', process.StandardError)}");
        }

        return process.StandardOutput.Where(line => line.Length > 0).Select(line => line.Split(' ', 2)).ToDictionary(pair => pair[0], pair => pair[1]);
    }

    /// <summary>The last lines of a part's log (for a failure message).</summary>
    public string Log(string part, int lines = 60) => Tail(Path.Combine(State, "logs", part + ".log"), lines);

    /// <summary>Every log's last lines (for a failure message).</summary>
    public string Logs(int lines = 40) =>
        Directory.Exists(Path.Combine(State, "logs"))
            ? string.Join('\n', Directory.GetFiles(Path.Combine(State, "logs")).Select(f => $"--- {f}\n{Tail(f, lines)}"))
            : "";

    /// <summary>Lines of every replica's log at Error or above since the topology started.</summary>
    public IReadOnlyList<string> ErrorLines() =>
        [.. Directory.GetFiles(Path.Combine(State, "logs"), "*-?.log")
            .SelectMany(file => File.ReadLines(file).Where(line => line.StartsWith("fail:", StringComparison.Ordinal) || line.StartsWith("crit:", StringComparison.Ordinal))
            .Select(line => $"{Path.GetFileName(file)}: {line}"))];

    /// <summary>
    /// Runs deploy/local/<paramref name="script"/> with the topology's environment and <paramref name="extra"/>; on
    /// cancellation or past <see cref="ScriptTimeout"/> the script and what it started in the foreground are killed,
    /// so down.sh does not race it (down.sh then stops whatever it had already started).
    /// </summary>
    public async Task<ScriptRun> RunAsync(string script, IEnumerable<string> arguments, IEnumerable<KeyValuePair<string, string>>? extra = null, CancellationToken cancellationToken = default)
    {
        List<string> args = [.. arguments];
        var environment = new Dictionary<string, string>(_environment);
        foreach (var (key, value) in extra ?? [])
        {
            environment[key] = value;
        }

        await using var process = ChildProcess.Start("bash", [Path.Combine(Root, "deploy", "local", script), .. args], Root, environment, standardInput: false);
        var commandLine = $"{script} {string.Join(' ', args)}";
        try
        {
            var exitCode = await process.WaitForExitAsync(ScriptTimeout, cancellationToken);
            return new ScriptRun(exitCode, string.Join('\n', process.StandardOutput), string.Join('\n', process.StandardError));
        }
        finally
        {
            if (ScriptLog is not null)
            {
                await File.AppendAllTextAsync(ScriptLog, $"$ {commandLine}\n{string.Join('\n', process.StandardOutput.Concat(process.StandardError))}\n", CancellationToken.None);
            }
        }
    }

    private static string Url(int port) => $"http://127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}";

    private static string Tail(string file, int lines) =>
        File.Exists(file) ? string.Join('\n', File.ReadLines(file).TakeLast(lines)) : $"({file} does not exist)";
}

/// <summary>What one run of a deploy/local script did.</summary>
public sealed record ScriptRun(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

/// <summary>
/// The topology on a free range of loopback ports and a state directory of its own, up for a test collection and
/// stopped with <c>down.sh --purge</c> after it. The services and the <c>labmesh</c> command run from this build's
/// output (the test's configuration), and they trust <see cref="TestCaller"/>'s key too. LABMESH_E2E_KEEP_STATE=1
/// keeps the logs and data (in <see cref="LocalTopology.State"/>) for a look after a failure.
/// </summary>
public sealed class LocalTopologyFixture : LocalTopology, IAsyncLifetime
{
    public LocalTopologyFixture()
        : base(
            Path.Combine("/tmp", "labmesh-e2e-" + Guid.NewGuid().ToString("N")[..10]),
            FreePort.Range(100),
            build: false,
            configuration: new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name,
            environment: new Dictionary<string, string>
            {
                ["LABMESH_LOCAL_TRUST_KEY_ID"] = TestCaller.KeyId,
                ["LABMESH_LOCAL_TRUST_KEY_PEM"] = TestCaller.Key.ExportPublicKeyPem(),
            }) =>
        // up.sh also publishes the Native AOT executables (LABMESH_LOCAL_AOT) when they are not current: 1.5-4 minutes
        // once, before the 1-2 minutes of starting; the topology's later scripts take seconds.
        ScriptTimeout = TimeSpan.FromMinutes(8);

    public async Task InitializeAsync()
    {
        var up = await UpAsync();
        if (up.ExitCode != 0)
        {
            var logs = Logs();
            await DisposeAsync();
            throw new InvalidOperationException($"deploy/local/up.sh failed:\n{up}\n{logs}");
        }
    }

    public async Task DisposeAsync()
    {
        var down = await DownAsync(keepState: Environment.GetEnvironmentVariable("LABMESH_E2E_KEEP_STATE") == "1");
        if (down.ExitCode != 0)
        {
            throw new InvalidOperationException($"deploy/local/down.sh failed:\n{down}");
        }
    }
}
