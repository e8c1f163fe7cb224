using LabMesh.Contracts.Results.V1;
using LabMesh.Core.Vocabulary;

namespace LabMesh.ResultsInterpretation.Domain;

/// <summary>
/// CLSI GP47's tiers of a critical result: critical-risk (possibly life-threatening, to a responsible
/// person without delay) and significant-risk (within a defined window). A critical marker takes the
/// tier of the catalog entry it met, as its team sees it (<see cref="CriticalLimitCatalog.TierOf"/>); a
/// report the most urgent tier of its critical markers.
/// </summary>
public static class CriticalTiers
{
    public const string CriticalRiskWord = "critical_risk";
    public const string SignificantRiskWord = "significant_risk";

    /// <summary>"critical_risk", "significant_risk", or "" when not critical.</summary>
    public static string Word(CriticalTier tier) => EnumWords.Word(tier);

    /// <summary>A configured tier word; <see cref="ArgumentException"/> naming <paramref name="path"/> otherwise.</summary>
    public static CriticalTier Parse(string? word, string path) => (word ?? "").Trim().ToLowerInvariant() switch
    {
        CriticalRiskWord => CriticalTier.CriticalRisk,
        SignificantRiskWord => CriticalTier.SignificantRisk,
        _ => throw new ArgumentException($"{path}: the tier must be '{CriticalRiskWord}' or '{SignificantRiskWord}', not '{word}'."),
    };

    /// <summary>
    /// The tier of a marker reading for <paramref name="teamId"/>: unspecified unless the reading is critical;
    /// the catalog entry's (or the team's) when the computed reading is critical by that entry; critical-risk
    /// when only the lab called it critical.
    /// </summary>
    public static CriticalTier Of(CriticalLimitCatalog catalog, string? teamId, MarkerReading reading)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        ArgumentNullException.ThrowIfNull(reading);
        if (reading.Interpretation != Interpretation.Critical)
        {
            return CriticalTier.Unspecified;
        }

        return reading.ComputedInterpretation == Interpretation.Critical && reading.CriticalLimitAnalyte.Length > 0
            ? catalog.TierOf(teamId, reading.CriticalLimitAnalyte)
            : CriticalTier.CriticalRisk;
    }

    /// <summary>The most urgent of <paramref name="tiers"/>: critical-risk over significant-risk over none.</summary>
    public static CriticalTier MostUrgent(IEnumerable<CriticalTier> tiers) =>
        tiers.Aggregate(CriticalTier.Unspecified, (a, b) => Rank(b) > Rank(a) ? b : a);

    private static int Rank(CriticalTier tier) => tier switch
    {
        CriticalTier.CriticalRisk => 2,
        CriticalTier.SignificantRisk => 1,
        _ => 0,
    };
}
