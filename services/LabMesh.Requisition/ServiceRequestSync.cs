using Grpc.Core;
using LabMesh.Messaging.Events;
using LabMesh.Security.Identity;
using LabMesh.ServiceDefaults.Peers;

namespace LabMesh.Requisition;

/// <summary>
/// Brings the ServiceRequest service in line with committed requisitions when a call made during
/// the request did not land (the peer was down, slow or refusing): it confirms pending service requests
/// and applies each requisition's latest order event. Each requisition's attempts are counted per
/// latest order event (<see cref="PeerWork"/>, kind <see cref="WorkKind"/>): it backs off after a
/// failure and is parked after <c>LabMesh:PeerWork:ParkAfter</c> refusals, and a later order event is
/// tried at once. Both calls are idempotent, so several replicas doing this at once is harmless.
/// </summary>
public sealed partial class ServiceRequestSync(
    RequisitionStore store,
    ServiceRequestGateway gateway,
    [FromKeyedServices(RequisitionStore.ServiceName)] PeerWork work,
    LifecycleRefresher lifecycles,
    ILogger<ServiceRequestSync> logger) : BackgroundService
{
    /// <summary>The <see cref="PeerWork"/> kind of a requisition's confirm and latest order event.</summary>
    public const string WorkKind = "service_requests";

    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);
    private readonly WakeSignal _wake = new();

    /// <summary>Runs a pass soon instead of at the next interval.</summary>
    public void Nudge() => _wake.Set();

    /// <summary>One pass over the requisitions that are due; returns how many were brought in line.</summary>
    public async Task<int> SyncOnceAsync(CancellationToken cancellationToken)
    {
        var done = 0;
        foreach (var record in await store.ListUnsyncedAsync(WorkKind, work.Now(), work.Options.BatchSize, cancellationToken))
        {
            var caller = new Caller(record.TeamId, "service:" + RequisitionStore.ServiceName, CallerRole.Service, null);
            var deadline = DateTime.UtcNow.AddSeconds(10);
            try
            {
                if (!record.ServiceRequestsConfirmed)
                {
                    await gateway.ConfirmAsync(caller, record.Id, deadline, cancellationToken);
                    await store.MarkServiceRequestsConfirmedAsync(record.Id, cancellationToken);
                }

                if (record.ServiceRequestsSyncedEventId < record.LastEventId)
                {
                    var applied = await gateway.ApplyOrderEventAsync(caller, record.Id, record.SubStatus, record.LastEventId, deadline, cancellationToken);
                    await store.MarkServiceRequestsSyncedAsync(record.Id, record.LastEventId, cancellationToken);
                    // The event moved the service requests now: the lifecycle derived with their statuses changes with it.
                    if (await store.GetAsync(record.TeamId, record.Id, cancellationToken) is { } full)
                    {
                        await lifecycles.RefreshAsync(full, applied, CancellationToken.None);
                    }
                }

                await work.SucceededAsync(WorkKind, record.Id, record.LastEventId, CancellationToken.None);
                done++;
            }
            catch (RpcException ex) when (!cancellationToken.IsCancellationRequested)
            {
                LogSyncFailed(logger, record.Id, ex.StatusCode);
                await work.FailedAsync(WorkKind, record.Id, record.LastEventId, record.TeamId, ex.StatusCode, CancellationToken.None);
                if (PeerErrors.IsTransient(ex))
                {
                    // The peer is down or overloaded: the rest of the batch would fail alike; the next pass tries again.
                    break;
                }
            }
        }

        return done;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var parkedGauge = work.ReportParkedItems();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await _wake.WaitAsync(Interval, stoppingToken);
                await SyncOnceAsync(stoppingToken);
                await work.CountParkedAsync(stoppingToken);
            }
            catch (Exception) when (stoppingToken.IsCancellationRequested)
            {
                // Stopping: whatever the pass was doing (a call cut short, a peer gone) is done again at
                // the next start, from the store.
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Requisition {RequisitionId}: syncing its service requests failed ({Status}); retrying later")]
    private static partial void LogSyncFailed(ILogger logger, string requisitionId, StatusCode status);

    [LoggerMessage(Level = LogLevel.Error, Message = "A service-request sync pass failed")]
    private static partial void LogPassFailed(ILogger logger, Exception exception);
}
