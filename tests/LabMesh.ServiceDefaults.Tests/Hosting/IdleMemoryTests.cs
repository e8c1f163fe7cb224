using LabMesh.ServiceDefaults.Hosting;
using LabMesh.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;

namespace LabMesh.ServiceDefaults.Tests.Hosting;

/// <summary>
/// A replica gives memory back when it goes quiet (IdleMemoryTrimmer): a quiet window after a busy one trims; a process
/// that stays quiet is trimmed again only when its GC's committed memory grew back, never while busy; and the trim is a
/// full, blocking, compacting GC.
/// </summary>
public sealed class IdleMemoryTests
{
    private const long Quiet = 1000;
    private const long Regrow = 10_000;

    [Fact]
    public void QuietSpells_TrimOnceAfterEachBusySpell()
    {
        var spells = new QuietSpells(Quiet, Regrow);

        Assert.False(spells.ShouldTrim(0, 100), "the first reading is only the baseline");
        Assert.True(Trims(spells, 10, 100), "quiet since the start");
        Assert.False(Trims(spells, 20, 100), "still quiet: already trimmed");
        Assert.False(Trims(spells, 20 + Quiet, 100 + Regrow), "busy, however much is committed");
        Assert.False(Trims(spells, 40 + (2 * Quiet), 100 + Regrow), "still busy");
        Assert.True(Trims(spells, 50 + (2 * Quiet), 100 + Regrow), "quiet again after the busy spell");
        Assert.False(Trims(spells, 60 + (2 * Quiet), 100), "quiet, trimmed already");
    }

    [Fact]
    public void QuietSpells_JustUnderTheThresholdIsQuiet()
    {
        var spells = new QuietSpells(Quiet, Regrow);
        spells.ShouldTrim(0, 100);

        Assert.True(Trims(spells, Quiet - 1, 100));
        Assert.False(Trims(spells, (2 * Quiet) - 1, 100), "exactly the threshold is busy");
        Assert.True(Trims(spells, (2 * Quiet) - 1, 100));
    }

    [Fact]
    public void QuietSpells_TrimAgainWhileQuiet_OnlyWhenTheCommittedMemoryGrewBack()
    {
        var spells = new QuietSpells(Quiet, Regrow);
        spells.ShouldTrim(0, 500);
        Assert.True(spells.ShouldTrim(10, 500));
        spells.Trimmed(100);

        Assert.False(Trims(spells, 20, 100 + Regrow - 1), "grew back, but less than the regrowth");
        Assert.True(Trims(spells, 30, 100 + Regrow), "grew back by the regrowth while every window was quiet");
        Assert.False(Trims(spells, 40, 100 + Regrow), "the trim left as much committed as before it: nothing to win");
    }

    /// <summary>Asks, and records a trim that leaves <paramref name="committed"/> committed, as the trimmer does.</summary>
    private static bool Trims(QuietSpells spells, long allocated, long committed)
    {
        if (!spells.ShouldTrim(allocated, committed))
        {
            return false;
        }

        spells.Trimmed(committed);
        return true;
    }

    [Fact]
    public void Trim_RunsAFullCompactingCollection()
    {
        var before = GC.GetGCMemoryInfo(GCKind.FullBlocking).Index;

        IdleMemoryTrimmer.Trim();

        var after = GC.GetGCMemoryInfo(GCKind.FullBlocking);
        Assert.True(after.Index > before, $"no full blocking GC after the trim (index {before} -> {after.Index})");
        Assert.True(after.Compacted);
        Assert.Equal(GC.MaxGeneration, after.Generation);
    }

    [Fact]
    public async Task Trimmer_TrimsWhenItsWindowWasQuiet()
    {
        // Every window counts as quiet here (the test process allocates at its own pace), so the first tick trims.
        using var trimmer = new IdleMemoryTrimmer(TimeProvider.System, NullLogger<IdleMemoryTrimmer>.Instance, TimeSpan.FromMilliseconds(50), long.MaxValue, long.MaxValue);
        var before = GC.GetGCMemoryInfo(GCKind.FullBlocking).Index;

        await trimmer.StartAsync(CancellationToken.None);
        await Eventually.HoldsAsync(() => GC.GetGCMemoryInfo(GCKind.FullBlocking).Index > before, TimeSpan.FromSeconds(10), "a full blocking GC by the trimmer");
        await trimmer.StopAsync(CancellationToken.None);
    }

    [Fact]
    public async Task EveryServiceHost_RunsTheTrimmer()
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ApplicationName = "LabMesh.Requisition", EnvironmentName = "Production" });
        builder.AddServiceDefaults();
        await using var app = builder.Build();

        Assert.Single(app.Services.GetServices<IHostedService>().OfType<IdleMemoryTrimmer>());
    }
}
