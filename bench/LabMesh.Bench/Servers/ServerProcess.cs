using System.Diagnostics;
using System.Globalization;
using System.Net;

namespace LabMesh.Bench.Servers;

/// <summary>
/// A bench server the runner talks to: by default a child process running this same executable with
/// <c>serve</c>, so the server has its own GC heap and its own CPU account; with <c>--in-process</c>
/// a <see cref="ServerHost"/> inside the bench process.
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

    public static async Task<ServerProcess> StartAsync(ServerKind kind, BenchOptions options, Payloads payloads)
    {
        if (options.InProcess)
        {
            var host = await ServerHost.StartAsync(kind, payloads);
            return new ServerProcess(kind, host.Address, null, host);
        }

        var (fileName, prefix) = SelfCommand();
        var start = new ProcessStartInfo
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
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
        foreach (var arg in prefix)
        {
            start.ArgumentList.Add(arg);
        }
        foreach (var arg in new[]
        {
            "serve", kind.ToString(),
            payloads.Request.Payload.Length.ToString(CultureInfo.InvariantCulture),
            payloads.Response.Payload.Length.ToString(CultureInfo.InvariantCulture),
            payloads.StreamMessages.ToString(CultureInfo.InvariantCulture),
            options.AllocProfile ? "profile" : "no-profile",
        })
        {
            start.ArgumentList.Add(arg);
        }
        start.Environment["DOTNET_gcServer"] = options.ServerGc == "server" ? "1" : "0";
        start.Environment["DOTNET_gcConcurrent"] = "1";

        var child = Process.Start(start) ?? throw new InvalidOperationException("Could not start the server process.");
        var tag = $"[{kind} server] ";
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
                throw new InvalidOperationException($"The {kind} server exited ({child.ExitCode}) before listening.");
            }
            if (line.StartsWith(ReadyLine, StringComparison.Ordinal))
            {
                return new ServerProcess(kind, line[ReadyLine.Length..].Trim(), child, null);
            }
            Console.WriteLine(tag + line);
        }
    }

    /// <summary>The child side: host one server until standard input closes.</summary>
    public static async Task<int> ServeAsync(string[] args)
    {
        var kind = Enum.Parse<ServerKind>(args[1]);
        if (args.Length > 5 && args[5] == "profile")
        {
            AllocationProfiler.Start();
        }
        var payloads = new Payloads(
            int.Parse(args[2], CultureInfo.InvariantCulture),
            int.Parse(args[3], CultureInfo.InvariantCulture),
            int.Parse(args[4], CultureInfo.InvariantCulture));
        await using var host = await ServerHost.StartAsync(kind, payloads);
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

    public async Task<ProcessStats> GetStatsAsync()
    {
        var text = await _statsClient.GetStringAsync(new Uri(ServerHost.StatsPath, UriKind.Relative));
        return ProcessStats.ParseFormatted(text);
    }

    /// <summary>The server's sampled allocations since the last call (empty unless profiling).</summary>
    public Task<string> TakeAllocationsAsync() =>
        _statsClient.GetStringAsync(new Uri(ServerHost.AllocationsPath, UriKind.Relative));

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
