using System.Diagnostics;
using System.Globalization;
using System.Text;
using Npgsql;

namespace LabMesh.Testing;

/// <summary>
/// A throw-away PostgreSQL cluster on a free loopback port, made with the Debian packages'
/// <c>initdb</c> and <c>pg_ctl</c> (<c>apt-get install postgresql</c>). As root the binaries run as
/// the <c>postgres</c> user, since <c>initdb</c> refuses root. fsync is off: the data is thrown away.
/// Use <see cref="SharedAsync"/> (one cluster per test process, stopped at exit) and
/// <see cref="CreateDatabaseAsync"/> for a fresh database per test class.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private const string DirectoryPrefix = "labmesh-pg-";

    // Not TMPDIR: the postgres user must be able to reach the cluster's directory.
    private const string TempRoot = "/tmp";
    private static readonly TimeSpan CommandTimeout = TimeSpan.FromSeconds(60);
    private static readonly Lazy<Task<PostgresServer>> Shared = new(StartSharedAsync, LazyThreadSafetyMode.ExecutionAndPublication);

    private readonly string _binDirectory;
    private readonly string _root;
    private readonly bool _asPostgresUser;
    private int _stopped;
    private bool _shared;

    private PostgresServer(string binDirectory, string root, bool asPostgresUser, int port)
    {
        _binDirectory = binDirectory;
        _root = root;
        _asPostgresUser = asPostgresUser;
        Port = port;
        ConnectionString = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = port,
            Username = "postgres",
            Database = "postgres",
            IncludeErrorDetail = true,
        }.ConnectionString;
    }

    /// <summary>The loopback port the cluster listens on.</summary>
    public int Port { get; }

    /// <summary>Superuser <c>postgres</c>, database <c>postgres</c>, no password (trust).</summary>
    public string ConnectionString { get; }

    /// <summary>The cluster's files: <c>data/</c>, the server log <c>postgres.log</c> and the socket.</summary>
    public string RootDirectory => _root;

    private string DataDirectory => Path.Combine(_root, "data");

    /// <summary>
    /// The cluster shared by the whole test process: started by the first caller, stopped and
    /// deleted when the process exits.
    /// </summary>
    public static Task<PostgresServer> SharedAsync() => Shared.Value;

    /// <summary>Starts a cluster of one's own (dispose it). Prefer <see cref="SharedAsync"/>.</summary>
    public static async Task<PostgresServer> StartAsync(CancellationToken cancellationToken = default)
    {
        var bin = FindBinaries();
        var asPostgresUser = Environment.IsPrivilegedProcess;
        RemoveAbandonedClusters(bin, asPostgresUser);

        Exception? last = null;
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            var root = Path.Combine(TempRoot, DirectoryPrefix + Guid.NewGuid().ToString("N")[..12]);
            var server = new PostgresServer(bin, root, asPostgresUser, FreePort.Next());
            try
            {
                await server.InitializeAndStartAsync(cancellationToken);
                return server;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Most likely the port was taken between choosing it and binding it: try another.
                last = ex;
                await server.DisposeAsync();
            }
        }

        throw new InvalidOperationException("Could not start a PostgreSQL test cluster.", last);
    }

    /// <summary>
    /// Creates a new empty database and returns its connection string. The name is
    /// <paramref name="name"/> (letters, digits, '_') with a unique suffix, so every call is fresh.
    /// </summary>
    public async Task<string> CreateDatabaseAsync(string name, CancellationToken cancellationToken = default)
    {
        var prefix = new string(name.ToLowerInvariant().Where(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_').ToArray());
        if (prefix.Length == 0 || prefix[0] is >= '0' and <= '9')
        {
            prefix = "db_" + prefix;
        }

        var database = (prefix.Length > 40 ? prefix[..40] : prefix) + "_" + Guid.NewGuid().ToString("N")[..12];
        await using (var connection = new NpgsqlConnection(ConnectionString))
        {
            await connection.OpenAsync(cancellationToken);
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{database}\";", connection);
            await command.ExecuteNonQueryAsync(cancellationToken);
        }

        return new NpgsqlConnectionStringBuilder(ConnectionString) { Database = database }.ConnectionString;
    }

    /// <summary>
    /// Stops the cluster at once (<c>pg_ctl stop -m immediate</c>) and deletes its files. Ignored for
    /// the <see cref="SharedAsync"/> cluster, which other test classes may still be using: it stops
    /// when the process exits.
    /// </summary>
    public Task StopAsync() => _shared ? Task.CompletedTask : Task.Run(Stop);

    public ValueTask DisposeAsync() => new(StopAsync());

    private static async Task<PostgresServer> StartSharedAsync()
    {
        var server = await StartAsync();
        server._shared = true;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop();
        return server;
    }

    private async Task InitializeAndStartAsync(CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(_root);
        File.WriteAllText(Path.Combine(_root, "owner.pid"), Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        if (_asPostgresUser)
        {
            await RunAsync("chown", ["-R", "postgres:postgres", _root], cancellationToken);
        }

        await RunPostgresToolAsync("initdb", ["-D", DataDirectory, "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"], cancellationToken);

        // Settings go into postgresql.conf rather than through `pg_ctl -o`, which passes them through a shell.
        var settings = new StringBuilder()
            .AppendLine(CultureInfo.InvariantCulture, $"port = {Port}")
            .AppendLine("listen_addresses = '127.0.0.1'")
            .AppendLine(CultureInfo.InvariantCulture, $"unix_socket_directories = '{_root}'")
            .AppendLine("max_connections = 300")
            .AppendLine("fsync = off")
            .AppendLine("synchronous_commit = off")
            .AppendLine("full_page_writes = off")
            .AppendLine("log_min_messages = warning");
        await File.AppendAllTextAsync(Path.Combine(DataDirectory, "postgresql.conf"), settings.ToString(), cancellationToken);

        StartWatchdog();
        var log = Path.Combine(_root, "postgres.log");
        try
        {
            await RunPostgresToolAsync("pg_ctl", ["-D", DataDirectory, "-l", log, "-w", "-t", "60", "start"], cancellationToken);
        }
        catch (InvalidOperationException ex) when (File.Exists(log))
        {
            throw new InvalidOperationException(ex.Message + Environment.NewLine + await File.ReadAllTextAsync(log, cancellationToken), ex);
        }
    }

    private void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }

        if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
        {
            try
            {
                RunAsync(_asPostgresUser ? "runuser" : Path.Combine(_binDirectory, "pg_ctl"),
                    StopArguments(_binDirectory, DataDirectory, _asPostgresUser), CancellationToken.None).GetAwaiter().GetResult();
            }
            catch (InvalidOperationException)
            {
                // Already gone; the files are removed below all the same.
            }
        }

        NpgsqlConnection.ClearAllPools();
        TryDelete(_root);
    }

    /// <summary>
    /// A detached shell that stops the cluster and deletes its directory once this process is gone,
    /// however it ended: the test host may be killed before <see cref="AppDomain.ProcessExit"/>
    /// handlers finish, and a leaked postmaster would outlive the test run.
    /// </summary>
    private void StartWatchdog()
    {
        const string Script = """
            exec </dev/null >/dev/null 2>&1
            while [ -d "/proc/$1" ] && [ -d "$3" ]; do sleep 1; done
            "$2/pg_ctl" -D "$3/data" -m immediate -w -t 30 stop
            rm -rf "$3"
            """;
        string[] watchdog = ["setsid", "-f", "sh", "-c", Script, "labmesh-pg-watchdog",
            Environment.ProcessId.ToString(CultureInfo.InvariantCulture), _binDirectory, _root];
        var start = new ProcessStartInfo(_asPostgresUser ? "runuser" : watchdog[0]) { UseShellExecute = false };
        foreach (var argument in _asPostgresUser ? ["-u", "postgres", "--", .. watchdog] : watchdog[1..])
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start the PostgreSQL watchdog.");
        process.WaitForExit();
    }

    private Task RunPostgresToolAsync(string tool, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
    {
        var path = Path.Combine(_binDirectory, tool);
        return _asPostgresUser
            ? RunAsync("runuser", ["-u", "postgres", "--", path, .. arguments], cancellationToken, _root)
            : RunAsync(path, arguments, cancellationToken, _root);
    }

    private static string[] StopArguments(string bin, string dataDirectory, bool asPostgresUser)
    {
        string[] stop = ["-D", dataDirectory, "-m", "immediate", "-w", "-t", "30", "stop"];
        return asPostgresUser ? ["-u", "postgres", "--", Path.Combine(bin, "pg_ctl"), .. stop] : stop;
    }

    /// <summary>Stops and deletes clusters left behind by test processes that were killed.</summary>
    private static void RemoveAbandonedClusters(string bin, bool asPostgresUser)
    {
        foreach (var root in Directory.EnumerateDirectories(TempRoot, DirectoryPrefix + "*"))
        {
            try
            {
                var ownerFile = Path.Combine(root, "owner.pid");
                if (!File.Exists(ownerFile)
                    || !int.TryParse(File.ReadAllText(ownerFile), NumberStyles.Integer, CultureInfo.InvariantCulture, out var owner)
                    || IsAlive(owner))
                {
                    continue;
                }

                var data = Path.Combine(root, "data");
                if (File.Exists(Path.Combine(data, "postmaster.pid")))
                {
                    RunAsync(asPostgresUser ? "runuser" : Path.Combine(bin, "pg_ctl"), StopArguments(bin, data, asPostgresUser), CancellationToken.None)
                        .GetAwaiter().GetResult();
                }

                TryDelete(root);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                // Somebody else's, or being removed right now: leave it.
            }
        }
    }

    private static bool IsAlive(int processId)
    {
        try
        {
            using var process = Process.GetProcessById(processId);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static string FindBinaries()
    {
        const string Root = "/usr/lib/postgresql";
        var candidates = Directory.Exists(Root)
            ? Directory.GetDirectories(Root)
                .Select(d => (Directory: Path.Combine(d, "bin"), Version: int.TryParse(Path.GetFileName(d), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : 0))
                .Where(c => File.Exists(Path.Combine(c.Directory, "initdb")) && File.Exists(Path.Combine(c.Directory, "pg_ctl")))
                .OrderByDescending(c => c.Version)
                .ToList()
            : [];
        return candidates.Count > 0
            ? candidates[0].Directory
            : throw new InvalidOperationException(
                "PostgreSQL server binaries (initdb, pg_ctl) were not found under /usr/lib/postgresql/*/bin. "
                + "Install them with: apt-get update && apt-get install -y postgresql");
    }

    private static void TryDelete(string directory)
    {
        try
        {
            if (Directory.Exists(directory))
            {
                Directory.Delete(directory, recursive: true);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // Best effort: a leftover temp directory is harmless.
        }
    }

    private static async Task RunAsync(string fileName, IReadOnlyList<string> arguments, CancellationToken cancellationToken, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            // The postgres user may not be allowed into the test's own directory.
            WorkingDirectory = workingDirectory ?? TempRoot,
        };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        var stdout = process.StandardOutput.ReadToEndAsync(cancellationToken);
        var stderr = process.StandardError.ReadToEndAsync(cancellationToken);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(CommandTimeout);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        var output = (await stdout + await stderr).Trim();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException(
                $"'{fileName} {string.Join(' ', arguments)}' exited with {process.ExitCode}: {output}");
        }
    }
}
