using LabMesh.Contracts.Results.V1;

namespace LabMesh.ResultsInterpretation.Domain;

/// <summary>
/// Reads one marker: normal, abnormal or critical, from its reference range and the critical-limit
/// catalog, then keeps the lab's own interpretation when it is the more severe.
/// </summary>
/// <remarks>
/// <code>
/// 1. value
///    text ("positive")            flag QUALITATIVE_VALUE; computed UNSPECIFIED (no range, no catalog check)
///    number                       compared as below
///    bound ("&lt;0.5", "&gt;=1000")     a comparison is decided only when every value the bound allows
///                                 is on the same side; else that comparison gives nothing and the
///                                 marker is flagged VALUE_BOUND_INCONCLUSIVE
/// 2. reference range (the marker's own unit, exact comparison)
///    value &lt; min                  is_below_min_range, range ABNORMAL
///    value &gt; max                  is_above_max_range, range ABNORMAL
///    min ≤ value ≤ max            range NORMAL (a bound equal to the value is inside; either may be absent)
///    no min and no max            no range reading
/// 3. critical-limit catalog (entry by slug, then name: CriticalLimitCatalog.TryFind)
///    no entry                     no catalog reading
///    unit does not convert        flag UNIT_NOT_COMPARABLE; no catalog reading, nothing guessed
///    value ≤ low or value ≥ high  CRITICAL: at the limit is critical
///    otherwise                    catalog passed (not critical; says nothing about normal)
///    The value is converted to the entry's unit (Units.TryConvert: UCUM when commensurable, else one
///    molar-mass rule of CriticalLimitCatalog.Conversions with UCUM on either side) and compared with a relative tolerance of 1e-9, so a converted value landing on a limit
///    (66 g/L hemoglobin = 6.6 g/dL) is at the limit. critical_limit_analyte names the entry whenever
///    the value was compared with it; converted_value ("45.04 mg/dL") is set when the units differed.
/// 4. computed interpretation
///    catalog CRITICAL                                       CRITICAL
///    else range ABNORMAL                                    ABNORMAL
///    else range NORMAL, catalog passed or not made          NORMAL
///    else (no range, or a bound left range or catalog open) UNSPECIFIED: a catalog pass alone is not normal
/// 5. interpretation = the more severe of the lab's and the computed one
///    (CRITICAL &gt; ABNORMAL &gt; NORMAL &gt; UNSPECIFIED); flag LAB_INTERPRETATION_OVERRIDDEN when the lab
///    gave one and the computed one is more severe. The lab's is_above/is_below flags are not used.
/// </code>
/// <para>Flags are listed in enum order, each once.</para>
/// </remarks>
public sealed class MarkerReader(CriticalLimitCatalog catalog)
{
    /// <summary>Relative tolerance of the critical-limit comparisons.</summary>
    public const double RelativeTolerance = 1e-9;

    /// <summary>A reader with <see cref="CriticalLimitCatalog.Default"/>.</summary>
    public static MarkerReader Default { get; } = new(CriticalLimitCatalog.Default);

    /// <summary>The catalog the reader compares with.</summary>
    public CriticalLimitCatalog Catalog { get; } = catalog;

    /// <summary>How <paramref name="marker"/> reads. Its <c>reading</c> field is ignored.</summary>
    /// <exception cref="ArgumentException">the marker has no value, a value or range bound that is not
    /// finite, or min above max: <see cref="MarkerValidation"/> refuses those first.</exception>
    public MarkerReading Read(Marker marker)
    {
        var value = MarkerValue.Of(marker);
        if (!value.IsValid
            || (marker.HasMinRangeValue && !double.IsFinite(marker.MinRangeValue))
            || (marker.HasMaxRangeValue && !double.IsFinite(marker.MaxRangeValue))
            || (marker.HasMinRangeValue && marker.HasMaxRangeValue && marker.MinRangeValue > marker.MaxRangeValue))
        {
            throw new ArgumentException(
                $"Marker '{marker.Slug}' cannot be read: its value or range is missing or not finite; validate markers first.",
                nameof(marker));
        }

        var reading = new MarkerReading();
        var flags = new SortedSet<MarkerFlag>();
        var computed = Interpretation.Unspecified;
        if (value.Kind == MarkerValueKind.Text)
        {
            flags.Add(MarkerFlag.QualitativeValue);
        }
        else
        {
            var range = ReadRange(marker, Span.Of(value.Operator, value.Number), reading);
            var critical = ReadCatalog(marker, value, reading, flags);
            if (range == Check.Inconclusive || critical == Check.Inconclusive)
            {
                flags.Add(MarkerFlag.ValueBoundInconclusive);
            }
            computed = (range, critical) switch
            {
                (_, Check.Failed) => Interpretation.Critical,
                (Check.Failed, _) => Interpretation.Abnormal,
                (Check.Passed, not Check.Inconclusive) => Interpretation.Normal,
                _ => Interpretation.Unspecified,
            };
        }

        var lab = marker.Interpretation;
        reading.ComputedInterpretation = computed;
        reading.Interpretation = MoreSevere(lab, computed);
        if (lab != Interpretation.Unspecified && Severity(computed) > Severity(lab))
        {
            flags.Add(MarkerFlag.LabInterpretationOverridden);
        }
        reading.Flags.AddRange(flags);
        return reading;
    }

