using Google.Protobuf;
using LabMesh.Contracts.Common.V1;
using LabMesh.Messaging.Caching;
using LabMesh.Messaging.Events;

namespace LabMesh.ServiceRequest;

/// <summary>
/// The durable path of a status change to the cache: every change commits a
/// <c>service_request.status_changed</c> event with it, and when the outbox relay has published one, this
/// writes the service request's status as the store has it now into the cache, before the row is marked
/// sent. A change made while Redis was down therefore reaches the cache once Redis is back and a relay has
/// run, even if the process that made it died; the write is versioned, so the cache never goes back.
/// (The write-through right after the commit stays: it is what a reader sees at once.)
/// </summary>
public sealed class StatusCacheRefresher(ServiceRequestStore store, IStatusCache cache) : IOutboxPublishedListener
{
    /// <inheritdoc/>
    public async Task OnPublishedAsync(IReadOnlyList<Event> events, CancellationToken cancellationToken)
    {
        var byTeam = events
            .Where(e => e.Type == EventTypes.ServiceRequestStatusChanged && !string.IsNullOrEmpty(e.ServiceRequestId))
            .GroupBy(e => e.TeamId, StringComparer.Ordinal);
        foreach (var team in byTeam)
        {
            var ids = team.Select(e => e.ServiceRequestId).Distinct(StringComparer.Ordinal).ToList();
            foreach (var record in await store.GetManyAsync(team.Key, ids, cancellationToken))
            {
                await cache.WriteNowAsync(ServiceRequestApi.CacheKind, record.Id, record.Version, ServiceRequestApi.MapStatus(record).ToByteArray(), cancellationToken);
            }
        }
    }
}
