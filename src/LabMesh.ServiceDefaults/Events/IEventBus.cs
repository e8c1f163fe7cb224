using System.Globalization;
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

/// <summary>
/// Positions of the bus, the one rule every reader of a cursor follows: a Redis stream id
/// (<c>milliseconds-sequence</c>) or an in-process sequence number. Each part is 1 to 19 decimal
/// digits: below 2^64 - 1, as Redis reads stream ids, and never the largest id, after which an exclusive
/// read ("(" + position) has nothing to start from and Redis answers an error.
/// </summary>
public static class BusPosition
{
    /// <summary>Whether <paramref name="value"/> is a position of either bus.</summary>
    public static bool IsValid(string? value) => TryParse(value, out _, out _);

    /// <summary>
    /// The parts of a position: <paramref name="time"/> before the dash (or the whole number) and
    /// <paramref name="sequence"/> after it, null for a plain number.
    /// </summary>
    public static bool TryParse(string? value, out ulong time, out ulong? sequence)
    {
        time = 0;
        sequence = null;
        if (string.IsNullOrEmpty(value))
        {
            return false;
        }

        var dash = value.IndexOf('-', StringComparison.Ordinal);
        if (dash < 0)
        {
            return TryPart(value.AsSpan(), out time);
        }

        if (!TryPart(value.AsSpan(0, dash), out time) || !TryPart(value.AsSpan(dash + 1), out var after))
        {
            return false;
        }

        sequence = after;
        return true;

        static bool TryPart(ReadOnlySpan<char> text, out ulong number)
        {
            number = 0;
            return text.Length is > 0 and <= 19 && ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out number);
        }
    }

    /// <summary>
    /// A position of the in-process bus: a plain number below <see cref="long.MaxValue"/> (the next one
    /// after it must still be a number).
    /// </summary>
    public static bool TryParseSequence(string? value, out long number)
    {
        number = 0;
        if (!TryParse(value, out var time, out var sequence) || sequence is not null || time >= long.MaxValue)
        {
            return false;
        }

        number = (long)time;
        return true;
    }

    /// <summary>Orders two valid positions (a plain number is <c>number-0</c>).</summary>
    public static int Compare(string a, string b)
    {
        var (aTime, aSequence) = Split(a, nameof(a));
        var (bTime, bSequence) = Split(b, nameof(b));
        var byTime = aTime.CompareTo(bTime);
        return byTime != 0 ? byTime : aSequence.CompareTo(bSequence);

        static (ulong Time, ulong Sequence) Split(string position, string name) =>
            TryParse(position, out var time, out var sequence) ? (time, sequence ?? 0)
            : throw new ArgumentException($"'{position}' is not a bus position.", name);
    }

    /// <summary>The creation time a version 7 GUID event id carries (its first 48 bits, Unix milliseconds).</summary>
    public static bool TryGetCreationTime(string eventId, out DateTimeOffset created)
    {
        created = default;
        if (!Guid.TryParse(eventId, out var id) || id.Version != 7)
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[16];
        id.TryWriteBytes(bytes, bigEndian: true, out _);
        long milliseconds = 0;
        for (var i = 0; i < 6; i++)
        {
            milliseconds = (milliseconds << 8) | bytes[i];
        }

        created = DateTimeOffset.FromUnixTimeMilliseconds(milliseconds);
        return true;
    }
}
