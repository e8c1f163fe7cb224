using LabMesh.Contracts.Common.V1;

namespace LabMesh.Messaging.Events;

/// <summary>
/// Told by a service's <see cref="OutboxRelay"/> about every batch of events it published, before the rows
/// are marked sent. Register one per service as a keyed singleton (key: the service name given to
/// <c>AddLabMeshStore</c>). When it throws, the rows stay unsent and the batch is published (the bus
/// deduplicates) and handed to it again on a later pass, so what it does happens at least once for every
/// committed event, even when the process dies in between. Keep it idempotent.
/// </summary>
public interface IOutboxPublishedListener
{
    /// <summary>Called with the events of one published batch, oldest first.</summary>
    Task OnPublishedAsync(IReadOnlyList<Event> events, CancellationToken cancellationToken);
}