    /// <summary>The most severe of <paramref name="readings"/>; UNSPECIFIED when there are none.</summary>
    public static Interpretation Overall(IEnumerable<Interpretation> readings) =>
        readings.Aggregate(Interpretation.Unspecified, MoreSevere);

    /// <summary>The more severe of two readings: CRITICAL &gt; ABNORMAL &gt; NORMAL &gt; UNSPECIFIED.</summary>
    public static Interpretation MoreSevere(Interpretation a, Interpretation b) => Severity(b) > Severity(a) ? b : a;

    private static int Severity(Interpretation interpretation) => interpretation switch
    {
        Interpretation.Critical => 3,
        Interpretation.Abnormal => 2,
        Interpretation.Normal => 1,
        _ => 0,
    };

    private static Check ReadRange(Marker marker, Span span, MarkerReading reading)
    {
        if (!marker.HasMinRangeValue && !marker.HasMaxRangeValue)
        {
            return Check.NotMade;
        }
        var below = marker.HasMinRangeValue ? span.Below(marker.MinRangeValue, 0) : Truth.Never;
        var above = marker.HasMaxRangeValue ? span.Above(marker.MaxRangeValue, 0) : Truth.Never;
        reading.IsBelowMinRange = below == Truth.Always;
        reading.IsAboveMaxRange = above == Truth.Always;
        return Decide(below, above);
    }

    private Check ReadCatalog(Marker marker, MarkerValue value, MarkerReading reading, SortedSet<MarkerFlag> flags)
    {
        if (!Catalog.TryFind(marker.Slug, marker.Name, out var entry))
        {
            return Check.NotMade;
        }
        if (!Catalog.TryConvert(entry.Analyte, value.Number, marker.Unit, entry.Unit, out var converted))
        {
            flags.Add(MarkerFlag.UnitNotComparable);
            return Check.NotMade;
        }
        reading.CriticalLimitAnalyte = entry.Analyte;
        if (!string.Equals(Units.Normalize(marker.Unit), entry.Unit, StringComparison.Ordinal))
        {
            reading.ConvertedValue = MarkerValue.Format(value.Operator, converted, entry.Unit);
        }
        var span = Span.Of(value.Operator, converted);
        var low = entry.Low is { } l ? span.AtOrBelow(l, RelativeTolerance) : Truth.Never;
        var high = entry.High is { } h ? span.AtOrAbove(h, RelativeTolerance) : Truth.Never;
        return Decide(low, high);
    }

    // Two one-sided comparisons of one kind (below/above, critical low/high): failed when either
    // always holds, inconclusive when either may hold, passed when neither can.
    private static Check Decide(Truth a, Truth b) =>
        a == Truth.Always || b == Truth.Always ? Check.Failed
        : a == Truth.Sometimes || b == Truth.Sometimes ? Check.Inconclusive
        : Check.Passed;

    private enum Check
    {
        NotMade,
        Passed,
        Failed,
        Inconclusive,
    }

    // Whether a comparison holds for every value a span allows, for none, or for some only.
    private enum Truth
    {
        Never,
        Sometimes,
        Always,
    }

    // The values a marker's value allows: one number, or a half-line for a bound.
    private readonly record struct Span(double Low, bool LowInclusive, double High, bool HighInclusive)
    {
        public static Span Of(BoundOperator op, double number) => op switch
        {
            BoundOperator.LessThan => new(double.NegativeInfinity, false, number, false),
            BoundOperator.LessThanOrEqual => new(double.NegativeInfinity, false, number, true),
            BoundOperator.GreaterThan => new(number, false, double.PositiveInfinity, false),
            BoundOperator.GreaterThanOrEqual => new(number, true, double.PositiveInfinity, false),
            _ => new(number, true, number, true),
        };

        // value < min
        public Truth Below(double min, double tolerance)
        {
            var high = Compare(High, min, tolerance);
            if (high < 0 || (high == 0 && !HighInclusive))
            {
                return Truth.Always;
            }
            return Compare(Low, min, tolerance) >= 0 ? Truth.Never : Truth.Sometimes;
        }

        // value > max
        public Truth Above(double max, double tolerance)
        {
            var low = Compare(Low, max, tolerance);
            if (low > 0 || (low == 0 && !LowInclusive))
            {
                return Truth.Always;
            }
            return Compare(High, max, tolerance) <= 0 ? Truth.Never : Truth.Sometimes;
        }

        // value ≤ limit
        public Truth AtOrBelow(double limit, double tolerance)
        {
            if (Compare(High, limit, tolerance) <= 0)
            {
                return Truth.Always;
            }
            var low = Compare(Low, limit, tolerance);
            return low > 0 || (low == 0 && !LowInclusive) ? Truth.Never : Truth.Sometimes;
        }

        // value ≥ limit
        public Truth AtOrAbove(double limit, double tolerance)
        {
            if (Compare(Low, limit, tolerance) >= 0)
            {
                return Truth.Always;
            }
            var high = Compare(High, limit, tolerance);
            return high < 0 || (high == 0 && !HighInclusive) ? Truth.Never : Truth.Sometimes;
        }

        // -1, 0 or 1; equal within a relative tolerance (0: exactly).
        private static int Compare(double a, double b, double tolerance)
        {
            if (a == b)
            {
                return 0;
            }
            if (double.IsFinite(a) && double.IsFinite(b)
                && Math.Abs(a - b) <= tolerance * Math.Max(Math.Abs(a), Math.Abs(b)))
            {
                return 0;
            }
            return a < b ? -1 : 1;
        }
    }
}
