using Google.Protobuf;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Requisition.Domain;
using LabMesh.Messaging.Caching;

namespace LabMesh.Requisition;

/// <summary>
/// Stores seed 003's lifecycle view when something changed that it is derived from: an order event the
/// service requests took, a results milestone. Reads never call it (a read derives the view for its answer
/// and stores nothing), so an etag changes only when the requisition or what it is derived from changed.
/// </summary>
public sealed class LifecycleRefresher(RequisitionStore store, IStatusCache cache)
{
    /// <summary>
    /// Derives the lifecycle of <paramref name="record"/> with its service requests' statuses
    /// <paramref name="serviceRequests"/> (as a change just left them) and stores it when it moved, with a new
    /// version and the status cache refreshed. Returns the record as it now is, and whether it stored.
    /// </summary>
    public async Task<(RequisitionRecord Record, bool Changed)> RefreshAsync(
        RequisitionRecord record, IReadOnlyList<Contracts.ServiceRequest.V1.ServiceRequest> serviceRequests, CancellationToken cancellationToken)
    {
        var lifecycle = Derive(record, serviceRequests);
        if (lifecycle == record.Lifecycle)
        {
            return (record, false);
        }

        if (await store.UpdateLifecycleAsync(record.Id, record.Version, lifecycle, cancellationToken) is not { } version)
        {
            // The requisition moved on while the service requests were read (another change got there first):
            // what was derived here may be stale, so nothing is stored or cached from it; that change derives its own.
            return (record, false);
        }

        record = record with { Lifecycle = lifecycle, Version = version };
        await cache.SetAsync(RequisitionWorkflow.CacheKind, record.Id, record.Version,
            RequisitionWorkflow.MapStatus(record).ToByteArray(), CancellationToken.None);
        return (record, true);
    }

    /// <summary>The lifecycle view of seed 003 from the order events, the service requests' business statuses and the results stage.</summary>
    public static LifecycleStatus Derive(RequisitionRecord record, IReadOnlyList<Contracts.ServiceRequest.V1.ServiceRequest> serviceRequests) =>
        Lifecycle.Derive(new LifecycleInputs(
            record.IsDraft,
            record.Modality,
            record.Events.Select(e => e.Status).ToList(),
            serviceRequests.Where(s => s.Status != ServiceRequestStatus.Revoked).Select(s => s.TaskBusinessStatus).ToList(),
            record.ResultsStage));
}
