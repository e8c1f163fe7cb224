using LabMesh.Testing;

namespace LabMesh.AllInOne.Tests;

/// <summary>What a <c>buf</c> command printed and how it exited.</summary>
public sealed record BufResult(int ExitCode, string Stdout, string Stderr)
{
    public override string ToString() => $"exit {ExitCode}\nstdout:\n{Stdout}\nstderr:\n{Stderr}";
}

/// <summary>
/// The <c>buf</c> command of npm's @bufbuild/buf, pinned in <c>buf/package.json</c> and
/// <c>buf/package-lock.json</c> beside this file: a gRPC client nobody here wrote. <c>npm ci</c> installs it
/// the first time (it needs the npm registry, or an npm cache that holds the pins).
/// </summary>
public static class Buf
{
    private static readonly TimeSpan InstallTimeout = TimeSpan.FromMinutes(5);
    private static readonly Lazy<Task<string>> Installed = new(InstallAsync);

    /// <summary>Runs <c>buf</c> with <paramref name="arguments"/>, killed (with what it printed so far in the error) after <paramref name="timeout"/>.</summary>
    public static async Task<BufResult> RunAsync(TimeSpan timeout, params string[] arguments)
    {
        var buf = await Installed.Value.WaitAsync(InstallTimeout);
        return await RunAsync(buf, Path.GetDirectoryName(buf)!, arguments, timeout);
    }

    /// <summary>Runs <c>buf</c> in <paramref name="workingDirectory"/> (where it finds <c>buf.yaml</c>), killed after <paramref name="timeout"/>.</summary>
    public static async Task<BufResult> RunInAsync(string workingDirectory, TimeSpan timeout, params string[] arguments)
    {
        var buf = await Installed.Value.WaitAsync(InstallTimeout);
        return await RunAsync(buf, workingDirectory, arguments, timeout);
    }

    private static async Task<string> InstallAsync()
    {
        var folder = Path.Combine(Repository.Root, "tests", "LabMesh.AllInOne.Tests", "buf");
        var buf = Path.Combine(folder, "node_modules", ".bin", "buf");
        if (!File.Exists(buf))
        {
            // --ignore-scripts: the package's postinstall only swaps its Node launcher for the binary it
            // already ships in @bufbuild/buf-linux-x64 (and friends); the launcher works as it is.
            var install = await RunAsync("npm", folder, ["ci", "--ignore-scripts", "--no-audit", "--no-fund"], InstallTimeout);
            Assert.True(install.ExitCode == 0 && File.Exists(buf), $"npm ci in {folder} did not install buf:\n{install}");
        }

        return buf;
    }

    private static async Task<BufResult> RunAsync(string command, string workingDirectory, IEnumerable<string> arguments, TimeSpan timeout)
    {
        // Killed with its children on a timeout: the npm launcher runs the binary as its child.
        await using var process = ChildProcess.Start(command, arguments, workingDirectory, new Dictionary<string, string> { ["NO_COLOR"] = "1" });
        var exitCode = await process.WaitForExitAsync(timeout);
        return new BufResult(exitCode, string.Join('\n', process.StandardOutput), string.Join('\n', process.StandardError));
    }
}
