using System.Diagnostics;
using System.Net;

namespace LabMesh.Bench.Servers;

/// <summary>
/// A bench server the runner talks to: by default a child process running this same executable with
/// <c>serve</c>, so the server has its own GC heap and its own CPU account; with <c>--in-process</c>
/// a <see cref="ServerHost"/> inside the bench process. A grpcio server is always a Python child.
/// </summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private const string ReadyLine = "LISTENING ";

    private readonly Process? _child;
    private readonly ServerHost? _host;
    private readonly HttpClient _statsClient;

    private ServerProcess(ServerKind kind, string address, Process? child, ServerHost? host)
    {
        Kind = kind;
        Address = address;
        _child = child;
        _host = host;
        // A connection of its own, so that reading stats never queues behind the load.
        _statsClient = new HttpClient(new SocketsHttpHandler { UseProxy = false })
        {
            BaseAddress = new Uri(address),
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = TimeSpan.FromSeconds(10),
        };
    }

    public ServerKind Kind { get; }

    public string Address { get; }

    public Uri UnaryUri => new(Address + Payloads.UnaryPath);

    public Uri StreamUri => new(Address + Payloads.StreamPath);

    /// <summary>The grpcio server's <c>python/bench_server.py</c>, copied beside the bench's assembly at build.</summary>
    private static string GrpcioScript => Path.Combine(AppContext.BaseDirectory, "python", "bench_server.py");

    public static async Task<ServerProcess> StartAsync(ServerSettings settings, BenchOptions options)
    {
        if (options.InProcess && settings.Kind != ServerKind.Grpcio)
        {
            var host = await ServerHost.StartAsync(settings);
            return new ServerProcess(settings.Kind, host.Address, null, host);
        }

        var start = new ProcessStartInfo
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        string fileName;
        string[] args;
        if (settings.Kind == ServerKind.Grpcio)
        {
            fileName = options.PythonPath;
            // The contract as compiled into this assembly, so Python needs no protoc and no copy of the .proto.
            args = [GrpcioScript, "--descriptor", V1.BenchReflection.Descriptor.SerializedData.ToBase64()];
        }
        else
        {
            (fileName, var prefix) = SelfCommand();
            args = [.. prefix, "serve", .. settings.ToArgs()];
            start.Environment["DOTNET_gcServer"] = options.ServerGc == "server" ? "1" : "0";
            start.Environment["DOTNET_gcConcurrent"] = "1";
        }
        if (options.Pin)
        {
            start.FileName = "taskset";
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add("0");
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

        var child = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        var tag = $"[{settings.Kind} server] ";
        child.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                Console.Error.WriteLine(tag + e.Data);
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
                throw new InvalidOperationException($"The {settings.Kind} server exited ({child.ExitCode}) before listening.");
            }
            if (line.StartsWith(ReadyLine, StringComparison.Ordinal))
            {
                return new ServerProcess(settings.Kind, line[ReadyLine.Length..].Trim(), child, null);
            }
            Console.WriteLine(tag + line);
        }
    }

    /// <summary>The child side: host one server until standard input closes.</summary>
    public static async Task<int> ServeAsync(string[] args)
    {
        var settings = ServerSettings.Parse(args.AsSpan(1));
        if (settings.AllocProfile)
        {
            AllocationProfiler.Start();
        }
        await using var host = await ServerHost.StartAsync(settings);
        Console.Out.WriteLine(ReadyLine + host.Address);
        Console.Out.Flush();

        // The parent closes our stdin to stop us; if the parent dies, stdin closes too.
        using var stdin = Console.OpenStandardInput();
        var buffer = new byte[256];
        while (await stdin.ReadAsync(buffer) > 0)
        {
        }
        return 0;
    }

    /// <summary>What the server has spent so far; for grpcio only its CPU time (from /proc).</summary>
    public async Task<ProcessStats> GetStatsAsync()
    {
        if (Kind == ServerKind.Grpcio)
        {
            return ProcessStats.OfProcess(_child!.Id);
        }
        var text = await _statsClient.GetStringAsync(new Uri(ServerHost.StatsPath, UriKind.Relative));
        return ProcessStats.ParseFormatted(text);
    }

    /// <summary>The server's sampled allocations since the last call (empty unless profiling; null for grpcio).</summary>
    public async Task<string?> TakeAllocationsAsync() =>
        Kind == ServerKind.Grpcio ? null : await _statsClient.GetStringAsync(new Uri(ServerHost.AllocationsPath, UriKind.Relative));

    public async ValueTask DisposeAsync()
    {
        _statsClient.Dispose();
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }
        if (_child is not null)
        {
            try
            {
                _child.StandardInput.Close();
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
                await _child.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                _child.Kill(entireProcessTree: true);
            }
            _child.Dispose();
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
}
