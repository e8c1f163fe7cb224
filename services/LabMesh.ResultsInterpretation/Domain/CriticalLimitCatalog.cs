using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Text;
using LabMesh.Contracts.Results.V1;

namespace LabMesh.ResultsInterpretation.Domain;

/// <summary>
/// Critical limits of one analyte: a value at or below <paramref name="Low"/>, or at or above
/// <paramref name="High"/>, is critical (seed 004: possibly life-threatening).
/// </summary>
/// <param name="Analyte">The marker slug it applies to, e.g. <c>potassium</c> (a lookup key, see <see cref="CriticalLimitCatalog.Key"/>).</param>
/// <param name="Aliases">Other slugs and marker names of the analyte, as lookup keys, e.g. <c>k</c>, <c>potassium_serum</c>.</param>
/// <param name="Unit">The canonical unit of the limits (<see cref="Units.Normalize"/>); "" for a ratio.</param>
/// <param name="Low">At or below it is critical; null when only high values are.</param>
/// <param name="High">At or above it is critical; null when only low values are.</param>
/// <param name="Source">Where the figures come from.</param>
/// <param name="Tier">What a value beyond a limit is (CLSI GP47): critical-risk (to a person without delay)
/// or significant-risk (within a defined window). A team may say otherwise (<see cref="CriticalLimitCatalog.TierOf"/>).</param>
public sealed record CriticalLimitEntry(
    string Analyte, IReadOnlyList<string> Aliases, string Unit, double? Low, double? High, string Source,
    CriticalTier Tier = CriticalTier.CriticalRisk);

/// <summary>
/// The critical limits in force and the unit conversions used to compare a marker with them.
/// Built once from <see cref="ResultsOptions"/> by <see cref="Create"/>; immutable.
/// </summary>
/// <remarks>
/// <para>A marker finds its entry by its slug, then by its name, each read as a key (<see cref="Key"/>:
/// lower-case, trimmed, runs of spaces, commas and hyphens made one <c>_</c>) and compared with
/// every analyte and every alias. Seed 004's slug <c>unknown</c> therefore finds its entry by name
/// ("Sodium"). An alias belongs to one analyte only, so the order never picks between two entries.</para>
/// <para>The defaults (<see cref="Defaults"/>) are adult serum/plasma/whole-blood figures. Calcium is
/// total calcium: ionized calcium has other limits and is deliberately not an alias.</para>
/// </remarks>
public sealed class CriticalLimitCatalog
{
    /// <summary>Where most default figures come from.</summary>
    public const string SurveySource = "survey means from a published clinical-laboratory reference table of critical limits";

    /// <summary>Where the hemoglobin high, platelets high and INR figures come from.</summary>
    public const string ReferenceLabSource = "one large reference laboratory's critical-value list";

    /// <summary>The source given to a configured entry that names none.</summary>
    public const string ConfiguredSource = "configuration";

    /// <summary>The default entries, in the order <see cref="Entries"/> lists them.</summary>
    public static IReadOnlyList<CriticalLimitEntry> Defaults { get; } =
    [
        new("potassium", ["k", "k+", "potassium_serum", "serum_potassium", "potassium_plasma", "plasma_potassium"],
            Units.MmolPerL, 2.8, 6.2, SurveySource),
        new("sodium", ["na", "na+", "sodium_serum", "serum_sodium", "sodium_plasma", "plasma_sodium"],
            Units.MmolPerL, 120, 158, SurveySource),
        new("glucose", ["glu", "glucose_serum", "serum_glucose", "glucose_plasma", "plasma_glucose", "blood_glucose",
                "glucose_fasting", "fasting_glucose"],
            Units.MgPerDl, 46, 484, SurveySource),
        new("calcium", ["total_calcium", "calcium_total", "ca", "calcium_serum", "serum_calcium", "calcium_total_serum"],
            Units.MgPerDl, 6.6, 12.9, SurveySource),
        new("hemoglobin", ["hgb", "hb", "haemoglobin", "hemoglobin_blood"],
            Units.GPerDl, 6.6, 20, $"low: {SurveySource}; high: {ReferenceLabSource}"),
        new("platelets", ["plt", "platelet", "platelet_count", "platelets_count", "thrombocytes"],
            Units.GigaPerL, 37, 1000, $"low: {SurveySource}; high: {ReferenceLabSource}"),
        new("inr", ["pt_inr", "inr_pt", "prothrombin_time_inr", "international_normalized_ratio", "international_normalised_ratio"],
            Units.Ratio, null, 5.0, ReferenceLabSource),
    ];

