using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using LabMesh.Testing;

namespace LabMesh.E2E.Tests;

/// <summary>
/// The topology of <c>deploy/local</c>, started with its own <c>up.sh</c> on a free range of loopback ports
/// and a state directory of its own, operated with <c>ctl.sh</c> and stopped with <c>down.sh --purge</c>.
/// The services and the <c>labmesh</c> command run from this build's output (the test's configuration).
/// </summary>
public sealed class LocalTopology : IAsyncLifetime
{
    private static readonly TimeSpan ScriptTimeout = TimeSpan.FromMinutes(4);

    private readonly Dictionary<string, string> _environment;

    public LocalTopology()
    {
        Root = FindRoot();
        var testDirectory = new DirectoryInfo(AppContext.BaseDirectory);
        Configuration = testDirectory.Parent!.Name;
        PortBase = FreePortRange();
        State = Path.Combine("/tmp", "labmesh-e2e-" + Guid.NewGuid().ToString("N")[..10]);
        _environment = new Dictionary<string, string>
        {
            ["LABMESH_LOCAL_STATE"] = State,
            ["LABMESH_LOCAL_PORT_BASE"] = PortBase.ToString(CultureInfo.InvariantCulture),
            ["LABMESH_LOCAL_CONFIGURATION"] = Configuration,
            ["LABMESH_LOCAL_NO_BUILD"] = "1",
            // The topology trusts this test process's key too, so TestCaller's tokens are let in.
            ["LABMESH_LOCAL_TRUST_KEY_ID"] = TestCaller.KeyId,
            ["LABMESH_LOCAL_TRUST_KEY_PEM"] = TestCaller.Key.ExportPublicKeyPem(),
        };
    }

    public string Root { get; }

    public string Configuration { get; }

    public int PortBase { get; }

    public string State { get; }

    /// <summary>The gateway (services/LabMesh.Gateway), where every call of these tests goes.</summary>
    public string Gateway => $"http://127.0.0.1:{PortBase.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The gateway's REST listener (HTTP/1.1).</summary>
    public string RestGateway => $"http://127.0.0.1:{(PortBase + 1).ToString(CultureInfo.InvariantCulture)}";

    /// <summary>The topology's key file (made by up.sh), with which the <c>labmesh</c> command signs its tokens.</summary>
    public string KeyFile => Path.Combine(State, "keys", "labmesh-local-key.json");

    /// <summary>The built <c>labmesh.dll</c>.</summary>
    public string Cli => Path.Combine(Root, "tools", "LabMesh.Cli", "bin", Configuration, "net10.0", "labmesh.dll");

    public async Task InitializeAsync()
    {
        var up = await RunAsync("up.sh");
        if (up.ExitCode != 0)
        {
            var logs = Directory.Exists(Path.Combine(State, "logs"))
                ? string.Join('\n', Directory.GetFiles(Path.Combine(State, "logs")).Select(f => $"--- {f}\n{Tail(f, 40)}"))
                : "";
            await DisposeAsync();
            throw new InvalidOperationException($"deploy/local/up.sh failed:\n{up}\n{logs}");
        }
    }

    public async Task DisposeAsync()
    {
        // LABMESH_E2E_KEEP_STATE=1 keeps the logs and data (in State) for a look after a failure.
        var down = Environment.GetEnvironmentVariable("LABMESH_E2E_KEEP_STATE") == "1" ? await RunAsync("down.sh") : await RunAsync("down.sh", "--purge");
        if (down.ExitCode != 0)
        {
            throw new InvalidOperationException($"deploy/local/down.sh failed:\n{down}");
        }
    }

    /// <summary><c>ctl.sh ACTION PART</c>, e.g. ("kill", "requisition-1"); throws when it fails.</summary>
    public async Task CtlAsync(string action, string part)
    {
        var run = await RunAsync("ctl.sh", action, part);
        if (run.ExitCode != 0)
        {
            throw new InvalidOperationException($"ctl.sh {action} {part} failed:\n{run}");
        }
    }

    public Task<ScriptRun> CheckAsync() => RunAsync("check.sh");

    /// <summary>The pid in a part's pid file when that process is alive (as lib.sh's running_pid), else null.</summary>
    public int? RunningPid(string part)
    {
        var file = Path.Combine(State, "run", part + ".pid");
        if (!File.Exists(file) || !int.TryParse(File.ReadAllText(file).Trim(), CultureInfo.InvariantCulture, out var pid))
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

    /// <summary>The last lines of a part's log (for a failure message).</summary>
    public string Log(string part) => Tail(Path.Combine(State, "logs", part + ".log"), 60);

    /// <summary>Lines of every replica's log at Error or above since the topology started.</summary>
    public IReadOnlyList<string> ErrorLines() =>
        [.. Directory.GetFiles(Path.Combine(State, "logs"), "*-?.log")
            .SelectMany(file => File.ReadLines(file).Where(line => line.StartsWith("fail:", StringComparison.Ordinal) || line.StartsWith("crit:", StringComparison.Ordinal))
            .Select(line => $"{Path.GetFileName(file)}: {line}"))];

    public async Task<ScriptRun> RunAsync(string script, params string[] args)
    {
        var start = new ProcessStartInfo("bash")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(Root, "deploy", "local", script));
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        foreach (var (key, value) in _environment)
        {
            start.Environment[key] = value;
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(ScriptTimeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"deploy/local/{script} {string.Join(' ', args)} did not finish within {ScriptTimeout.TotalMinutes} min.");
        }

        return new ScriptRun(process.ExitCode, await stdout, await stderr);
    }

    private static string Tail(string file, int lines) =>
        File.Exists(file) ? string.Join('\n', File.ReadLines(file).TakeLast(lines)) : $"({file} does not exist)";

    private static string FindRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "LabMesh.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("LabMesh.sln not found above the test directory.");
    }

    /// <summary>
    /// A base port B (a multiple of 100 in 20000-59900) such that every port the topology uses (B+0 .. B+99)
    /// is free on loopback now.
    /// </summary>
    private static int FreePortRange()
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var candidate = Random.Shared.Next(200, 600) * 100;
            if (Enumerable.Range(candidate, 100).All(IsFree))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException("No free range of 100 loopback ports found.");
    }

    private static bool IsFree(int port)
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

/// <summary>What one run of a deploy/local script did.</summary>
public sealed record ScriptRun(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Stdout}\n--- stderr\n{Stderr}";
}

[CollectionDefinition(Name)]
public sealed class LocalTopologyCollection : ICollectionFixture<LocalTopology>
{
    public const string Name = "deploy/local";
}
