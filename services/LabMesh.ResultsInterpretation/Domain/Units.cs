using System.Globalization;

namespace LabMesh.ResultsInterpretation.Domain;

/// <summary>
/// An exact conversion: <c>value in <paramref name="ToUnit"/> = value in <paramref name="FromUnit"/> × <paramref name="Factor"/></c>.
/// </summary>
/// <param name="Analyte">The catalog analyte it is valid for (e.g. <c>glucose</c>); "" for any analyte.</param>
/// <param name="FromUnit">A canonical unit (see <see cref="Units.Normalize"/>).</param>
/// <param name="ToUnit">A canonical unit.</param>
/// <param name="Factor">Positive.</param>
public sealed record UnitConversionRule(string Analyte, string FromUnit, string ToUnit, double Factor);

/// <summary>
/// Unit spellings, and how a value goes from one unit to another: through UCUM (<see cref="Ucum"/>)
/// when the units are commensurable, else through one analyte rule (a molar mass) with UCUM on either
/// side. A unit that is not known is kept as written (trimmed) and read as a UCUM code; when it is no
/// UCUM code either, it only compares with the same spelling: nothing is guessed.
/// </summary>
/// <remarks>
/// <code>
/// canonical   accepted spellings (case-insensitive, spaces ignored, µ/μ read as u)       UCUM code
/// mg/dL       mg/dl                                                                     mg/dL
/// mmol/L      mmol/l; mM (case-sensitive: "mm" is not millimolar)                      mmol/L
/// mEq/L       meq/l                                                                     meq/L
/// g/dL        g/dl                                                                      g/dL
/// g/L         g/l (lower-case g: grams)                                                 g/L
/// x10^9/L     10^9/L, x10^9/L, x10E9/L, 10E9/L, 10*9/L, x10*9/L, x10(9)/L, 10(9)/L,     10*9/L
///             ×10^9/L, /nL; G/L and G/l (case-sensitive: upper-case G is giga, g/L is grams per litre)
/// x10^3/uL    10^3/uL, x10^3/uL, x10E3/uL, 10E3/uL, 10*3/uL, x10*3/uL, x10(3)/uL,        10*3/uL
///             10(3)/uL, ×10^3/uL, K/uL, thou/uL (per mm3 is left out on purpose)
/// ""          "", INR, ratio (the INR is a ratio without a unit)                        1
/// IU/L, mIU/L, mIU/mL, uIU/mL                                                           [IU]/L, m[IU]/L, ...
/// umol/L, nmol/L, pmol/L, mg/L, ug/L, ug/dL, ng/mL, ng/dL, pg/mL, U/L, %, fL, pg        as written
/// </code>
/// <para>How <see cref="TryConvert(IReadOnlyList{UnitConversionRule}, string, double, string, string, out double)"/> converts:</para>
/// <code>
/// 1. the same canonical unit                       × 1
/// 2. UCUM: commensurable units                      UCUM's factor (g/L → g/dL × 0.1, x10^3/uL → x10^9/L × 1,
///                                                   umol/L → mmol/L × 0.001, mg/L → mg/dL × 0.1)
///    mEq/L against mmol/L                           only for a monovalent ion (<see cref="MonovalentIons"/>):
///                                                   calcium is divalent, 1 mmol/L = 2 mEq/L, so it does not convert
/// 3. one rule of the analyte (a molar mass)         UCUM to the rule's unit, × the rule's factor, UCUM from
///                                                   its unit (glucose umol/L → mmol/L → mg/dL: UCUM, then
///                                                   the rule; glucose mmol/L → mg/dL → g/L: the rule, then UCUM)
/// 4. otherwise                                      not comparable
/// </code>
/// <para>The default rules (<see cref="DefaultConversions"/>) are what UCUM cannot know: glucose by its
/// molar mass 180.16 g/mol (mmol/L × 18.016 = mg/dL), calcium by 40.08 g/mol (mmol/L × 4.008 = mg/dL).</para>
/// </remarks>
public static class Units
{
    public const string MgPerDl = "mg/dL";
    public const string MmolPerL = "mmol/L";
    public const string MeqPerL = "mEq/L";
    public const string GPerDl = "g/dL";
    public const string GPerL = "g/L";
    public const string GigaPerL = "x10^9/L";
    public const string ThousandPerUl = "x10^3/uL";
    public const string Ratio = "";

