using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace LabMesh.Interop.Tests;

/// <summary>
/// Node's @grpc/grpc-js and the interop scripts in the source tree (<c>tests/LabMesh.Interop/node/</c>,
/// found by walking up from the test assembly). The packages are pinned by that folder's
/// package-lock.json; node_modules is not committed, so the first test that needs Node runs
/// <c>npm ci</c> there once per run, under a lock (in-process and across processes) so parallel test
/// classes and concurrent runs do not race. A missing node or npm, or a failed install, fails the
/// test with the reason: CI installs them, so their absence is a broken machine, never a reason to skip.
/// </summary>
internal static class NodeGrpc
{
    private const string InstallHint = "apt-get install -y nodejs npm";
    private const string ProbeOk = "node-grpc-ok ";

    // Loads both packages and compares their installed versions with package.json's exact pins.
    private const string ProbeScript = """
        const fs = require('fs'), path = require('path');
        const wanted = JSON.parse(fs.readFileSync('package.json', 'utf8')).dependencies;
        const found = [];
        for (const name of Object.keys(wanted)) {
          let version;
          try {
            version = JSON.parse(fs.readFileSync(path.join('node_modules', name, 'package.json'), 'utf8')).version;
            require(path.resolve('node_modules', name));
          } catch (e) { console.log('missing ' + name + ': ' + e.message); process.exit(4); }
          if (version !== wanted[name]) { console.log(name + ' ' + version + ' installed, ' + wanted[name] + ' pinned'); process.exit(4); }
          found.push(name + '@' + version);
        }
        console.log('node-grpc-ok ' + process.version + ' ' + found.join(' '));
        """;

    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan InstallTimeout = TimeSpan.FromMinutes(5);

    // Waiting for the lock, two probes and an install, each bounded on its own.
    private static readonly TimeSpan RequireTimeout = 2 * InstallTimeout + 3 * ProbeTimeout;
    private static readonly Lazy<Task<string?>> Problem = new(FindProblemAsync);
    private static readonly Lazy<string?> FoundDirectory = new(FindDirectory);
    private static readonly Lazy<string?> NodePath = new(() => FindExecutable("node"));
    private static readonly Lazy<string?> NpmPath = new(() => FindExecutable("npm"));

    /// <summary>tests/LabMesh.Interop/node in the source tree (null when the tree is not above the test assembly).</summary>
    public static string? ScriptDirectory => FoundDirectory.Value;

    public static string Node => NodePath.Value ?? "node";

    public static string ClientScript => Path.Combine(ScriptDirectory ?? ".", "interop_client.js");

    public static string ServerScript => Path.Combine(ScriptDirectory ?? ".", "interop_server.js");

    /// <summary>What was installed and probed, for failure messages ("node v20... @grpc/grpc-js@1.14.7 ...").</summary>
    public static string Versions { get; private set; } = "(not probed)";

    /// <summary>Fails the calling test unless node, npm and the pinned packages are all usable
    /// (running <c>npm ci</c> first when node_modules is missing or stale).</summary>
    public static async Task RequireAsync()
    {
        var problem = await Problem.Value.WaitAsync(RequireTimeout);
        if (problem is not null)
        {
            Assert.Fail(problem);
        }
    }

    /// <summary>Runs interop_client.js for the cases and fails with its output unless it exits 0.</summary>
    public static async Task RunClientAsync(string host, int port, string testCases, bool useTls = false, string? caFile = null, string? hostOverride = null, TimeSpan? timeout = null, string? serverOutput = null)
    {
        await RequireAsync();
        List<string> arguments = [ClientScript, "--server_host", host, "--server_port", port.ToString(CultureInfo.InvariantCulture), "--test_case", testCases];
        if (useTls)
        {
            arguments.Add("--use_tls");
            if (caFile is not null)
            {
                arguments.AddRange(["--ca_file", caFile]);
            }
        }
        if (hostOverride is not null)
        {
            arguments.AddRange(["--server_host_override", hostOverride]);
        }
        await using var process = ExternalProcess.Start(Node, arguments, ScriptDirectory);
        var exitCode = await process.WaitForExitAsync(timeout ?? TimeSpan.FromSeconds(90));
        Assert.True(exitCode == 0,
            $"grpc-js client failed ({testCases}, exit code {exitCode}; {Versions}): {process.CommandLine}\n{process.Describe()}" +
            (serverOutput is null ? "" : $"\n--- server ---\n{serverOutput}"));
    }

