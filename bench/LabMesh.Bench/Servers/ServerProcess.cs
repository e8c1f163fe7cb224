using System.Diagnostics;
using System.Globalization;
using LabMesh.Testing;

namespace LabMesh.Bench.Servers;

/// <summary>
/// A server under load, in a child process of its own (its own GC heap, its own CPU account): the all-in-one
/// host as built beside this bench, or the bare grpc-dotnet server (this executable in <see cref="BareServer.Mode"/>).
/// Stopped by closing its stdin (the bare server) or by a kill (the host).
/// </summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    public const string ReadyLine = "LISTENING ";

    private readonly Process _child;
    private readonly string? _workingDirectory;

    private ServerProcess(string name, string address, Process child, string? workingDirectory)
    {
        Name = name;
        Address = address;
        _child = child;
        _workingDirectory = workingDirectory;
    }

    public string Name { get; }

    /// <summary>The base address, e.g. <c>http://127.0.0.1:41234</c>.</summary>
    public string Address { get; }

    public int Pid => _child.Id;

    /// <summary>
    /// The all-in-one host (<c>services/LabMesh.AllInOne</c>, the configuration this bench was built in) on a
    /// free loopback port, in a fresh working directory (its SQLite files), trusting <paramref name="settings"/>'
    /// signing key; ready once it printed its welcome.
    /// </summary>
    public static async Task<ServerProcess> StartAllInOneAsync(BenchOptions options, IReadOnlyDictionary<string, string> settings, string name = "all-in-one host")
    {
        var dll = options.HostDll ?? DefaultHostDll();
        if (!File.Exists(dll))
        {
            throw new InvalidOperationException($"{dll} is missing: build the bench (it builds the host) or pass --host-dll.");
        }

        var port = FreePort.Next();
        var workingDirectory = Directory.CreateTempSubdirectory("labmesh-bench-aio-").FullName;
        var start = NewStart(options, "dotnet", [dll, "--urls", $"http://127.0.0.1:{port}"]);
        start.WorkingDirectory = workingDirectory;
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        foreach (var (key, value) in settings)
        {
            start.Environment[key] = value;
        }

        var address = $"http://127.0.0.1:{port}";
        var child = Process.Start(start) ?? throw new InvalidOperationException("Could not start the all-in-one host.");
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var output = new List<string>();
        void OnLine(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (output)
            {
                output.Add(line);
            }

            // AllInOne.PrintWelcome, on ApplicationStarted: every service is mapped and listening.
            if (line.Contains($"127.0.0.1:{port}", StringComparison.Ordinal))
            {
                ready.TrySetResult();
            }
        }

        child.OutputDataReceived += (_, e) => OnLine(e.Data);
        child.ErrorDataReceived += (_, e) => OnLine(e.Data);
        child.BeginOutputReadLine();
        child.BeginErrorReadLine();
        var exited = child.WaitForExitAsync();
        if (await Task.WhenAny(ready.Task, exited, Task.Delay(TimeSpan.FromSeconds(60))) != ready.Task)
        {
            lock (output)
            {
                throw new InvalidOperationException($"The all-in-one host did not start:\n{string.Join('\n', output.TakeLast(20))}");
            }
        }

        return new ServerProcess(name, address, child, workingDirectory);
    }

    /// <summary>The bare grpc-dotnet server, answering with the response stored in <paramref name="responseFile"/>.</summary>
    public static async Task<ServerProcess> StartBareAsync(BenchOptions options, string responseFile)
    {
        var (fileName, prefix) = SelfCommand();
        var start = NewStart(options, fileName, [.. prefix, BareServer.Mode, responseFile]);
        // The all-in-one host's runtimeconfig says System.GC.Server; the bench's own says workstation.
        start.Environment["DOTNET_gcServer"] = "1";
        start.Environment["DOTNET_gcConcurrent"] = "1";
        start.RedirectStandardInput = true;
        var child = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        child.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                Console.Error.WriteLine("[bare server] " + e.Data);
            }
        };
        child.BeginErrorReadLine();

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            var line = await child.StandardOutput.ReadLineAsync(timeout.Token);
            if (line is null)
            {
                await child.WaitForExitAsync(timeout.Token);
                throw new InvalidOperationException($"The bare server exited ({child.ExitCode}) before listening.");
            }

            if (line.StartsWith(ReadyLine, StringComparison.Ordinal))
            {
                var address = line[ReadyLine.Length..].Trim();
                // Nothing else is read from it: keep its stdout drained.
                _ = child.StandardOutput.ReadToEndAsync(CancellationToken.None);
                return new ServerProcess("bare grpc-dotnet", address, child, null);
            }
        }
    }

    /// <summary>What the server process has spent so far (CPU time, from /proc).</summary>
    public ProcessStats GetStats() => ProcessStats.OfProcess(_child.Id);

    /// <summary>Resident memory now, from /proc/PID/status (VmRSS), in MB.</summary>
    public double ResidentMb()
    {
        foreach (var line in File.ReadLines($"/proc/{_child.Id}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
            }
        }

        return double.NaN;
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_child.HasExited)
            {
                if (_child.StartInfo.RedirectStandardInput)
                {
                    _child.StandardInput.Close();
                }
                else
                {
                    // SIGTERM: the host drains and stops as under a process manager.
                    Process.Start("kill", ["-TERM", _child.Id.ToString(CultureInfo.InvariantCulture)])?.WaitForExit();
                }

                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
                await _child.WaitForExitAsync(timeout.Token);
            }
        }
        catch (OperationCanceledException)
        {
            _child.Kill(entireProcessTree: true);
        }

        _child.Dispose();
        if (_workingDirectory is not null)
        {
            Directory.Delete(_workingDirectory, recursive: true);
        }
    }

    /// <summary>How to start this program again: its apphost, or <c>dotnet</c> plus its assembly.</summary>
    public static (string FileName, string[] Prefix) SelfCommand()
    {
        var processPath = Environment.ProcessPath ?? throw new InvalidOperationException("Unknown process path.");
        var name = Path.GetFileNameWithoutExtension(processPath);
        return string.Equals(name, "dotnet", StringComparison.OrdinalIgnoreCase)
            ? (processPath, [typeof(ServerProcess).Assembly.Location])
            : (processPath, []);
    }

    /// <summary>
    /// <c>services/LabMesh.AllInOne/bin/CONFIG/net10.0/LabMesh.AllInOne.dll</c> of the repository this bench
    /// runs from, CONFIG being the bench's own (its ProjectReference builds the host with it).
    /// </summary>
    private static string DefaultHostDll()
    {
        var binDir = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar));
        var framework = binDir.Name;
        var configuration = binDir.Parent?.Name ?? "Release";
        for (var dir = binDir; dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "LabMesh.sln")))
            {
                return Path.Combine(dir.FullName, "services", "LabMesh.AllInOne", "bin", configuration, framework, "LabMesh.AllInOne.dll");
            }
        }

        throw new InvalidOperationException("LabMesh.sln not found above " + AppContext.BaseDirectory + "; pass --host-dll.");
    }

    private static ProcessStartInfo NewStart(BenchOptions options, string fileName, IEnumerable<string> args) =>
        PinnedStart(options, core: 0, fileName, args);

    /// <summary>A process start with redirected output, on <paramref name="core"/> alone when <c>--pin</c> (taskset): servers on 0, the load on 1.</summary>
    internal static ProcessStartInfo PinnedStart(BenchOptions options, int core, string fileName, IEnumerable<string> args)
    {
        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (options.Pin)
        {
            start.FileName = "taskset";
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add(core.ToString(CultureInfo.InvariantCulture));
            start.ArgumentList.Add(fileName);
        }
        else
        {
            start.FileName = fileName;
        }

        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return start;
    }
}

