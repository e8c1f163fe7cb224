using Google.Protobuf;
using LabMesh.Contracts.Common.V1;
using LabMesh.Messaging.Caching;
using LabMesh.Messaging.Events;

namespace LabMesh.Requisition;

/// <summary>
/// The durable path of an order's status to the cache: placing an order and recording an order event commit
/// an <c>order.placed</c> or <c>order.status_changed</c> event with the change, and when the outbox relay has
/// published one, this writes the requisition's status as the store has it now into the cache, before the
/// row is marked sent. A change made while Redis was down reaches the cache once Redis is back and a relay
/// has run, even if the process that made it died; the write is versioned, so the cache never goes back.
/// The lifecycle view and results stages commit no event: they are derived again on every full read.
/// </summary>
public sealed class StatusCacheRefresher(RequisitionStore store, IStatusCache cache) : IOutboxPublishedListener
{
    /// <inheritdoc/>
    public async Task OnPublishedAsync(IReadOnlyList<Event> events, CancellationToken cancellationToken)
    {
        var requisitions = events
            .Where(e => e.Type is EventTypes.OrderPlaced or EventTypes.OrderStatusChanged && !string.IsNullOrEmpty(e.RequisitionId))
            .Select(e => (Team: e.TeamId, Id: e.RequisitionId))
            .Distinct();
        foreach (var (team, id) in requisitions)
        {
            if (await store.GetAsync(team, id, cancellationToken) is { } record)
            {
                await cache.WriteNowAsync(RequisitionWorkflow.CacheKind, record.Id, record.Version, RequisitionWorkflow.MapStatus(record).ToByteArray(), cancellationToken);
            }
        }
    }
}
