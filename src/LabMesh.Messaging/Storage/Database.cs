using System.Data;
using System.Data.Common;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace LabMesh.Messaging.Storage;

/// <summary>
/// One service's store: a SQLite file under the data directory (WAL) by default, or its own schema
/// in PostgreSQL when a connection string is configured. The SQL a service writes must run on both:
/// named <c>@parameters</c>, <c>INSERT ... ON CONFLICT</c>, <c>RETURNING</c>; where the dialects
/// differ a <see cref="Migration"/> carries both texts.
/// </summary>
public sealed partial class Database : IAsyncDisposable
{
    private const int MaxWriteAttempts = 5;

    // How long a SQLite writer waits for the file's write lock: SQLite's busy timeout (a writer in another process),
    // and at most as long for this process's gate (SqliteWriteGate).
    private static readonly TimeSpan BusyTimeout = TimeSpan.FromSeconds(30);

    // The SQLite connections (native handles, which the pool keeps across opens) whose PRAGMAs are set; an entry goes
    // with its handle once the pool has closed it.
    private static readonly ConditionalWeakTable<SQLitePCL.sqlite3, object> Configured = new();
    private static readonly object Marker = new();

    private readonly string _connectionString;
    private readonly NpgsqlDataSource? _postgres;
    private readonly ILogger _logger;
    private readonly IWriteParticipant? _participant;
    private readonly SqliteWriteGate? _gate;

    private Database(string serviceName, StorageProvider provider, string connectionString, NpgsqlDataSource? postgres, ILogger logger, IWriteParticipant? participant)
    {
        _participant = participant;
        _gate = provider == StorageProvider.Sqlite ? SqliteWriteGate.For(new SqliteConnectionStringBuilder(connectionString).DataSource) : null;
        ServiceName = serviceName;
        Provider = provider;
        _connectionString = connectionString;
        _postgres = postgres;
        _logger = logger;
    }

    /// <summary>The owning service; also the SQLite file name and the PostgreSQL schema.</summary>
    public string ServiceName { get; }

    public StorageProvider Provider { get; }

    /// <summary>Opens the store of <paramref name="serviceName"/> as <paramref name="options"/> say.</summary>
    public static Database Create(string serviceName, StorageOptions options, ILogger logger, IWriteParticipant? participant = null)
    {
        if (!IsIdentifier(serviceName))
        {
            throw new ArgumentException("A service name is lower-case letters, digits and '_'.", nameof(serviceName));
        }

        if (!string.IsNullOrWhiteSpace(options.PostgresConnectionString))
        {
            var builder = new NpgsqlConnectionStringBuilder(options.PostgresConnectionString) { SearchPath = serviceName };
            // GSS (Kerberos) encryption only when the connection string or libpq's PGGSSENCMODE asks for it. Npgsql's
            // default (Prefer) asks GSSAPI for Kerberos credentials at every physical open, which maps libgssapi_krb5
            // and libkrb5 (about 1.3 MB resident) into every replica, where passwords log in and TLS encrypts.
            // Kerberos authentication, when a server asks for it, is not affected (bench/README.md, session 12).
            // (NpgsqlConnectionStringBuilder.ContainsKey is true for every keyword it knows, so the string is read as written.)
            var written = new DbConnectionStringBuilder { ConnectionString = options.PostgresConnectionString };
            if (!written.ContainsKey("GSS Encryption Mode") && !written.ContainsKey("GssEncryptionMode")
                && Environment.GetEnvironmentVariable("PGGSSENCMODE") is null)
            {
                builder.GssEncryptionMode = GssEncryptionMode.Disable;
            }

            var sources = new NpgsqlDataSourceBuilder(builder.ConnectionString);
            // SQL is traced as a part of the work that ran it: a command outside any span (the outbox relay's and
            // the workers' polls, several a second per replica) would be a trace of its own and bury the orders.
            // Opening a pooled connection (Npgsql's CONNECT span) has no filter and mostly happens outside any
            // call, so it is not traced; the time a call waits for a connection still shows in its own span.
            sources.ConfigureTracing(tracing => tracing
                .ConfigureCommandFilter(_ => Activity.Current is not null)
                .ConfigureBatchFilter(_ => Activity.Current is not null)
                .EnablePhysicalOpenTracing(false));
            var dataSource = sources.Build();
            return new Database(serviceName, StorageProvider.Postgres, builder.ConnectionString, dataSource, logger, participant);
        }

        var file = CreateOwnerOnly(options.DataDirectory, serviceName + ".db");
        var sqlite = new SqliteConnectionStringBuilder
        {
            DataSource = file,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            Pooling = true,
            DefaultTimeout = (int)BusyTimeout.TotalSeconds,
        };
        return new Database(serviceName, StorageProvider.Sqlite, sqlite.ConnectionString, null, logger, participant);
    }

