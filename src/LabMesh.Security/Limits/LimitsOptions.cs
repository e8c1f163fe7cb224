namespace LabMesh.Security.Limits;

/// <summary>
/// Per-caller limits every service enforces (bound from <c>LabMesh:Limits</c>). A caller is a team and
/// a subject: two people of one team have a bucket each, and one person cannot starve their team.
/// </summary>
public sealed class LimitsOptions
{
    public const string SectionName = "LabMesh:Limits";

    /// <summary>Calls a caller may start per second, sustained (the bucket's refill). 0 turns rate limiting off. Default 1,000.</summary>
    public double PermitsPerSecond { get; set; } = 1_000;

    /// <summary>Calls a caller may start at once after being idle (the bucket's size). Default 2,000.</summary>
    public int Burst { get; set; } = 2_000;

    /// <summary>
    /// Server-streaming and duplex calls (<c>Subscribe</c>) one caller may hold open at the same time;
    /// one more is RESOURCE_EXHAUSTED until one ends. 0 means no bound. Default 16.
    /// </summary>
    public int MaxStreamsPerCaller { get; set; } = 16;

    /// <summary>The largest request message accepted, in bytes; a larger one is RESOURCE_EXHAUSTED. Default 4 MiB.</summary>
    public int MaxRequestBytes { get; set; } = 4 * 1024 * 1024;

    /// <summary>Throws when a setting is out of range, naming it.</summary>
    public void Validate()
    {
        Require(double.IsFinite(PermitsPerSecond) && PermitsPerSecond >= 0, nameof(PermitsPerSecond), "zero (off) or a positive number");
        Require(Burst >= 1, nameof(Burst), "at least 1");
        Require(MaxStreamsPerCaller >= 0, nameof(MaxStreamsPerCaller), "zero (no bound) or more");
        Require(MaxRequestBytes is >= 1024 and <= 64 * 1024 * 1024, nameof(MaxRequestBytes), "between 1 KiB and 64 MiB");

        static void Require(bool ok, string name, string what)
        {
            if (!ok)
            {
                throw new InvalidOperationException($"{SectionName}:{name} must be {what}.");
            }
        }
    }
}
