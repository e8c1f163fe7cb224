using LabMesh.Contracts.Common.V1;

namespace LabMesh.ServiceDefaults.Events;

/// <summary>
/// Where outbox relays publish events and consumers read them: a Redis stream
/// (<c>labmesh:events</c>) plus pub/sub (<c>labmesh:critical</c>) for critical results when Redis
/// is configured, an in-process log otherwise (the all-in-one host).
/// </summary>
public interface IEventBus
{
    /// <summary>
    /// Appends <paramref name="evt"/>. Idempotent by <see cref="Event.Id"/>: publishing an event again
    /// (an outbox relay repeating after a crash) appends nothing. Throws when the bus is unreachable,
    /// so the relay keeps the row and tries again.
    /// </summary>
    Task PublishAsync(Event evt, CancellationToken cancellationToken);

    /// <summary>Up to <paramref name="count"/> events after <paramref name="afterPosition"/> (null: from the oldest kept), oldest first.</summary>
    Task<IReadOnlyList<BusEntry>> ReadAsync(string? afterPosition, int count, CancellationToken cancellationToken);

    /// <summary>
    /// Calls <paramref name="handler"/> for every event published from now on, in order (critical
    /// results at once through pub/sub when Redis is the bus). Dispose the result to stop.
    /// The handler's exceptions are caught and logged by the bus.
    /// </summary>
    IDisposable Subscribe(Func<BusEntry, CancellationToken, Task> handler);
}

/// <summary>An event and its position in the bus (a Redis stream id, or a sequence number in process).</summary>
public sealed record BusEntry(string Position, Event Event);
