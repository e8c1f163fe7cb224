using System.Security.Cryptography;
using System.Text;
using LabMesh.Testing;

namespace LabMesh.CrossLanguage.Tests;

/// <summary>
/// <c>node/labmesh_client.js</c> on Node's @grpc/grpc-js, pinned by that folder's package-lock.json.
/// node_modules is not committed: the first test that needs it runs <c>npm ci</c> there, once per
/// run and under a lock (in this process and across processes), unless the pinned versions are
/// installed already. A missing node or npm or a failed install fails the test with the reason.
/// </summary>
public sealed class NodeClient : ClientScript
{
    public static readonly NodeClient Instance = new();

    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan InstallTimeout = TimeSpan.FromMinutes(4);

    // Every dependency of package.json installed at its exact pin, and loadable.
    private const string Probe = """
        const fs = require('fs'), path = require('path');
        const pins = JSON.parse(fs.readFileSync('package.json', 'utf8')).dependencies;
        for (const [name, pin] of Object.entries(pins)) {
          let version;
          try {
            version = JSON.parse(fs.readFileSync(path.join('node_modules', name, 'package.json'), 'utf8')).version;
            require(path.resolve('node_modules', name));
          } catch (e) { console.log(name + ': ' + e.message); process.exit(3); }
          if (version !== pin) { console.log(name + ' ' + version + ' is installed, ' + pin + ' is pinned'); process.exit(3); }
        }
        console.log('installed ' + process.version);
        """;

    private readonly Lazy<Task<string?>> _problem;

    private NodeClient() => _problem = new(InstallAsync);

    public override string Language => "node";

    private static string ScriptDirectory => Path.Combine(Repository.Root, "tests", "LabMesh.CrossLanguage.Tests", "node");

    protected override async Task<(string FileName, List<string> Arguments, string WorkingDirectory)> PrepareAsync()
    {
        if (await _problem.Value.WaitAsync(InstallTimeout + 3 * ProbeTimeout) is { } problem)
        {
            Assert.Fail(problem);
        }

        return (Executable("node")!, [Path.Combine(ScriptDirectory, "labmesh_client.js")], ScriptDirectory);
    }

    private static async Task<string?> InstallAsync()
    {
        const string hint = "apt-get install nodejs npm (tools/test.sh does)";
        if (Executable("node") is not { } node)
        {
            return $"node is not on PATH: {hint}.";
        }

        if (Executable("npm") is not { } npm)
        {
            return $"npm is not on PATH: {hint}.";
        }

        // Another run in the same checkout may be installing: wait for its lock.
        var lockPath = Path.Combine(Path.GetTempPath(), $"labmesh-xlang-npm-{Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(ScriptDirectory)))[..16]}.lock");
        await using var gate = await LockAsync(lockPath, InstallTimeout);
        if (gate is null)
        {
            return $"Another process held {lockPath} (npm ci in {ScriptDirectory}) for over {InstallTimeout.TotalMinutes:0} min.";
        }

        var (installed, before) = await ProbeAsync(node);
        if (installed)
        {
            return null;
        }

        await using (var install = ChildProcess.Start(npm, ["ci", "--no-audit", "--no-fund", "--prefer-offline"], ScriptDirectory))
        {
            var exitCode = await install.WaitForExitAsync(InstallTimeout);
            if (exitCode != 0)
            {
                return $"npm ci in {ScriptDirectory} failed (exit code {exitCode}); it needs the npm registry or an npm cache holding the pins.\n" +
                       $"Before it: {before}\n{install.Describe()}";
            }
        }

        var (ok, after) = await ProbeAsync(node);
        return ok ? null : $"After npm ci, {ScriptDirectory} still lacks a pinned package: {after}";
    }

    private static async Task<(bool Ok, string Output)> ProbeAsync(string node)
    {
        await using var probe = ChildProcess.Start(node, ["-e", Probe], ScriptDirectory);
        var exitCode = await probe.WaitForExitAsync(ProbeTimeout);
        return (exitCode == 0, string.Join('\n', probe.StandardOutput.Concat(probe.StandardError)));
    }

    /// <summary>An exclusive lock on <paramref name="path"/>, or null when it stays taken for <paramref name="timeout"/>.</summary>
    private static async Task<FileStream?> LockAsync(string path, TimeSpan timeout)
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
                // Polling a lock held by another process: there is no event to wait for.
                await Task.Delay(TimeSpan.FromMilliseconds(250));
            }
            catch (IOException)
            {
                return null;
            }
        }
    }

    /// <summary>The first <paramref name="name"/> on PATH, else Debian's, else null.</summary>
    private static string? Executable(string name)
    {
        var path = Environment.GetEnvironmentVariable("PATH") ?? "";
        return path.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(directory => Path.Combine(directory, name))
            .Append(Path.Combine("/usr/bin", name))
            .FirstOrDefault(File.Exists);
    }
}
