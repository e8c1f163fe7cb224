using System.Globalization;

namespace LabMesh.ServiceDefaults.Redis;

/// <summary>
/// Positions of the bus: a Redis stream id (<c>milliseconds-sequence</c>) or an in-process sequence number. Here, beside
/// the stream it describes, so that <see cref="RedisConnection"/> checks positions without knowing the event bus.
/// </summary>
public static class BusPosition
{
    /// <summary>Whether <paramref name="value"/> is a position of either bus.</summary>
    public static bool IsValid(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return false;
        }

        var dash = value.IndexOf('-', StringComparison.Ordinal);
        return dash < 0
            ? IsDigits(value.AsSpan())
            : IsDigits(value.AsSpan(0, dash)) && IsDigits(value.AsSpan(dash + 1));

        static bool IsDigits(ReadOnlySpan<char> text) =>
            text.Length is > 0 and <= 19 && !text.ContainsAnyExceptInRange('0', '9');
    }

    /// <summary>Orders two valid positions (a plain number is <c>number-0</c>).</summary>
    public static int Compare(string a, string b)
    {
        var (aTime, aSequence) = Split(a);
        var (bTime, bSequence) = Split(b);
        var byTime = aTime.CompareTo(bTime);
        return byTime != 0 ? byTime : aSequence.CompareTo(bSequence);

        static (ulong Time, ulong Sequence) Split(string position)
        {
            var dash = position.IndexOf('-', StringComparison.Ordinal);
            return dash < 0
                ? (ulong.Parse(position, NumberStyles.None, CultureInfo.InvariantCulture), 0)
                : (ulong.Parse(position.AsSpan(0, dash), NumberStyles.None, CultureInfo.InvariantCulture),
                   ulong.Parse(position.AsSpan(dash + 1), NumberStyles.None, CultureInfo.InvariantCulture));
        }
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