    /// <summary>The defaults alone, with <see cref="Units.DefaultConversions"/>.</summary>
    public static CriticalLimitCatalog Default { get; } = Create(new ResultsOptions());

    private readonly Dictionary<string, CriticalLimitEntry> _byKey;
    private readonly Dictionary<string, Dictionary<string, CriticalTier>> _teamTiers = new(StringComparer.Ordinal);

    private CriticalLimitCatalog(IReadOnlyList<CriticalLimitEntry> entries, IReadOnlyList<UnitConversionRule> conversions)
    {
        Entries = entries;
        Conversions = conversions;
        _byKey = new Dictionary<string, CriticalLimitEntry>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            foreach (var key in entry.Aliases.Prepend(entry.Analyte))
            {
                if (_byKey.TryGetValue(key, out var other) && !ReferenceEquals(other, entry))
                {
                    throw new ArgumentException(
                        $"Critical limits: '{key}' names both '{other.Analyte}' and '{entry.Analyte}'; an analyte or alias may belong to one analyte only.");
                }
                _byKey[key] = entry;
            }
        }
    }

    /// <summary>Every entry in force: the defaults (unless turned off) in their order, then the added ones.</summary>
    public IReadOnlyList<CriticalLimitEntry> Entries { get; }

    /// <summary>The conversions a marker's value may go through to meet its entry's unit.</summary>
    public IReadOnlyList<UnitConversionRule> Conversions { get; }

    /// <summary>
    /// The catalog <paramref name="options"/> describe: the defaults when
    /// <see cref="ResultsOptions.UseDefaultCriticalLimits"/>, each configured entry in place of the
    /// default of the same analyte (keeping the default's aliases when it lists none) or added after them.
    /// </summary>
    /// <exception cref="ArgumentException">an entry has no analyte, no bound, a bound that is not finite,
    /// low ≥ high or an empty alias; two entries name one analyte; an alias names two analytes.</exception>
    public static CriticalLimitCatalog Create(ResultsOptions options)
    {
        var entries = options.UseDefaultCriticalLimits ? Defaults.ToList() : [];
        var configured = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < options.CriticalLimits.Count; i++)
        {
            var entry = FromOptions(options.CriticalLimits[i], $"{ResultsOptions.SectionName}:CriticalLimits:{i}");
            if (!configured.Add(entry.Analyte))
            {
                throw new ArgumentException(
                    $"{ResultsOptions.SectionName}:CriticalLimits:{i}: analyte '{entry.Analyte}' is configured twice.", nameof(options));
            }
            var at = entries.FindIndex(e => e.Analyte == entry.Analyte);
            if (at < 0)
            {
                entries.Add(entry);
                continue;
            }
            entries[at] = entry.Aliases.Count > 0 ? entry : entry with { Aliases = entries[at].Aliases };
        }
        var catalog = new CriticalLimitCatalog(entries, Units.DefaultConversions);
        foreach (var (team, teamOptions) in options.Teams)
        {
            var tiers = new Dictionary<string, CriticalTier>(StringComparer.Ordinal);
            foreach (var (analyte, word) in teamOptions.Tiers)
            {
                var path = $"{ResultsOptions.SectionName}:Teams:{team}:Tiers:{analyte}";
                if (!catalog._byKey.TryGetValue(Key(analyte), out var entry))
                {
                    throw new ArgumentException($"{path}: '{analyte}' is not an analyte or alias of the catalog.", nameof(options));
                }
                tiers[entry.Analyte] = CriticalTiers.Parse(word, path);
            }
            catalog._teamTiers[team] = tiers;
        }
        return catalog;
    }

    /// <summary>
    /// The tier of a critical value of <paramref name="analyte"/> (an entry's analyte) for <paramref name="teamId"/>:
    /// the team's own (<c>Teams:{team}:Tiers</c>) when it set one, else the entry's; critical-risk for an analyte
    /// the catalog does not know (a value only the lab called critical is treated as the most urgent).
    /// </summary>
    public CriticalTier TierOf(string? teamId, string analyte)
    {
        if (teamId is not null && _teamTiers.TryGetValue(teamId, out var tiers) && tiers.TryGetValue(analyte, out var tier))
        {
            return tier;
        }
        return _byKey.TryGetValue(analyte, out var entry) ? entry.Tier : CriticalTier.CriticalRisk;
    }

    /// <summary>The analytes a team gave a tier of its own, with that tier.</summary>
    public IReadOnlyDictionary<string, CriticalTier> TeamTiers(string teamId) =>
        _teamTiers.TryGetValue(teamId, out var tiers) ? tiers : new Dictionary<string, CriticalTier>();

    /// <summary>
    /// A slug or a marker name as a lookup key: lower-case, trimmed, every run of spaces, commas and
    /// hyphens one <c>_</c>, no <c>_</c> at either end ("Potassium, Serum" → <c>potassium_serum</c>).
    /// </summary>
    public static string Key(string? text)
    {
        var key = new StringBuilder();
        var pendingSeparator = false;
        foreach (var c in (text ?? "").Trim().ToLowerInvariant())
        {
            if (char.IsWhiteSpace(c) || c is ',' or '-' or '_')
            {
                pendingSeparator = key.Length > 0;
                continue;
            }
            if (pendingSeparator)
            {
                key.Append('_');
                pendingSeparator = false;
            }
            key.Append(c);
        }
        return key.ToString();
    }

    /// <summary>The entry of a marker: by its slug (as analyte or alias), else by its name.</summary>
    public bool TryFind(string? slug, string? name, [NotNullWhen(true)] out CriticalLimitEntry? entry)
    {
        var slugKey = Key(slug);
        if (slugKey.Length > 0 && _byKey.TryGetValue(slugKey, out entry))
        {
            return true;
        }
        var nameKey = Key(name);
        if (nameKey.Length > 0 && _byKey.TryGetValue(nameKey, out entry))
        {
            return true;
        }
        entry = null;
        return false;
    }

    /// <summary>Converts a value of <paramref name="analyte"/> with <see cref="Conversions"/> (see <see cref="Units.TryConvert(IReadOnlyList{UnitConversionRule}, string, double, string, string, out double)"/>).</summary>
    public bool TryConvert(string analyte, double value, string fromUnit, string toUnit, out double converted) =>
        Units.TryConvert(Conversions, analyte, value, fromUnit, toUnit, out converted);

    private static CriticalLimitEntry FromOptions(CriticalLimitOptions options, string path)
    {
        var analyte = Key(options.Analyte);
        if (analyte.Length == 0)
        {
            throw new ArgumentException($"{path}: Analyte is required (the marker slug the limits apply to).", nameof(options));
        }
        var at = $"{path} ({analyte})";
        if (options.Low is null && options.High is null)
        {
            throw new ArgumentException($"{at}: set Low, High or both.", nameof(options));
        }
        if (options.Low is { } low && !double.IsFinite(low))
        {
            throw new ArgumentException($"{at}: Low must be a finite number, not {Show(low)}.", nameof(options));
        }
        if (options.High is { } high && !double.IsFinite(high))
        {
            throw new ArgumentException($"{at}: High must be a finite number, not {Show(high)}.", nameof(options));
        }
        if (options.Low is { } l && options.High is { } h && l >= h)
        {
            throw new ArgumentException($"{at}: Low ({Show(l)}) must be below High ({Show(h)}).", nameof(options));
        }
        var aliases = new List<string>();
        foreach (var alias in options.Aliases ?? [])
        {
            var key = Key(alias);
            if (key.Length == 0)
            {
                throw new ArgumentException($"{at}: an alias is empty.", nameof(options));
            }
            if (key != analyte && !aliases.Contains(key))
            {
                aliases.Add(key);
            }
        }
        var source = string.IsNullOrWhiteSpace(options.Source) ? ConfiguredSource : options.Source.Trim();
        var tier = string.IsNullOrWhiteSpace(options.Tier) ? CriticalTier.CriticalRisk : CriticalTiers.Parse(options.Tier, $"{at}: Tier");
        return new CriticalLimitEntry(analyte, aliases, Units.Normalize(options.Unit), options.Low, options.High, source, tier);
    }

    private static string Show(double value) => value.ToString(CultureInfo.InvariantCulture);
}
