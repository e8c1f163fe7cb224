using Grpc.Core;
using LabMesh.Messaging.Events;
using LabMesh.Security.Identity;
using LabMesh.ServiceDefaults.Peers;

namespace LabMesh.ResultsInterpretation;

/// <summary>
/// Brings the other services in line with stored reports: the service requests' statuses and the
/// requisition's results milestone. Run right after each commit (<see cref="ResultsWorkflow"/>) and,
/// for what could not land then, every few seconds until it does. Each item's attempts are counted
/// (<see cref="PeerWork"/>: kinds <see cref="StatusesKind"/> per report version and <see cref="StageKind"/>
/// per milestone): it backs off after a failure and is parked after <c>LabMesh:PeerWork:ParkAfter</c>
/// refusals. Both calls are idempotent, so several replicas doing this at once is harmless.
/// </summary>
public sealed partial class ResultsEffects(
    ResultsStore store,
    MeshGateway peers,
    [FromKeyedServices(ResultsStore.ServiceName)] PeerWork work,
    ILogger<ResultsEffects> logger) : BackgroundService
{
    /// <summary>The <see cref="PeerWork"/> kind of a report version's service-request statuses.</summary>
    public const string StatusesKind = "report_statuses";

    /// <summary>The <see cref="PeerWork"/> kind of a requisition's results milestone.</summary>
    public const string StageKind = "results_stage";

    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan PassTimeout = TimeSpan.FromSeconds(10);
    private readonly WakeSignal _wake = new();

    /// <summary>Runs a pass soon instead of at the next interval.</summary>
    public void Nudge() => _wake.Set();

    /// <summary>
    /// Pushes what the peers have not heard yet and is due: each stored report's service-request statuses, then
    /// the results milestone (once the statuses landed, so the requisition derives its view from both).
    /// Only <paramref name="requisitionId"/>'s when given. A peer that is down or slow ends the pass and
    /// leaves the rest to this worker's next one.
    /// </summary>
    public async Task<int> ApplyAsync(string? requisitionId, DateTime deadline, CancellationToken cancellationToken)
    {
        var done = 0;
        var now = work.Now();
        // Per requisition, its service requests as the last RecordResults of this pass left them: the milestone below
        // hands them on, so the Requisition service derives its lifecycle without reading them again.
        var answered = new Dictionary<string, IReadOnlyList<Contracts.ServiceRequest.V1.ServiceRequest>>(StringComparer.Ordinal);
        foreach (var pending in await store.ListUnappliedReportsAsync(requisitionId, StatusesKind, now, work.Options.BatchSize, cancellationToken))
        {
            var report = pending.Report;
            try
            {
                answered[report.RequisitionId] = await peers.RecordResultsAsync(ServiceCaller(report.TeamId), report.RequisitionId, report.ServiceRequestIds,
                    pending.IsFinal, $"results report {report.Id} v{report.Version}", deadline, cancellationToken);
                await store.MarkEffectsAppliedAsync(report.Id, report.Version, StatusesKind, CancellationToken.None);
                done++;
            }
            catch (RpcException ex) when (!cancellationToken.IsCancellationRequested)
            {
                if (!await FailedAsync(StatusesKind, report.Id, report.Version, report.TeamId, report.RequisitionId, ex, requisitionId))
                {
                    return done;
                }
            }
        }

        foreach (var progress in await store.ListUnsyncedProgressAsync(requisitionId, StageKind, now, work.Options.BatchSize, cancellationToken))
        {
            try
            {
                await peers.RecordResultsStageAsync(ServiceCaller(progress.TeamId), progress.RequisitionId, progress.Stage, progress.Sequence,
                    answered.GetValueOrDefault(progress.RequisitionId, []), deadline, cancellationToken);
                await store.MarkProgressSyncedAsync(progress.RequisitionId, progress.Sequence, StageKind, CancellationToken.None);
                done++;
            }
            catch (RpcException ex) when (!cancellationToken.IsCancellationRequested)
            {
                if (!await FailedAsync(StageKind, progress.RequisitionId, progress.Sequence, progress.TeamId, progress.RequisitionId, ex, requisitionId))
                {
                    return done;
                }
            }
        }

        return done;
    }

    /// <summary>Counts the failure; false when the pass should stop (the peer is down or overloaded: the rest would fail alike).</summary>
    private async Task<bool> FailedAsync(
        string kind, string itemId, long version, string teamId, string itemRequisitionId, RpcException ex, string? requisitionId)
    {
        await work.FailedAsync(kind, itemId, version, teamId, ex.StatusCode, CancellationToken.None);
        if (!PeerErrors.IsTransient(ex))
        {
            LogEffectRefused(logger, itemRequisitionId, kind, ex.StatusCode);
            return true;
        }

        LogEffectsDeferred(logger, itemRequisitionId, ex.StatusCode);
        // A call made right after a commit hands over to this worker; the worker's own pass
        // waits for its interval instead of spinning while a peer is down.
        if (requisitionId is not null)
        {
            Nudge();
        }

        return false;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var parkedGauge = work.ReportParkedItems();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await _wake.WaitAsync(Interval, stoppingToken);
                await ApplyAsync(null, DateTime.UtcNow + PassTimeout, stoppingToken);
                await work.CountParkedAsync(stoppingToken);
            }
            catch (Exception ex) when (stoppingToken.IsCancellationRequested && ex is OperationCanceledException or RpcException { StatusCode: StatusCode.Cancelled })
            {
                // Stopping: a peer call cancelled by the stopping token ends as gRPC's CANCELLED, not as an OperationCanceledException.
                return;
            }
            catch (Exception ex)
            {
                LogPassFailed(logger, ex);
            }
        }
    }

    public override void Dispose()
    {
        _wake.Dispose();
        base.Dispose();
    }

    private static Caller ServiceCaller(string teamId) => new(teamId, "service:" + ResultsStore.ServiceName, CallerRole.Service, null);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Requisition {RequisitionId}: a peer did not answer ({Status}); retrying later")]
    private static partial void LogEffectsDeferred(ILogger logger, string requisitionId, StatusCode status);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Requisition {RequisitionId}: the {Kind} were refused ({Status}); retrying later unless parked")]
    private static partial void LogEffectRefused(ILogger logger, string requisitionId, string kind, StatusCode status);

    [LoggerMessage(Level = LogLevel.Error, Message = "A results-effects pass failed")]
    private static partial void LogPassFailed(ILogger logger, Exception exception);
}
