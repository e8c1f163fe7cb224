using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using LabMesh.Messaging.Storage;
using LabMesh.Testing;
using Microsoft.Data.Sqlite;

namespace LabMesh.ServiceDefaults.Tests.Storage;

/// <summary>
/// The writers of one SQLite file in one process take turns in its <see cref="SqliteWriteGate"/>, on a real file:
/// none of them meets the file's write lock held (so none sleeps in SQLite's busy handler, which is what cost two
/// replicas in one process most of their webhook rate), a waiter cancelled leaves nothing held, and a write
/// transaction that waits for another on the same file fails at once instead of waiting for itself.
/// <para>
/// SQLite's busy handler is observed directly: the test installs a counting one (<c>sqlite3_busy_handler</c> of the
/// same bundled library) on the store's pooled connections, and checks that every transaction ran on one of them.
/// </para>
/// </summary>
public sealed class SqliteWriteGateTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static readonly Migration[] Items = [new(1, "items", "CREATE TABLE items (id INTEGER PRIMARY KEY AUTOINCREMENT, writer INTEGER NOT NULL);")];

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "labmesh-gate-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly string _service = "gate_" + Guid.NewGuid().ToString("N")[..12];
    private readonly List<Database> _stores = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var store in _stores)
        {
            await store.DisposeAsync();
        }

        SqliteConnection.ClearAllPools();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private string File => Path.Combine(_directory, _service + ".db");

    [Fact]
    public async Task TwoReplicasOnOneFile_WritersTakeTurnsInTheGate_NoneWaitsInSqlitesBusyHandler()
    {
        var (a, b) = (await StoreAsync(), await StoreAsync());

        // The pool's connections, each with the counting busy handler: as many as there will be writers, all opened
        // at once so the pool holds them all, then given back.
        const int Writers = 24;
        var counted = new HashSet<nint>();
        var opened = new List<DbConnection>();
        for (var i = 0; i < Writers; i++)
        {
            var connection = await a.OpenAsync(CancellationToken.None).WaitAsync(Timeout);
            counted.Add(BusyCounter.Install((SqliteConnection)connection));
            opened.Add(connection);
        }

        foreach (var connection in opened)
        {
            await connection.DisposeAsync();
        }

        BusyCounter.Reset();
        var (inside, most, uncounted) = (0, 0, 0);
        var hold = TimeSpan.FromMilliseconds(5);
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, Writers).Select(writer => (writer % 2 == 0 ? a : b).WriteAsync(async (connection, transaction) =>
        {
            if (!counted.Contains(((SqliteConnection)connection).Handle!.DangerousGetHandle()))
            {
                Interlocked.Increment(ref uncounted);
            }

            var now = Interlocked.Increment(ref inside);
            InterlockedMax(ref most, now);
            await InsertAsync(connection, transaction, writer);
            await Task.Delay(hold);
            Interlocked.Decrement(ref inside);
            return 0;
        }, CancellationToken.None))).WaitAsync(Timeout);
        clock.Stop();

        Assert.Equal(0, uncounted);
        Assert.Equal(1, most);
        Assert.Equal(0, BusyCounter.Calls);
        Assert.Equal(Writers, await CountAsync(a));
        Assert.False(SqliteWriteGate.For(File).IsHeld);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{Writers} write transactions each holding the file {hold.TotalMilliseconds} ms: {clock.Elapsed.TotalMilliseconds:0} ms in all"));
    }

    [Fact]
    public async Task AWriterOutsideTheGate_StillMeetsTheLock_InSqlitesBusyHandler_AndGetsItAfterwards()
    {
        // What the first test would see without the gate: the counter counts a writer waiting for the file's lock.
        var store = await StoreAsync();
        var (holding, release) = await HoldTheLockAsync(store);

        await using var outsider = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = File, Pooling = false }.ConnectionString);
        await outsider.OpenAsync().WaitAsync(Timeout);
        BusyCounter.Install(outsider);
        BusyCounter.Reset();
        var outside = Task.Run(() =>
        {
            using var transaction = outsider.BeginTransaction(deferred: false);
            using var command = outsider.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "INSERT INTO items (writer) VALUES (2);";
            command.ExecuteNonQuery();
            transaction.Commit();
        });

        await Eventually.HoldsAsync(() => BusyCounter.Calls > 0, Timeout, "the outside writer waiting in SQLite's busy handler");
        Assert.False(outside.IsCompleted);
        release.SetResult();
        await holding.WaitAsync(Timeout);
        await outside.WaitAsync(Timeout);
        Assert.Equal(2, await CountAsync(store));
    }

    [Fact]
    public async Task AWriterCancelledWhileWaiting_NeverRuns_AndLeavesTheGateToTheNext()
    {
        var (a, b) = (await StoreAsync(), await StoreAsync());
        var gate = SqliteWriteGate.For(File);
        var (holding, release) = await HoldTheLockAsync(a);

        using var cancel = new CancellationTokenSource();
        var ran = false;
        var waiting = b.WriteAsync(async (connection, transaction) =>
        {
            ran = true;
            await InsertAsync(connection, transaction, 2);
            return 0;
        }, cancel.Token);
        await Eventually.HoldsAsync(() => gate.Waiting == 1, Timeout, "the second writer waiting in the gate");
        await cancel.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(Timeout));
        Assert.Equal(0, gate.Waiting);
        Assert.True(gate.IsHeld);
        release.SetResult();
        await holding.WaitAsync(Timeout);
        Assert.False(gate.IsHeld);

        await b.WriteAsync((connection, transaction) => InsertAsync(connection, transaction, 3), CancellationToken.None).WaitAsync(Timeout);
        Assert.False(ran);
        Assert.False(gate.IsHeld);
        Assert.Equal(new long[] { 1, 3 }, await WritersAsync(a));
    }

    [Fact]
    public async Task AWriteThatWaitsForAnotherOnTheSameFile_FailsAtOnce_AndRollsBack()
    {
        var (a, b) = (await StoreAsync(), await StoreAsync());

        // Another replica's Database on the same file: one gate per file, not per Database.
        var nested = await Assert.ThrowsAsync<InvalidOperationException>(() => a.WriteAsync(async (connection, transaction) =>
        {
            await InsertAsync(connection, transaction, 1);
            return await b.WriteAsync((inner, innerTransaction) => InsertAsync(inner, innerTransaction, 2), CancellationToken.None);
        }, CancellationToken.None).WaitAsync(Timeout));

        Assert.Contains("same file", nested.Message, StringComparison.Ordinal);
        Assert.Equal(0, await CountAsync(a));
        Assert.False(SqliteWriteGate.For(File).IsHeld);
    }

    [Fact]
    public async Task WorkStartedInsideAWrite_WritesAfterItCommits_AndAnotherFileIsNotHeldUp()
    {
        var a = await StoreAsync();
        var other = Database.Create(_service + "_other", new StorageOptions { DataDirectory = _directory }, new ListLogger<Database>());
        _stores.Add(other);
        await other.MigrateAsync(Items, CancellationToken.None).WaitAsync(Timeout);

        // Started inside the transaction, it carries the flow's note that the gate is held; that note ends with the
        // transaction, so its own write (after the commit) is not taken for a write nested in it.
        var committed = NewSignal();
        Task? later = null;
        await a.WriteAsync(async (connection, transaction) =>
        {
            await InsertAsync(connection, transaction, 1);
            later = Task.Run(async () =>
            {
                await committed.Task;
                await a.WriteAsync((inner, innerTransaction) => InsertAsync(inner, innerTransaction, 2), CancellationToken.None);
            });

            // A write on another file inside this one: a gate of its own, so it goes through at once.
            return await other.WriteAsync((inner, innerTransaction) => InsertAsync(inner, innerTransaction, 9), CancellationToken.None);
        }, CancellationToken.None).WaitAsync(Timeout);
        committed.SetResult();
        await later!.WaitAsync(Timeout);

        Assert.Equal(new long[] { 1, 2 }, await WritersAsync(a));
        Assert.Equal(new long[] { 9 }, await WritersAsync(other));
    }

    private async Task<Database> StoreAsync()
    {
        var store = Database.Create(_service, new StorageOptions { DataDirectory = _directory }, new ListLogger<Database>());
        _stores.Add(store);
        await store.MigrateAsync(Items, CancellationToken.None).WaitAsync(Timeout);
        return store;
    }

    /// <summary>A write transaction of <paramref name="store"/> that has inserted a row and holds the file until <c>release</c> is set.</summary>
    private static async Task<(Task<int> Holding, TaskCompletionSource Release)> HoldTheLockAsync(Database store)
    {
        var (inside, release) = (NewSignal(), NewSignal());
        var holding = store.WriteAsync(async (connection, transaction) =>
        {
            await InsertAsync(connection, transaction, 1);
            inside.SetResult();
            await release.Task;
            return 0;
        }, CancellationToken.None);
        await inside.Task.WaitAsync(Timeout);
        return (holding, release);
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static async Task<int> InsertAsync(DbConnection connection, DbTransaction transaction, int writer)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText = "INSERT INTO items (writer) VALUES (@writer);";
        var parameter = command.CreateParameter();
        parameter.ParameterName = "writer";
        parameter.Value = writer;
        command.Parameters.Add(parameter);
        return await command.ExecuteNonQueryAsync();
    }

    private static async Task<long> CountAsync(Database store) => (await WritersAsync(store)).Count;

    private static async Task<List<long>> WritersAsync(Database store)
    {
        await using var connection = await store.OpenAsync(CancellationToken.None).WaitAsync(Timeout);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT writer FROM items ORDER BY id;";
        await using var reader = await command.ExecuteReaderAsync();
        var writers = new List<long>();
        while (await reader.ReadAsync())
        {
            writers.Add(reader.GetInt64(0));
        }

        return writers;
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while ((seen = Volatile.Read(ref target)) < value && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
        }
    }

    /// <summary>
    /// SQLite's busy handler on a connection, replaced by one that counts its calls (then sleeps 1 ms and tries again,
    /// as SQLite's own does at first). It replaces the connection's busy timeout; the tests in this class run one at a time.
    /// </summary>
    private static class BusyCounter
    {
        private static readonly BusyHandler Handler = OnBusy;
        private static int _calls;

        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        private delegate int BusyHandler(nint argument, int count);

        public static int Calls => Volatile.Read(ref _calls);

        public static void Reset() => Interlocked.Exchange(ref _calls, 0);

        /// <summary>Installs the counter on <paramref name="connection"/>; answers its native handle.</summary>
        public static nint Install(SqliteConnection connection)
        {
            var handle = connection.Handle!.DangerousGetHandle();
            Assert.Equal(0, sqlite3_busy_handler(handle, Handler, 0));
            return handle;
        }

        private static int OnBusy(nint argument, int count)
        {
            Interlocked.Increment(ref _calls);
            Thread.Sleep(1);
            return count < 30_000 ? 1 : 0;
        }

        [DllImport("e_sqlite3", CallingConvention = CallingConvention.Cdecl)]
        [DefaultDllImportSearchPaths(DllImportSearchPath.AssemblyDirectory | DllImportSearchPath.SafeDirectories)]
        private static extern int sqlite3_busy_handler(nint db, BusyHandler handler, nint argument);
    }
}
