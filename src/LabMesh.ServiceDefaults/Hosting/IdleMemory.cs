using System.Runtime.InteropServices;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LabMesh.ServiceDefaults.Hosting;

/// <summary>
/// Gives memory back to the machine when a replica goes quiet (issue 22 item 3): a full compacting GC in the runtime's
/// aggressive mode (it decommits the free regions and the gen0 budget a load grew) and glibc's <c>malloc_trim</c> (the
/// runtime's and the JIT's native allocations freed during the load stay in glibc's arenas otherwise), once when a
/// replica goes quiet and again while it stays quiet only if the GC's committed memory grew back by
/// <see cref="RegrowBytes"/> (a trickle of events, each window quiet, can fill the budget a trim emptied).
/// </summary>
/// <remarks>
/// Why: after a load a replica held 180 MB resident with 6 MB of live managed objects: about 29 MB was the GC's
/// committed but free memory and 9 MB freed native memory, neither given back while no further GC ran, and an idle
/// replica runs few. Neither the GC's settings (ConserveMemory, gen0size, workstation GC) nor <c>MALLOC_ARENA_MAX</c>
/// gave that back (bench/README.md, idle memory). Quiet means less than <see cref="QuietBytes"/> allocated in a
/// <see cref="Window"/>: the background workers' polls allocate far less, a few calls a second more. A replica under
/// load is never trimmed, so its GC keeps the budget the load needs; the next call after a trim pays the page faults
/// of a fresh gen0, once.
/// </remarks>
internal sealed partial class IdleMemoryTrimmer : BackgroundService
{
    /// <summary>How often the allocations are read.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromSeconds(10);

    /// <summary>Fewer bytes allocated than this in a <see cref="Window"/> is quiet.</summary>
    public const long QuietBytes = 4 * 1024 * 1024;

    /// <summary>While quiet, trim again once the GC's committed memory is this much above what the last trim left.</summary>
    public const long RegrowBytes = 16 * 1024 * 1024;

    private readonly TimeProvider _time;
    private readonly ILogger<IdleMemoryTrimmer> _logger;
    private readonly TimeSpan _window;
    private readonly QuietSpells _spells;

    public IdleMemoryTrimmer(TimeProvider time, ILogger<IdleMemoryTrimmer> logger)
        : this(time, logger, Window, QuietBytes, RegrowBytes)
    {
    }

    internal IdleMemoryTrimmer(TimeProvider time, ILogger<IdleMemoryTrimmer> logger, TimeSpan window, long quietBytes, long regrowBytes)
    {
        _time = time;
        _logger = logger;
        _window = window;
        _spells = new QuietSpells(quietBytes, regrowBytes);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_window, _time);
        _spells.ShouldTrim(GC.GetTotalAllocatedBytes(), GC.GetGCMemoryInfo().TotalCommittedBytes);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var before = GC.GetGCMemoryInfo().TotalCommittedBytes;
                if (_spells.ShouldTrim(GC.GetTotalAllocatedBytes(), before))
                {
                    Trim();
                    var after = GC.GetGCMemoryInfo().TotalCommittedBytes;
                    _spells.Trimmed(after);
                    LogTrimmed(_logger, before / 1_000_000.0, after / 1_000_000.0);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // The host is stopping.
        }
    }

    /// <summary>The aggressive full GC, then glibc's trim where glibc is the C library (not on musl, not off Linux).</summary>
    internal static void Trim()
    {
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        if (!OperatingSystem.IsLinux())
        {
            return;
        }

        try
        {
            _ = MallocTrim(0);
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            // Not glibc (Alpine's musl has no malloc_trim): the GC's part is done.
        }
    }

    [DllImport("libc.so.6", EntryPoint = "malloc_trim")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static extern int MallocTrim(nuint pad);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Quiet: gave memory back (GC committed {BeforeMb:0.0} MB -> {AfterMb:0.0} MB)")]
    private static partial void LogTrimmed(ILogger logger, double beforeMb, double afterMb);
}

/// <summary>
/// When to trim, from the bytes a process allocated so far (<see cref="GC.GetTotalAllocatedBytes"/>) and the GC's
/// committed memory, read once per window: in the first quiet window after a busy one (or after the first reading),
/// and in a later quiet window only if the committed memory grew by <c>regrowBytes</c> since the last trim.
/// </summary>
internal sealed class QuietSpells(long quietBytes, long regrowBytes)
{
    private long? _lastAllocated;
    private bool _armed = true;
    private long _committedAfterTrim;

    public bool ShouldTrim(long allocatedSoFar, long committed)
    {
        var last = _lastAllocated;
        _lastAllocated = allocatedSoFar;
        if (last is null)
        {
            return false;
        }

        if (allocatedSoFar - last.Value >= quietBytes)
        {
            _armed = true;
            return false;
        }

        return _armed || committed - _committedAfterTrim >= regrowBytes;
    }

    /// <summary>A trim ran and left this much committed.</summary>
    public void Trimmed(long committedAfter)
    {
        _armed = false;
        _committedAfterTrim = committedAfter;
    }
}