    private static async Task<string?> FindProblemAsync()
    {
        if (NodePath.Value is null)
        {
            return $"node is not on PATH (nor /usr/bin/node); the Node interop tests need Node.js and npm: {InstallHint}";
        }
        if (NpmPath.Value is null)
        {
            return $"npm is not on PATH (nor /usr/bin/npm); the Node interop tests install @grpc/grpc-js with it: {InstallHint}";
        }
        if (ScriptDirectory is null || !File.Exists(ClientScript) || !File.Exists(ServerScript))
        {
            return $"tests/LabMesh.Interop/node (interop_client.js, interop_server.js) was not found above {AppContext.BaseDirectory}; the Node tests run from the source tree.";
        }

        // One install per machine and folder at a time: test classes in this process share the
        // Lazy, other processes (a concurrent run in the same checkout) wait on the lock file.
        var lockPath = Path.Combine(Path.GetTempPath(), $"labmesh-npm-ci-{Hash(ScriptDirectory)}.lock");
        await using var gate = await AcquireAsync(lockPath, InstallTimeout);
        if (gate is null)
        {
            return $"Timed out after {InstallTimeout.TotalMinutes:0} min waiting for another process's npm ci in {ScriptDirectory} (lock {lockPath}).";
        }

        var (ok, probeOutput) = await ProbeAsync();
        if (ok)
        {
            return null;
        }
        await using (var install = ExternalProcess.Start(NpmPath.Value, ["ci", "--no-audit", "--no-fund", "--prefer-offline"], ScriptDirectory))
        {
            int exitCode;
            try
            {
                exitCode = await install.WaitForExitAsync(InstallTimeout);
            }
            catch (TimeoutException e)
            {
                return $"npm ci in {ScriptDirectory} did not finish: {e.Message}";
            }
            if (exitCode != 0)
            {
                return $"npm ci in {ScriptDirectory} failed (exit code {exitCode}); it needs the npm registry or a warm npm cache.\n" +
                       $"before: {probeOutput}\n{install.Describe()}";
            }
        }
        (ok, probeOutput) = await ProbeAsync();
        return ok ? null : $"After npm ci, {ScriptDirectory} still lacks the pinned @grpc packages: {probeOutput}";
    }

    private static async Task<(bool Ok, string Output)> ProbeAsync()
    {
        await using var probe = ExternalProcess.Start(Node, ["-e", ProbeScript], ScriptDirectory);
        int exitCode;
        try
        {
            exitCode = await probe.WaitForExitAsync(ProbeTimeout);
        }
        catch (TimeoutException e)
        {
            return (false, e.Message);
        }
        var line = probe.StandardOutput.Split('\n').FirstOrDefault(l => l.StartsWith(ProbeOk, StringComparison.Ordinal));
        if (exitCode == 0 && line is not null)
        {
            Versions = line[ProbeOk.Length..].Trim();
            return (true, line);
        }
        return (false, $"exit code {exitCode}\n{probe.Describe()}");
    }

    /// <summary>An exclusive lock on <paramref name="path"/> (flock on Unix), or null on timeout.</summary>
    private static async Task<FileStream?> AcquireAsync(string path, TimeSpan timeout)
    {
        var until = DateTime.UtcNow + timeout;
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException) when (DateTime.UtcNow < until)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(250));
            }
            catch (IOException)
            {
                return null;
            }
        }
    }

    private static string? FindDirectory()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "tests", "LabMesh.Interop", "node");
            if (File.Exists(Path.Combine(candidate, "package.json")))
            {
                return candidate;
            }
        }
        return null;
    }

    /// <summary>The first <paramref name="name"/> on PATH, else Debian's /usr/bin one, else null.</summary>
    private static string? FindExecutable(string name)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        foreach (var directory in path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, name);
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        var debian = Path.Combine("/usr/bin", name);
        return File.Exists(debian) ? debian : null;
    }

    private static string Hash(string text) => Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..16];
}
