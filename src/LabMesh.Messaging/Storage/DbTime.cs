using System.Globalization;

namespace LabMesh.Messaging.Storage;

/// <summary>
/// Times are stored as fixed-width ISO 8601 UTC text (<c>2026-11-21T09:30:00.123456Z</c>) in both
/// SQLite and PostgreSQL: one schema text for both, and text order is time order.
/// </summary>
public static class DbTime
{
    private const string Format = "yyyy-MM-dd'T'HH:mm:ss.ffffff'Z'";

    /// <summary>
    /// The time now as the stores keep it (to the microsecond): a write answers the same time a later read of the row
    /// does. <see cref="TimeProvider.GetUtcNow"/> has 100 ns ticks, which the stored text drops.
    /// </summary>
    public static DateTimeOffset Now(TimeProvider time) => AsStored(time.GetUtcNow());

    /// <summary><paramref name="time"/> as the stores keep it: to the microsecond.</summary>
    public static DateTimeOffset AsStored(DateTimeOffset time) => time.AddTicks(-(time.UtcTicks % TimeSpan.TicksPerMicrosecond));

    public static string ToDb(DateTimeOffset time) => time.UtcDateTime.ToString(Format, CultureInfo.InvariantCulture);

    public static DateTimeOffset FromDb(string text) =>
        DateTimeOffset.ParseExact(text, Format, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);
}
