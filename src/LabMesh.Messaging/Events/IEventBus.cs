using LabMesh.Contracts.Common.V1;
using LabMesh.Messaging.Redis;

namespace LabMesh.Messaging.Events;

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

    /// <summary>The position of the event with id <paramref name="eventId"/>, or null when the bus does not (or no longer) hold it.</summary>
    Task<string?> FindPositionAsync(string eventId, CancellationToken cancellationToken);

    /// <summary>
    /// Whether every event the bus accepted after <paramref name="position"/> is still on it. False when
    /// some were dropped to keep the bus bounded (the Redis stream's MAXLEN trim, the in-process log's
    /// capacity): reading on from there would skip them without a sign, so a caller resuming at such a
    /// cursor must be told instead.
    /// </summary>
    Task<bool> RetainsAfterAsync(string position, CancellationToken cancellationToken);

    /// <summary>
    /// Whether <paramref name="position"/> (a caller's cursor) is a position of this bus, so that
    /// <see cref="ReadAsync"/> takes it: the Redis bus and the in-process bus spell positions differently.
    /// </summary>
    bool IsPosition(string position) => BusPosition.IsValid(position);

    /// <summary>
    /// Whether the bus keeps what it accepted across a restart of this process (Redis: yes). When it does
    /// not, each <see cref="OutboxRelay"/> publishes its store's retained sent events again at start, so
    /// an event the bus took just before a crash still reaches its consumers (they deduplicate by id).
    /// </summary>
    bool SurvivesRestart => true;

    /// <summary>
    /// Calls <paramref name="handler"/> for every event published from now on, once each, in position
    /// order (critical results without waiting for the next poll: pub/sub wakes the Redis feed).
    /// Dispose the result to stop. The handler's exceptions are caught and logged by the bus.
    /// </summary>
    IDisposable Subscribe(Func<BusEntry, CancellationToken, Task> handler);
}

/// <summary>An event and its position in the bus (a Redis stream id, or a sequence number in process).</summary>
public sealed record BusEntry(string Position, Event Event);