    /// <summary>Glucose, mmol/L to mg/dL: its molar mass 180.16 g/mol, per decilitre.</summary>
    public const double GlucoseMmolToMg = 18.016;

    /// <summary>Calcium, mmol/L to mg/dL: its molar mass 40.08 g/mol, per decilitre.</summary>
    public const double CalciumMmolToMg = 4.008;

    /// <summary>Ions of charge ±1, for which an equivalent is a mole (mEq/L = mmol/L): analyte keys.</summary>
    public static IReadOnlySet<string> MonovalentIons { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "potassium", "sodium", "chloride", "bicarbonate", "lithium",
    };

    // Canonical spellings whose UCUM code is spelled otherwise; every other canonical unit is its own code.
    private static readonly Dictionary<string, string> UcumCodes = new(StringComparer.Ordinal)
    {
        [MeqPerL] = "meq/L",
        [GigaPerL] = "10*9/L",
        [ThousandPerUl] = "10*3/uL",
        [Ratio] = "1",
        ["IU/L"] = "[IU]/L",
        ["mIU/L"] = "m[IU]/L",
        ["mIU/mL"] = "m[IU]/mL",
        ["uIU/mL"] = "u[IU]/mL",
    };

    private static readonly string[] Spelled =
    [
        "umol/L", "nmol/L", "pmol/L", "mg/L", "ug/L", "ug/dL", "ng/mL", "ng/dL", "pg/mL",
        "U/L", "IU/L", "mIU/L", "mIU/mL", "uIU/mL", "%", "fL", "pg",
    ];

    // Spellings whose case carries meaning (G = giga, g = gram; mM = millimolar, mm = millimetre).
    private static readonly Dictionary<string, string> CaseSensitive = new(StringComparer.Ordinal)
    {
        ["G/L"] = GigaPerL,
        ["G/l"] = GigaPerL,
        ["mM"] = MmolPerL,
    };

    // Keys are lower-case, without spaces, µ/μ already read as u and × as x.
    private static readonly Dictionary<string, string> Aliases = BuildAliases();

    /// <summary>The analyte rules the reading applies unless configured otherwise: what UCUM cannot know.</summary>
    public static IReadOnlyList<UnitConversionRule> DefaultConversions { get; } =
    [
        new("glucose", MmolPerL, MgPerDl, GlucoseMmolToMg),
        new("glucose", MgPerDl, MmolPerL, 1 / GlucoseMmolToMg),
        new("calcium", MmolPerL, MgPerDl, CalciumMmolToMg),
        new("calcium", MgPerDl, MmolPerL, 1 / CalciumMmolToMg),
    ];

    /// <summary>The canonical spelling of <paramref name="unit"/>, or the unit trimmed when it is not known.</summary>
    public static string Normalize(string? unit)
    {
        var trimmed = (unit ?? "").Trim();
        var compact = new string(trimmed.Where(c => !char.IsWhiteSpace(c)).ToArray());
        if (CaseSensitive.TryGetValue(compact, out var exact))
        {
            return exact;
        }
        var key = compact.Replace('µ', 'u').Replace('μ', 'u').Replace('×', 'x').ToLowerInvariant();
        return Aliases.TryGetValue(key, out var canonical) ? canonical : trimmed;
    }

    /// <summary>Converts with <see cref="DefaultConversions"/>; see the other overload.</summary>
    public static bool TryConvert(string analyte, double value, string fromUnit, string toUnit, out double converted) =>
        TryConvert(DefaultConversions, analyte, value, fromUnit, toUnit, out converted);