/// <summary>What a process has spent so far: CPU time (for the bench process itself, also allocations and collections).</summary>
internal readonly record struct ProcessStats(long AllocatedBytes, TimeSpan CpuTime, int Gen0, int Gen1, int Gen2, bool Managed)
{
    /// <summary>This process.</summary>
    public static ProcessStats Capture() => new(
        GC.GetTotalAllocatedBytes(precise: true),
        Environment.CpuUsage.TotalTime,
        GC.CollectionCount(0),
        GC.CollectionCount(1),
        GC.CollectionCount(2),
        true);

    /// <summary>CPU time of another process, from <c>/proc/PID/stat</c> (utime + stime, in USER_HZ = 100 ticks a second).</summary>
    public static ProcessStats OfProcess(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        // The fields after the parenthesized command name, which may itself contain spaces.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return new ProcessStats(0, TimeSpan.FromMilliseconds(ticks * 10), 0, 0, 0, false);
    }

    /// <summary>What was spent between <paramref name="earlier"/> and this snapshot.</summary>
    public ProcessStats Since(ProcessStats earlier) => new(
        AllocatedBytes - earlier.AllocatedBytes, CpuTime - earlier.CpuTime, Gen0 - earlier.Gen0, Gen1 - earlier.Gen1, Gen2 - earlier.Gen2, Managed);
}
