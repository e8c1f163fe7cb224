using System.Globalization;

namespace LabMesh.Messaging.Redis;

/// <summary>
/// Positions of the bus, the one rule every reader of a cursor follows: a Redis stream id
/// (<c>milliseconds-sequence</c>) or an in-process sequence number. Here, beside the stream it describes, so that
/// <see cref="RedisConnection"/> checks positions without knowing the event bus. Each part is 1 to 19 decimal
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
