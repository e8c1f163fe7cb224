using System.Diagnostics;

namespace LabMesh.Testing;

/// <summary>The repository the tests run from.</summary>
public static class Repository
{
    /// <summary>The folder of LabMesh.sln, found upwards from the test assembly.</summary>
    public static string Root { get; } = Find();

    /// <summary>The all-in-one host built beside this test assembly's configuration (bin/Release or bin/Debug).</summary>
    public static string AllInOneAssembly() => Built("services/LabMesh.AllInOne", "LabMesh.AllInOne.dll");

    /// <summary>A project's <paramref name="fileName"/> built beside this test assembly's configuration and framework.</summary>
    public static string Built(string project, string fileName)
    {
        var testDirectory = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var path = Path.Combine(Root, project, "bin", testDirectory.Parent!.Name, testDirectory.Name, fileName);
        return File.Exists(path) ? path : throw new FileNotFoundException($"Build {project} first.", path);
    }

    private static string Find()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "LabMesh.sln")))
            {
                return directory.FullName;
            }
        }

        throw new DirectoryNotFoundException("No LabMesh.sln above " + AppContext.BaseDirectory);
    }
}

/// <summary>
/// A child process whose stdout and stderr are kept line by line. Every wait is bounded; disposing
/// it kills it and its children if it is still running.
/// </summary>
public sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Lock _gate = new();
    private readonly List<string> _stdout = [];
    private readonly List<string> _stderr = [];
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Found)> _waiters = [];
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private ChildProcess(Process process, string commandLine)
    {
        _process = process;
        CommandLine = commandLine;
    }

    public string CommandLine { get; }

    /// <summary>The process id (what /proc/PID/ reads, e.g. the files it maps).</summary>
    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public IReadOnlyList<string> StandardOutput
    {
        get
        {
            lock (_gate)
            {
                return [.. _stdout];
            }
        }
    }

    public IReadOnlyList<string> StandardError
    {
        get
        {
            lock (_gate)
            {
                return [.. _stderr];
            }
        }
    }

    /// <summary>
    /// Starts <paramref name="fileName"/> with <paramref name="arguments"/> in <paramref name="workingDirectory"/>, with
    /// <paramref name="environment"/> added to this process's; <paramref name="standardInput"/>: whether its stdin is a
    /// pipe from this process (else it inherits this process's; a script that leaves daemons running, as deploy/local's
    /// do, must not hand them a pipe to the test).
    /// </summary>
    public static ChildProcess Start(string fileName, IEnumerable<string> arguments, string workingDirectory, IReadOnlyDictionary<string, string>? environment = null, bool standardInput = true)
    {
        var start = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = standardInput,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        // A child must not inherit the test host's diagnostics or coverage hooks.
        start.Environment.Remove("DOTNET_STARTUP_HOOKS");
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[name] = value;
        }

        var process = new Process { StartInfo = start };
        var child = new ChildProcess(process, $"{fileName} {string.Join(' ', start.ArgumentList)}");
        process.OutputDataReceived += (_, e) => child.OnLine(e.Data, error: false);
        process.ErrorDataReceived += (_, e) => child.OnLine(e.Data, error: true);
        if (!process.Start())
        {
            throw new InvalidOperationException($"Could not start {child.CommandLine}");
        }

        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>The first stdout line that matches; fails with the output if the process exits first or time runs out.</summary>
    public async Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan timeout, string what)
    {
        var found = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (_stdout.FirstOrDefault(match) is { } line)
            {
                return line;
            }

            _waiters.Add((match, found));
        }

        using var cancel = new CancellationTokenSource();
        var exited = _process.WaitForExitAsync(cancel.Token);
        var winner = await Task.WhenAny(found.Task, exited, Task.Delay(timeout, cancel.Token));
        await cancel.CancelAsync();
        if (winner == found.Task)
        {
            return await found.Task;
        }

        var why = winner == exited ? $"exited with code {_process.ExitCode}" : $"did not print {what} within {timeout.TotalSeconds:0} s";
        throw new InvalidOperationException($"{CommandLine} {why}.\n{Describe()}");
    }

    /// <summary>
    /// Waits for the process to exit and for its output to be read; kills it (and what it started in the
    /// foreground) and fails on timeout, or when <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        try
        {
            await _process.WaitForExitAsync(cancellationToken).WaitAsync(timeout, CancellationToken.None);
        }
        catch (TimeoutException)
        {
            Kill();
            throw new TimeoutException($"{CommandLine} did not exit within {timeout.TotalSeconds:0} s (killed).\n{Describe()}");
        }
        catch (OperationCanceledException)
        {
            Kill();
            await _process.WaitForExitAsync(CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
            throw;
        }

        // Both streams end with a null line once the process is gone.
        await Task.WhenAll(_stdoutClosed.Task, _stderrClosed.Task).WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
        return _process.ExitCode;
    }

    public string Describe(int lastLines = 200) =>
        $"--- stdout ---\n{string.Join('\n', StandardOutput.TakeLast(lastLines))}\n--- stderr ---\n{string.Join('\n', StandardError.TakeLast(lastLines))}\n--------------";

    public async ValueTask DisposeAsync()
    {
        Kill();
        try
        {
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (TimeoutException)
        {
            // Killed and not gone after 10 s: nothing more to do here; the test has its result.
        }

        _process.Dispose();
    }

    private void Kill()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // It exited between the check and the kill.
        }
    }

    private void OnLine(string? line, bool error)
    {
        if (line is null)
        {
            (error ? _stderrClosed : _stdoutClosed).TrySetResult();
            return;
        }

        lock (_gate)
        {
            if (error)
            {
                _stderr.Add(line);
                return;
            }

            _stdout.Add(line);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Match(line))
                {
                    _waiters[i].Found.TrySetResult(line);
                    _waiters.RemoveAt(i);
                }
            }
        }
    }
}
