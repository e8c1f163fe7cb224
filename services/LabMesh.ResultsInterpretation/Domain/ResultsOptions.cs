namespace LabMesh.ResultsInterpretation.Domain;

/// <summary>How results are read. Bound from configuration section <c>LabMesh:Results</c>.</summary>
/// <remarks>
/// <code>
/// "LabMesh": { "Results": {
///   "UseDefaultCriticalLimits": true,
///   "CriticalLimits": [ { "Analyte": "potassium", "Unit": "mmol/L", "Low": 3.0, "High": 6.0, "Source": "our lab" } ] } }
/// </code>
/// or as environment variables: <c>LabMesh__Results__CriticalLimits__0__Analyte=potassium</c>.
/// </remarks>
public sealed class ResultsOptions
{
    public const string SectionName = "LabMesh:Results";

    /// <summary>Start from <see cref="CriticalLimitCatalog.Defaults"/>; false uses only <see cref="CriticalLimits"/>. Default true.</summary>
    public bool UseDefaultCriticalLimits { get; set; } = true;

    /// <summary>
    /// Entries to add, or to put in place of the default entry of the same analyte. An entry that
    /// replaces a default and lists no alias keeps the default's aliases.
    /// </summary>
    public List<CriticalLimitOptions> CriticalLimits { get; set; } = [];

    /// <summary>
    /// Per team (by team id): the tier a critical value of an analyte has for that team, in place of the
    /// catalog entry's, e.g. <c>LabMesh__Results__Teams__team-a__Tiers__glucose=significant_risk</c>.
    /// </summary>
    public Dictionary<string, TeamResultsOptions> Teams { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>One team's reading settings.</summary>
public sealed class TeamResultsOptions
{
    /// <summary>Analyte (or alias) → <c>critical_risk</c> or <c>significant_risk</c>.</summary>
    public Dictionary<string, string> Tiers { get; set; } = new(StringComparer.Ordinal);
}

/// <summary>One configured critical-limit entry (see <see cref="CriticalLimitEntry"/>).</summary>
public sealed class CriticalLimitOptions
{
    /// <summary>The marker slug it applies to, e.g. <c>potassium</c>. Required.</summary>
    public string Analyte { get; set; } = "";

    /// <summary>Other slugs and marker names of the same analyte, e.g. <c>k</c>, <c>potassium, serum</c>.</summary>
    public List<string> Aliases { get; set; } = [];

    /// <summary>The unit of <see cref="Low"/> and <see cref="High"/>; "" for a ratio such as the INR.</summary>
    public string Unit { get; set; } = "";

    /// <summary>Values at or below it are critical.</summary>
    public double? Low { get; set; }

    /// <summary>Values at or above it are critical.</summary>
    public double? High { get; set; }

    /// <summary>Where the figures come from. Default "configuration".</summary>
    public string Source { get; set; } = "";

    /// <summary>CLSI GP47's tier of a value beyond the limits: <c>critical_risk</c> (default) or <c>significant_risk</c>.</summary>
    public string Tier { get; set; } = "";
}
