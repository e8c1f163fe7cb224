using Grpc.Core;
using LabMesh.ServiceDefaults.Hosting;
using LabMesh.ServiceDefaults.Identity;
using LabMesh.ServiceDefaults.Peers;

namespace LabMesh.ResultsInterpretation;

/// <summary>
/// Brings the other services in line with stored reports: the service requests' statuses and the
/// requisition's results milestone. Run right after each commit (<see cref="ResultsWorkflow"/>) and,
/// for what could not land then, every few seconds until it does. Both calls are idempotent, so
/// several replicas doing this at once is harmless.
/// </summary>
public sealed partial class ResultsEffects(ResultsStore store, MeshGateway peers, ILogger<ResultsEffects> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan PassTimeout = TimeSpan.FromSeconds(10);
    private readonly WakeSignal _wake = new();

    /// <summary>Runs a pass soon instead of at the next interval.</summary>
    public void Nudge() => _wake.Set();

    /// <summary>
    /// Pushes what the peers have not heard yet: each stored report's service-request statuses, then
    /// the results milestone (after the statuses, so the requisition derives its view from both).
    /// Only <paramref name="requisitionId"/>'s when given. A peer that is down or slow leaves the rest
    /// to this worker's next pass.
    /// </summary>
    public async Task<int> ApplyAsync(string? requisitionId, DateTime deadline, CancellationToken cancellationToken)
    {
        var done = 0;
        try
        {
            var blocked = new HashSet<string>(StringComparer.Ordinal);
            foreach (var pending in await store.ListUnappliedReportsAsync(requisitionId, 100, cancellationToken))
            {
                var report = pending.Report;
                if (blocked.Contains(report.RequisitionId))
                {
                    continue;
                }

                try
                {
                    await peers.RecordResultsAsync(ServiceCaller(report.TeamId), report.RequisitionId, report.ServiceRequestIds,
                        pending.IsFinal, $"results report {report.Id} v{report.Version}", deadline, cancellationToken);
                    await store.MarkEffectsAppliedAsync(report.Id, report.Version, CancellationToken.None);
                    done++;
                }
                catch (RpcException ex) when (!PeerChannel.IsTransient(ex))
                {
                    LogEffectRejected(logger, report.RequisitionId, "service-request statuses", ex.StatusCode);
                    blocked.Add(report.RequisitionId);
                }
            }

            foreach (var progress in await store.ListUnsyncedProgressAsync(requisitionId, 100, cancellationToken))
            {
                if (blocked.Contains(progress.RequisitionId))
                {
                    continue;
                }

                try
                {
                    await peers.RecordResultsStageAsync(ServiceCaller(progress.TeamId), progress.RequisitionId, progress.Stage, progress.Sequence,
                        deadline, cancellationToken);
                    await store.MarkProgressSyncedAsync(progress.RequisitionId, progress.Sequence, CancellationToken.None);
                    done++;
                }
                catch (RpcException ex) when (!PeerChannel.IsTransient(ex))
                {
                    LogEffectRejected(logger, progress.RequisitionId, "results milestone", ex.StatusCode);
                }
            }
        }
        catch (RpcException ex) when (PeerChannel.IsTransient(ex))
        {
            LogEffectsDeferred(logger, requisitionId ?? "(all)", ex.StatusCode);
            // A call made right after a commit hands over to this worker; the worker's own pass
            // waits for its interval instead of spinning while a peer is down.
            if (requisitionId is not null)
            {
                Nudge();
            }
        }

        return done;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await _wake.WaitAsync(Interval, stoppingToken);
                await ApplyAsync(null, DateTime.UtcNow + PassTimeout, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
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

    [LoggerMessage(Level = LogLevel.Error, Message = "Requisition {RequisitionId}: the {Effect} were refused ({Status}); retrying later")]
    private static partial void LogEffectRejected(ILogger logger, string requisitionId, string effect, StatusCode status);

    [LoggerMessage(Level = LogLevel.Error, Message = "A results-effects pass failed")]
    private static partial void LogPassFailed(ILogger logger, Exception exception);
}
