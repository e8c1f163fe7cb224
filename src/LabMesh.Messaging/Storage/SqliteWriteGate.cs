using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;

namespace LabMesh.Messaging.Storage;

/// <summary>
/// The writers of one SQLite file in this process, one at a time, queued without blocking a thread. SQLite has one
/// write lock per file; a second writer that asks for it while it is held falls into SQLite's busy handler, which
/// sleeps on the calling thread (1, 2, 5, 10, 15, 20, 25 ... 100 ms) and wakes late even when the lock was freed at
/// once: two Notification replicas in one process (the all-in-one host, a single-machine deploy, the bench) lost
/// most of their webhook rate to those sleeps. Every write transaction of <see cref="Database"/> on a file first
/// enters its gate (one per full path, shared by every <see cref="Database"/> on that file) and leaves it after the
/// commit or rollback, so a waiter starts the moment the writer before it is done. The busy handler still serves
/// writers in other processes on the same file.
/// <para>
/// A <see cref="SemaphoreSlim"/> per file rather than a package: the gate is the semaphore, a dictionary of them
/// by path, and the check below; nothing in the .NET libraries or Microsoft.Data.Sqlite queues SQLite's writers.
/// </para>
/// </summary>
internal sealed class SqliteWriteGate
{
    private static readonly ConcurrentDictionary<string, SqliteWriteGate> Gates = new(StringComparer.Ordinal);

    // The gate this flow of work holds, to refuse a write transaction that waits for another on the same file
    // (which would wait for itself: with the gate for ever, without it for the busy timeout).
    private static readonly AsyncLocal<Entry?> Current = new();

    // Never disposed: a gate lives as long as the process (one per database file), and a SemaphoreSlim whose
    // AvailableWaitHandle is never asked for holds no handle.
    private readonly SemaphoreSlim _writer;
    private int _waiting;

    private SqliteWriteGate(string file, SemaphoreSlim writer)
    {
        File = file;
        _writer = writer;
    }

    /// <summary>The database file's full path.</summary>
    public string File { get; }

    /// <summary>The gate of <paramref name="file"/> (made absolute), the same instance for every caller in this process.</summary>
    public static SqliteWriteGate For(string file) => Gates.GetOrAdd(Path.GetFullPath(file), static path => new SqliteWriteGate(path, new SemaphoreSlim(1, 1)));

    /// <summary>
    /// Waits (asynchronously, in arrival order) until no other write transaction of this process holds the file, at
    /// most <paramref name="timeout"/> (as SQLite's busy timeout: then SQLITE_BUSY, which callers already treat as a
    /// transient conflict). The caller disposes the answer once its transaction has committed or rolled back, and
    /// passes it to <see cref="Hold"/> in the method that runs the transaction. Cancelled while waiting, it holds nothing.
    /// </summary>
    public async Task<Entry> EnterAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (Current.Value is { Held: true } held && ReferenceEquals(held.Gate, this))
        {
            throw new InvalidOperationException(
                $"A write transaction on {Path.GetFileName(File)} waited for another write transaction on the same file: it would wait for itself.");
        }

        bool entered;
        Interlocked.Increment(ref _waiting);
        try
        {
            entered = await _writer.WaitAsync(timeout, cancellationToken);
        }
        finally
        {
            Interlocked.Decrement(ref _waiting);
        }

        if (!entered)
        {
            throw new SqliteException($"database is locked: another write transaction of this process held {Path.GetFileName(File)} for {timeout.TotalSeconds:0} s", 5);
        }

        return new Entry(this);
    }

    /// <summary>Marks the calling flow (and what it starts) as holding <paramref name="entry"/>'s gate until the entry is disposed.</summary>
    public static void Hold(Entry entry) => Current.Value = entry;

    /// <summary>True while some writer of this process holds the gate (for tests).</summary>
    internal bool IsHeld => _writer.CurrentCount == 0;

    /// <summary>The writers waiting to enter (for tests).</summary>
    internal int Waiting => Volatile.Read(ref _waiting);

    /// <summary>One holding of the gate; disposing it lets the next writer in.</summary>
    public sealed class Entry(SqliteWriteGate gate) : IDisposable
    {
        private int _released;

        public SqliteWriteGate Gate { get; } = gate;

        public bool Held => Volatile.Read(ref _released) == 0;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                Gate._writer.Release();
            }
        }
    }
}