    /// <summary>
    /// The SQLite file <paramref name="name"/> in <paramref name="directory"/>, made owner-only before SQLite opens
    /// it: the stores hold patient names and webhook secrets. A directory LabMesh makes is 0700, a file it makes
    /// 0600 (SQLite gives its -wal and -shm files the database file's mode). Existing files keep their mode: an
    /// operator may have chosen it. Windows has no such modes; its ACLs are the directory's.
    /// </summary>
    private static string CreateOwnerOnly(string directory, string name)
    {
        var path = Path.Combine(directory, name);
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
            return path;
        }

        Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        if (!File.Exists(path))
        {
            try
            {
                using var created = new FileStream(path, new FileStreamOptions
                {
                    Mode = FileMode.CreateNew,
                    Access = FileAccess.Write,
                    UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
                });
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another process (a second replica on the same directory) made it first.
            }
        }

        return path;
    }

    /// <summary>Opens a connection for reads (and for the caller's own transactions).</summary>
    public async Task<DbConnection> OpenAsync(CancellationToken cancellationToken)
    {
        if (_postgres is not null)
        {
            return await _postgres.OpenConnectionAsync(cancellationToken);
        }

        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            // The settings hold for the life of the SQLite connection, and Microsoft.Data.Sqlite pools those: they are
            // set once per connection it makes, not on every open (four statements each time, about twenty opens per
            // SubmitResults across the three stores).
            var handle = connection.Handle;
            if (handle is null || !Configured.TryGetValue(handle, out _))
            {
                using var pragma = connection.CreateCommand();
                // WAL lets readers run beside the one writer; NORMAL sync is durable across process
                // crashes in WAL mode. busy_timeout makes a second writer wait instead of failing.
                pragma.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=" + (int)BusyTimeout.TotalMilliseconds + ";";
                await pragma.ExecuteNonQueryAsync(cancellationToken);
                if (handle is not null)
                {
                    Configured.AddOrUpdate(handle, Marker);
                }
            }

            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// Runs <paramref name="work"/> in one write transaction and commits it. On SQLite the transaction
    /// takes the write lock at once (BEGIN IMMEDIATE), so two writers never deadlock upgrading a read
    /// lock, after waiting for this process's other writers of the file in its <see cref="SqliteWriteGate"/>
    /// (without blocking a thread; <paramref name="work"/> must not write to the same file another way);
    /// on PostgreSQL it is READ COMMITTED and retried on serialization failures and deadlocks.
    /// The registered <see cref="IWriteParticipant"/> (inside a mutating call not yet audited, the call's
    /// audit record) joins the same transaction before the commit.
    /// </summary>
    public async Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await WriteOnceAsync(work, cancellationToken);
            }
            catch (Exception ex) when (attempt < MaxWriteAttempts && IsTransient(ex))
            {
                // The transaction is rolled back and the file's gate left before the pause.
                LogTransientRetry(_logger, ServiceName, attempt, ex);
                await Task.Delay(TimeSpan.FromMilliseconds(10 * attempt * attempt), cancellationToken);
            }
        }
    }

    private async Task<T> WriteOnceAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        await using var connection = await OpenAsync(cancellationToken);
        // Left after the transaction below is committed or rolled back (disposed in reverse order).
        using var entry = _gate is null ? null : await _gate.EnterAsync(BusyTimeout, cancellationToken);
        if (entry is not null)
        {
            SqliteWriteGate.Hold(entry);
        }

        await using var transaction = connection is SqliteConnection sqlite
            ? sqlite.BeginTransaction(deferred: false)
            : await connection.BeginTransactionAsync(IsolationLevel.ReadCommitted, cancellationToken);
        var result = await work(connection, transaction);
        // The registered participant (the audit record of the mutating call in progress) commits with the change.
        var joined = _participant is null ? null : await _participant.JoinAsync(ServiceName, connection, transaction, cancellationToken);
        var committed = false;
        try
        {
            await transaction.CommitAsync(cancellationToken);
            committed = true;
        }
        finally
        {
            joined?.Invoke(committed);
        }

        return result;
    }

    /// <summary>
    /// Applies the migrations not applied yet, in version order, each in its own transaction with
    /// its row in <c>schema_migrations</c>. Replicas starting together are serialised by a
    /// PostgreSQL advisory lock (SQLite by the file's <see cref="SqliteWriteGate"/> in one process and its
    /// write lock across processes), so each step runs exactly once.
    /// </summary>
    public async Task MigrateAsync(IEnumerable<Migration> migrations, CancellationToken cancellationToken)
    {
        var ordered = migrations.OrderBy(m => m.Version).ToList();
        if (ordered.Select(m => m.Version).Distinct().Count() != ordered.Count)
        {
            throw new InvalidOperationException($"Duplicate migration versions for {ServiceName}.");
        }

        await using var connection = await OpenAsync(cancellationToken);
        // SQLite: this process's other writers of the file wait in its gate meanwhile (other processes in SQLite's write lock).
        using var entry = _gate is null ? null : await _gate.EnterAsync(BusyTimeout, cancellationToken);
        if (entry is not null)
        {
            SqliteWriteGate.Hold(entry);
        }

        if (Provider == StorageProvider.Postgres)
        {
            await ExecuteAsync(connection, null, $"SELECT pg_advisory_lock(hashtext('labmesh:migrate:{ServiceName}'));", cancellationToken);
            await ExecuteAsync(connection, null, $"CREATE SCHEMA IF NOT EXISTS {ServiceName};", cancellationToken);
        }

        try
        {
            await ExecuteAsync(connection, null,
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);",
                cancellationToken);
            foreach (var migration in ordered)
            {
                await using var transaction = connection is SqliteConnection sqlite
                    ? sqlite.BeginTransaction(deferred: false)
                    : await connection.BeginTransactionAsync(cancellationToken);
                await using (var check = connection.CreateCommand())
                {
                    check.Transaction = transaction;
                    check.CommandText = "SELECT COUNT(*) FROM schema_migrations WHERE version = @version;";
                    AddParameter(check, "version", migration.Version);
                    if (Convert.ToInt64(await check.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture) > 0)
                    {
                        await transaction.RollbackAsync(cancellationToken);
                        continue;
                    }
                }

                var sql = Provider == StorageProvider.Postgres ? migration.Postgres ?? migration.Sqlite : migration.Sqlite;
                await ExecuteAsync(connection, transaction, sql, cancellationToken);
                await using (var record = connection.CreateCommand())
                {
                    record.Transaction = transaction;
                    record.CommandText = "INSERT INTO schema_migrations (version, name, applied_at) VALUES (@version, @name, @at);";
                    AddParameter(record, "version", migration.Version);
                    AddParameter(record, "name", migration.Name);
                    AddParameter(record, "at", DateTimeOffset.UtcNow.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
                    await record.ExecuteNonQueryAsync(cancellationToken);
                }

                await transaction.CommitAsync(cancellationToken);
                LogMigrationApplied(_logger, ServiceName, migration.Version, migration.Name);
            }
        }
        finally
        {
            if (Provider == StorageProvider.Postgres)
            {
                await ExecuteAsync(connection, null, $"SELECT pg_advisory_unlock(hashtext('labmesh:migrate:{ServiceName}'));", CancellationToken.None);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_postgres is not null)
        {
            await _postgres.DisposeAsync();
        }
    }

    /// <summary>True when a write failed only because another writer held the data (retry it).</summary>
    public static bool IsTransient(Exception exception) => exception switch
    {
        SqliteException { SqliteErrorCode: 5 or 6 } => true, // SQLITE_BUSY, SQLITE_LOCKED
        PostgresException { SqlState: PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.DeadlockDetected } => true,
        _ => false,
    };

    /// <summary>True when an insert hit a unique constraint (an idempotent repeat, or a race).</summary>
    public static bool IsUniqueViolation(Exception exception) => exception switch
    {
        SqliteException { SqliteErrorCode: 19, SqliteExtendedErrorCode: 2067 or 1555 } => true,
        PostgresException { SqlState: PostgresErrorCodes.UniqueViolation } => true,
        _ => false,
    };

    private static async Task ExecuteAsync(DbConnection connection, DbTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = sql;
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static void AddParameter(DbCommand command, string name, object value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value;
        command.Parameters.Add(parameter);
    }

    private static bool IsIdentifier(string name) =>
        name.Length is > 0 and <= 48 && name.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_') && name[0] is >= 'a' and <= 'z';

    [LoggerMessage(Level = LogLevel.Information, Message = "Store {Service}: applied migration {Version} ({Name})")]
    private static partial void LogMigrationApplied(ILogger logger, string service, int version, string name);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Store {Service}: write attempt {Attempt} conflicted with another writer, retrying")]
    private static partial void LogTransientRetry(ILogger logger, string service, int attempt, Exception exception);
}
