using System.Diagnostics;
using LabMesh.Security.Identity;
using LabMesh.Testing;

namespace LabMesh.Identity.Tests;

/// <summary>
/// The all-in-one host as its own process with no key configured: it makes a development key under its
/// data directory, and <c>labmesh</c> run from the same directory signs its calls with it by itself.
/// </summary>
public sealed class DevelopmentFlowTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly string _workingDirectory = Directory.CreateTempSubdirectory("labmesh-devflow-").FullName;
    private readonly TaskCompletionSource _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Process _host = null!;
    private string _address = "";

    public async Task InitializeAsync()
    {
        _address = $"http://127.0.0.1:{FreePort.Next()}";
        var start = Start(Built("services/LabMesh.AllInOne", "LabMesh.AllInOne.dll"), _workingDirectory, "--urls", _address);
        _host = Process.Start(start)!;
        _host.OutputDataReceived += (_, e) =>
        {
            if (e.Data?.Contains("RequisitionService/ListRequisitions", StringComparison.Ordinal) == true)
            {
                _listening.TrySetResult();
            }
        };
        _host.ErrorDataReceived += (_, _) => { };
        _host.BeginOutputReadLine();
        _host.BeginErrorReadLine();
        await _listening.Task.WaitAsync(Timeout);
    }

    public async Task DisposeAsync()
    {
        if (!_host.HasExited)
        {
            _host.Kill(entireProcessTree: true);
        }

        await _host.WaitForExitAsync().WaitAsync(Timeout);
        _host.Dispose();
        Directory.Delete(_workingDirectory, recursive: true);
    }

    [Fact]
    public async Task Cli_InTheHostsDirectory_SignsWithTheDevelopmentKey_ElsewhereIsToldWhatToDo()
    {
        Assert.True(File.Exists(Path.Combine(_workingDirectory, "data", SecurityKeys.DevelopmentKeyFileName)));

        // Authenticated: the requisition simply does not exist.
        var here = await RunCliAsync(_workingDirectory, "status", "no-such-requisition", "--target", _address);
        var elsewhere = await RunCliAsync(Path.GetTempPath(), "status", "no-such-requisition", "--target", _address);

        Assert.Equal(1, here.ExitCode);
        Assert.Contains("NOT_FOUND", here.Stderr, StringComparison.Ordinal);
        Assert.Equal(1, elsewhere.ExitCode);
        Assert.Contains("UNAUTHENTICATED", elsewhere.Stderr, StringComparison.Ordinal);
        Assert.Contains("--token", elsewhere.Stderr, StringComparison.Ordinal);
    }

    private static async Task<(int ExitCode, string Stderr)> RunCliAsync(string workingDirectory, params string[] args)
    {
        var start = Start(Built("tools/LabMesh.Cli", "labmesh.dll"), workingDirectory, args);
        start.Environment.Remove("LABMESH_TOKEN");
        start.Environment.Remove("LABMESH_DEV_KEY");
        start.Environment["NO_COLOR"] = "1";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(Timeout);
        await stdout.WaitAsync(Timeout);
        return (process.ExitCode, await stderr.WaitAsync(Timeout));
    }

    private static ProcessStartInfo Start(string assembly, string workingDirectory, params string[] args)
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(assembly);
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return start;
    }

    private static string Built(string project, string fileName)
    {
        var testDirectory = new DirectoryInfo(AppContext.BaseDirectory);
        var path = Path.Combine(AccessMatrixTests.RepositoryRoot(), project, "bin", testDirectory.Parent!.Name, testDirectory.Name, fileName);
        return File.Exists(path) ? path : throw new FileNotFoundException($"Build {project} first.", path);
    }
}
