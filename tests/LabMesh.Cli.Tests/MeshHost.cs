using System.Diagnostics;
using Grpc.Net.Client;
using LabMesh.Testing;

namespace LabMesh.Cli.Tests;

/// <summary>
/// The all-in-one host as its own process on a free loopback port, with its embedded defaults (SQLite in a
/// fresh data directory, in-process cache and bus): what <c>labmesh</c> is pointed at by default. Started
/// once for the collection; its log lines are kept so a test can fail on an error the host logged.
/// </summary>
public sealed class MeshHost : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly string _workingDirectory = Directory.CreateTempSubdirectory("labmesh-cli-").FullName;
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<string> _log = [];
    private Process _process = null!;

    public string Address { get; private set; } = "";

    public int LogLineCount
    {
        get
        {
            lock (_log)
            {
                return _log.Count;
            }
        }
    }

    public async Task InitializeAsync()
    {
        var port = FreePort.Next();
        Address = $"http://127.0.0.1:{port}";
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = _workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Built.Assembly("services/LabMesh.AllInOne", "LabMesh.AllInOne.dll"));
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add(Address);
        start.ArgumentList.Add("--LabMesh:Storage:DataDirectory=" + Path.Combine(_workingDirectory, "data"));
        // `labmesh load` runs one caller as fast as it can: past the per-caller rate limit (LabMesh:Limits) by design.
        start.ArgumentList.Add("--LabMesh:Limits:PermitsPerSecond=0");
        // Trust TestCaller's key (the tests' own calls), which labmesh also signs with (LABMESH_DEV_KEY, see LabMeshCli).
        foreach (var (key, value) in TestCaller.HostSettings)
        {
            start.Environment[key.Replace(":", "__", StringComparison.Ordinal)] = value;
        }

        _process = Process.Start(start)!;
        _process.OutputDataReceived += (_, e) => OnLine(e.Data);
        _process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        await _listening.Task.WaitAsync(Timeout);
    }

    public async Task DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync().WaitAsync(Timeout);
        _process.Dispose();
        Directory.Delete(_workingDirectory, recursive: true);
    }

    public GrpcChannel CreateChannel() => GrpcChannel.ForAddress(Address);

    /// <summary>Fails when the host logged an error or a critical line since line <paramref name="from"/> (see <see cref="LogLineCount"/>).</summary>
    public void AssertNoErrorsLoggedSince(int from)
    {
        List<string> lines;
        lock (_log)
        {
            lines = _log.Skip(from).ToList();
        }

        var errors = lines.Select((line, i) => (line, i))
            .Where(l => l.line.StartsWith("fail:", StringComparison.Ordinal) || l.line.StartsWith("crit:", StringComparison.Ordinal))
            .Select(l => string.Join('\n', lines.Skip(l.i).Take(4)))
            .ToList();
        Assert.True(errors.Count == 0, "The host logged errors:\n" + string.Join("\n---\n", errors));
    }

    private void OnLine(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.Add(line);
        }

        // The welcome is printed once started; its last line is the ListRequisitions example.
        if (line.Contains("RequisitionService/ListRequisitions", StringComparison.Ordinal))
        {
            _listening.TrySetResult();
        }
    }
}

[CollectionDefinition(Name)]
public sealed class MeshCollection : ICollectionFixture<MeshHost>
{
    public const string Name = "mesh";
}

/// <summary>Where the solution's projects are built, beside this test assembly's configuration (bin/Release or bin/Debug).</summary>
internal static class Built
{
    public static string Assembly(string project, string fileName)
    {
        var testDirectory = new DirectoryInfo(AppContext.BaseDirectory);
        var framework = testDirectory.Name;
        var configuration = testDirectory.Parent!.Name;
        var root = testDirectory;
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "LabMesh.sln")))
        {
            root = root.Parent;
        }

        var path = Path.Combine(root!.FullName, project, "bin", configuration, framework, fileName);
        return File.Exists(path) ? path : throw new FileNotFoundException($"Build {project} first.", path);
    }
}
