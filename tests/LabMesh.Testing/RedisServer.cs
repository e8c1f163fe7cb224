using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Xunit;

namespace LabMesh.Testing;

/// <summary>
/// A real <c>redis-server</c> (Debian package redis-server) on a free loopback port, in a temporary
/// directory, without persistence unless asked for (<c>appendOnly</c>: AOF, fsync on every write, as in
/// production). It can be stopped (killed, as in a crash) and started again on the same port in the middle
/// of a test: empty, or with every write it acknowledged when it keeps an AOF. Use one per test (<see cref="StartNewAsync(CancellationToken)"/>, starting takes
/// a few milliseconds) or as an xUnit class fixture (<see cref="IAsyncLifetime"/>).
/// </summary>
public sealed class RedisServer : IAsyncLifetime, IAsyncDisposable
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(10);

    private readonly string _directory;
    private readonly bool _appendOnly;
    private readonly IReadOnlyList<string> _arguments;
    private Process? _process;

    /// <summary>Picks a free loopback port; nothing runs until <see cref="StartAsync"/>.</summary>
    /// <param name="appendOnly">Keep an append-only file, so a restart keeps the data.</param>
    /// <param name="arguments">More redis-server arguments (say, <c>--user</c> rules); the default user must stay usable without a password.</param>
    public RedisServer(bool appendOnly = false, IReadOnlyList<string>? arguments = null)
    {
        _appendOnly = appendOnly;
        _arguments = arguments ?? [];
        Port = FreePort.Next();
        _directory = Directory.CreateTempSubdirectory("labmesh-redis-").FullName;
    }

    public int Port { get; }

    /// <summary>A StackExchange.Redis configuration string for this server.</summary>
    public string Configuration => $"127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}";

    public bool IsRunning => _process is { HasExited: false };

    /// <summary>A new server, started.</summary>
    public static Task<RedisServer> StartNewAsync(CancellationToken cancellationToken = default) =>
        StartNewAsync(appendOnly: false, cancellationToken);

    /// <summary>A new server, started; with <paramref name="appendOnly"/>, one that keeps its data across restarts.</summary>
    public static async Task<RedisServer> StartNewAsync(bool appendOnly, CancellationToken cancellationToken = default)
    {
        var server = new RedisServer(appendOnly);
        try
        {
            await server.StartAsync(cancellationToken);
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts redis-server on <see cref="Port"/> (again after <see cref="StopAsync"/>) and waits until it answers PING.</summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (IsRunning)
        {
            throw new InvalidOperationException("This Redis server is already running.");
        }

        var executable = FindExecutable() ?? throw new InvalidOperationException(
            "redis-server was not found (looked on PATH and in /usr/bin). Install it: apt-get update && apt-get install -y redis-server");

        var logFile = Path.Combine(_directory, "redis.log");
        var startInfo = new ProcessStartInfo(executable)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            WorkingDirectory = _directory,
        };
        foreach (var argument in new[]
        {
            "--bind", "127.0.0.1", "--port", Port.ToString(CultureInfo.InvariantCulture),
            "--save", string.Empty, "--appendonly", _appendOnly ? "yes" : "no", "--appendfsync", "always", "--daemonize", "no",
            "--dir", _directory, "--logfile", logFile,
        }.Concat(_arguments))
        {
            startInfo.ArgumentList.Add(argument);
        }

        var process = Process.Start(startInfo) ?? throw new InvalidOperationException("redis-server did not start.");
        process.OutputDataReceived += static (_, _) => { };
        process.ErrorDataReceived += static (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        var waited = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException(
                    $"redis-server exited with code {process.ExitCode} on port {Port}. Its log:\n{LogTail(logFile)}");
            }

            try
            {
                if (await ExecuteAsync(["PING"], cancellationToken) is "PONG")
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is SocketException or IOException or RedisReplyException or TimeoutException)
            {
                // Not listening yet.
            }

            if (waited.Elapsed > StartTimeout)
            {
                await StopAsync(CancellationToken.None);
                throw new TimeoutException($"redis-server on port {Port} did not answer PING within {StartTimeout}. Its log:\n{LogTail(logFile)}");
            }

            await Task.Delay(10, cancellationToken);
        }
    }

    /// <summary>Kills the server (no shutdown, like a crash) and waits until it has exited.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        var process = _process;
        _process = null;
        if (process is null)
        {
            return;
        }

        using (process)
        {
            if (!process.HasExited)
            {
                process.Kill();
            }

            await process.WaitForExitAsync(cancellationToken).WaitAsync(StopTimeout, cancellationToken);
        }
    }

    /// <summary>
    /// Sends one command over a fresh connection and returns the reply: a string (simple or bulk, UTF-8),
    /// a long, null, or an object?[] for an array. An error reply throws <see cref="RedisReplyException"/>.
    /// Independent of the code under test, for setting up and checking state (FLUSHALL, PTTL, XLEN, ...).
    /// </summary>
    public async Task<object?> ExecuteAsync(IReadOnlyList<string> command, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(CommandTimeout);
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, Port, timeout.Token);
        await using var stream = client.GetStream();

        var request = new StringBuilder();
        request.Append(CultureInfo.InvariantCulture, $"*{command.Count}\r\n");
        foreach (var part in command)
        {
            request.Append(CultureInfo.InvariantCulture, $"${Encoding.UTF8.GetByteCount(part)}\r\n{part}\r\n");
        }

        await stream.WriteAsync(Encoding.UTF8.GetBytes(request.ToString()), timeout.Token);
        await using var reader = new BufferedStream(stream);
        try
        {
            return await ReadReplyAsync(reader, timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new TimeoutException($"Redis on port {Port} did not answer {command[0]} within {CommandTimeout}.");
        }
    }

    /// <summary><see cref="ExecuteAsync(IReadOnlyList{string}, CancellationToken)"/> with the command's words as arguments.</summary>
    public Task<object?> ExecuteAsync(params string[] command) => ExecuteAsync(command, CancellationToken.None);

    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None);
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // A temporary directory left behind is harmless.
        }
    }

    Task IAsyncLifetime.InitializeAsync() => StartAsync();

    Task IAsyncLifetime.DisposeAsync() => DisposeAsync().AsTask();

    private static async Task<object?> ReadReplyAsync(Stream stream, CancellationToken cancellationToken)
    {
        var line = await ReadLineAsync(stream, cancellationToken);
        var body = line[1..];
        switch (line[0])
        {
            case '+':
                return body;
            case '-':
                throw new RedisReplyException(body);
            case ':':
                return long.Parse(body, CultureInfo.InvariantCulture);
            case '$':
                var length = int.Parse(body, CultureInfo.InvariantCulture);
                if (length < 0)
                {
                    return null;
                }

                var bytes = new byte[length + 2];
                await stream.ReadExactlyAsync(bytes, cancellationToken);
                return Encoding.UTF8.GetString(bytes, 0, length);
            case '*':
                var count = int.Parse(body, CultureInfo.InvariantCulture);
                if (count < 0)
                {
                    return null;
                }

                var items = new object?[count];
                for (var i = 0; i < count; i++)
                {
                    items[i] = await ReadReplyAsync(stream, cancellationToken);
                }

                return items;
            default:
                throw new IOException($"Unexpected Redis reply: {line}");
        }
    }

    internal static async Task<string> ReadLineAsync(Stream stream, CancellationToken cancellationToken)
    {
        var line = new List<byte>();
        var one = new byte[1];
        while (true)
        {
            if (await stream.ReadAsync(one, cancellationToken) == 0)
            {
                throw new IOException("Redis closed the connection.");
            }

            if (one[0] == '\n' && line.Count > 0 && line[^1] == '\r')
            {
                return Encoding.UTF8.GetString([.. line[..^1]]);
            }

            line.Add(one[0]);
        }
    }

    private static string? FindExecutable()
    {
        var directories = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Append("/usr/bin")
            .Append("/usr/local/bin");
        return directories.Select(d => Path.Combine(d, "redis-server")).FirstOrDefault(File.Exists);
    }

    private static string LogTail(string logFile)
    {
        try
        {
            var lines = File.ReadAllLines(logFile);
            return string.Join('\n', lines.TakeLast(20));
        }
        catch (IOException)
        {
            return "(no log)";
        }
    }
}

/// <summary>An error reply from Redis to <see cref="RedisServer.ExecuteAsync(IReadOnlyList{string}, CancellationToken)"/>.</summary>
public sealed class RedisReplyException : Exception
{
    public RedisReplyException()
    {
    }

    public RedisReplyException(string message)
        : base(message)
    {
    }

    public RedisReplyException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