    /// <summary>
    /// Converts <paramref name="value"/> of <paramref name="analyte"/> from one unit to another (see the
    /// class remarks): the same unit × 1, else UCUM alone, else one rule of <paramref name="rules"/>
    /// with UCUM on either side. False when none applies; <paramref name="converted"/> is then 0.
    /// </summary>
    public static bool TryConvert(
        IReadOnlyList<UnitConversionRule> rules, string analyte, double value, string fromUnit, string toUnit, out double converted)
    {
        var from = Normalize(fromUnit);
        var to = Normalize(toUnit);
        if (string.Equals(from, to, StringComparison.Ordinal))
        {
            converted = value;
            return true;
        }
        var monovalent = MonovalentIons.Contains(analyte.ToLowerInvariant());
        if (Ucum.TryFactor(UcumCode(from), UcumCode(to), monovalent, out var factor))
        {
            converted = value * factor;
            return true;
        }
        foreach (var rule in rules)
        {
            if ((rule.Analyte.Length == 0 || string.Equals(rule.Analyte, analyte, StringComparison.OrdinalIgnoreCase))
                && TryUcumOrSame(from, rule.FromUnit, monovalent, out var before)
                && TryUcumOrSame(rule.ToUnit, to, monovalent, out var after))
            {
                converted = value * before * rule.Factor * after;
                return true;
            }
        }
        converted = 0;
        return false;
    }

    /// <summary>The UCUM code of a canonical unit (<see cref="Normalize"/>); an unknown unit is taken as written.</summary>
    public static string UcumCode(string canonical) =>
        UcumCodes.TryGetValue(canonical, out var code) ? code : canonical;

    private static bool TryUcumOrSame(string from, string to, bool monovalent, out double factor)
    {
        if (string.Equals(from, to, StringComparison.Ordinal))
        {
            factor = 1;
            return true;
        }
        return Ucum.TryFactor(UcumCode(from), UcumCode(to), monovalent, out factor);
    }

    /// <summary>A value for people: at most 4 significant digits, invariant, with its unit, e.g. <c>45.04 mg/dL</c>.</summary>
    public static string Format(double value, string unit)
    {
        var number = RoundSignificant(value, 4).ToString("0.###############", CultureInfo.InvariantCulture);
        return unit.Length == 0 ? number : $"{number} {unit}";
    }

    private static double RoundSignificant(double value, int digits)
    {
        if (value == 0 || !double.IsFinite(value))
        {
            return value;
        }
        var magnitude = (int)Math.Floor(Math.Log10(Math.Abs(value))) + 1;
        var decimals = digits - magnitude;
        if (decimals >= 0)
        {
            return Math.Round(value, Math.Min(decimals, 15), MidpointRounding.AwayFromZero);
        }
        var scale = Math.Pow(10, -decimals);
        return Math.Round(value / scale, MidpointRounding.AwayFromZero) * scale;
    }

    private static Dictionary<string, string> BuildAliases()
    {
        var aliases = new Dictionary<string, string>(StringComparer.Ordinal);
        void Add(string canonical, params string[] spellings)
        {
            aliases[canonical.ToLowerInvariant()] = canonical;
            foreach (var spelling in spellings)
            {
                aliases[spelling] = canonical;
            }
        }

        Add(MgPerDl);
        Add(MmolPerL);
        Add(MeqPerL);
        Add(GPerDl);
        Add(GPerL);
        Add(GigaPerL, "10^9/l", "10e9/l", "x10e9/l", "10*9/l", "x10*9/l", "10(9)/l", "x10(9)/l", "/nl");
        Add(ThousandPerUl, "10^3/ul", "10e3/ul", "x10e3/ul", "10*3/ul", "x10*3/ul", "10(3)/ul", "x10(3)/ul", "k/ul", "thou/ul");
        Add(Ratio, "inr", "ratio");
        // Units that are only spelled, never converted: one spelling, so equal units compare equal.
        foreach (var unit in Spelled)
        {
            Add(unit);
        }
        return aliases;
    }
}
