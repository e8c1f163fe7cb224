using LabMesh.ServiceDefaults.Hosting;
using LabMesh.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;

namespace LabMesh.ServiceDefaults.Tests.Hosting;

/// <summary>
/// A replica gives memory back once per quiet spell (IdleMemoryTrimmer): a quiet window after a busy one trims, a
/// process that stays quiet is not trimmed again until it was busy, and the trim is a full, blocking, compacting GC.
/// </summary>
public sealed class IdleMemoryTests
{
    private const long Quiet = 1000;

    [Fact]
    public void QuietSpells_TrimOnceAfterEachBusySpell()
    {
        var spells = new QuietSpells(Quiet);

        Assert.False(spells.WentQuiet(0), "the first reading is only the baseline");
        Assert.True(spells.WentQuiet(10), "quiet since the start");
        Assert.False(spells.WentQuiet(20), "still quiet: already trimmed");
        Assert.False(spells.WentQuiet(20 + Quiet), "busy");
        Assert.False(spells.WentQuiet(40 + (2 * Quiet)), "still busy");
        Assert.True(spells.WentQuiet(50 + (2 * Quiet)), "quiet again after the busy spell");
        Assert.False(spells.WentQuiet(60 + (2 * Quiet)), "quiet, trimmed already");
    }

    [Fact]
    public void QuietSpells_JustUnderTheThresholdIsQuiet()
    {
        var spells = new QuietSpells(Quiet);
        spells.WentQuiet(0);

        Assert.True(spells.WentQuiet(Quiet - 1));
        Assert.False(spells.WentQuiet((2 * Quiet) - 1), "exactly the threshold is busy");
        Assert.True(spells.WentQuiet((2 * Quiet) - 1));
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
        using var trimmer = new IdleMemoryTrimmer(TimeProvider.System, NullLogger<IdleMemoryTrimmer>.Instance, TimeSpan.FromMilliseconds(50), long.MaxValue);
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
