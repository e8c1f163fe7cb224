using System.Globalization;
using LabMesh.Contracts.Results.V1;

namespace LabMesh.ResultsInterpretation.Domain;

/// <summary>What a marker's value is.</summary>
public enum MarkerValueKind
{
    /// <summary>No value set: invalid.</summary>
    Missing,

    /// <summary>NaN or ±infinity, as a double or as text ("NaN", "Infinity", "inf", "&lt;inf"): invalid.</summary>
    NotFinite,

    /// <summary>A finite number, given as a double or as text ("5.6").</summary>
    Number,

    /// <summary>A bound on a finite number: "&lt;0.5", "&lt;= 0.5", "≤0.5", "&gt;1000", "&gt;=1000", "≥1000".</summary>
    Bound,

    /// <summary>Anything else: a qualitative value ("positive", "see note", "1,000").</summary>
    Text,
}

/// <summary>The comparison a bound states about the real value.</summary>
public enum BoundOperator
{
    /// <summary>Not a bound.</summary>
    None,
    LessThan,
    LessThanOrEqual,
    GreaterThan,
    GreaterThanOrEqual,
}

/// <summary>
/// A marker's value, parsed culture-invariantly. Numbers use <c>.</c> as the decimal point and may
/// have an exponent; a thousands separator makes the value text, since "1,000" reads as 1 or 1000
/// depending on the writer: nothing is guessed.
/// </summary>
/// <param name="Kind">What it is.</param>
/// <param name="Number">The number, or the bound's number; 0 otherwise.</param>
/// <param name="Operator">The bound's comparison; <see cref="BoundOperator.None"/> otherwise.</param>
/// <param name="Text">The text value as given (trimmed); "" for a double.</param>
public sealed record MarkerValue(MarkerValueKind Kind, double Number, BoundOperator Operator, string Text)
{
    private static readonly (string Prefix, BoundOperator Operator)[] Prefixes =
    [
        ("<=", BoundOperator.LessThanOrEqual),
        ("≤", BoundOperator.LessThanOrEqual),
        (">=", BoundOperator.GreaterThanOrEqual),
        ("≥", BoundOperator.GreaterThanOrEqual),
        ("<", BoundOperator.LessThan),
        (">", BoundOperator.GreaterThan),
    ];

    // Spellings of non-finite numbers that double.TryParse might not know; all are refused.
    private static readonly HashSet<string> NotFiniteWords = new(StringComparer.OrdinalIgnoreCase)
    {
        "nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "∞", "+∞", "-∞",
    };

    /// <summary>Whether the value can be read: present and finite.</summary>
    public bool IsValid => Kind is MarkerValueKind.Number or MarkerValueKind.Bound or MarkerValueKind.Text;

    /// <summary>The value of <paramref name="marker"/>.</summary>
    public static MarkerValue Of(Marker marker) => marker.ValueCase switch
    {
        Marker.ValueOneofCase.NumericValue => double.IsFinite(marker.NumericValue)
            ? new MarkerValue(MarkerValueKind.Number, marker.NumericValue, BoundOperator.None, "")
            : new MarkerValue(MarkerValueKind.NotFinite, 0, BoundOperator.None, ""),
        Marker.ValueOneofCase.TextValue => Parse(marker.TextValue),
        _ => new MarkerValue(MarkerValueKind.Missing, 0, BoundOperator.None, ""),
    };

    /// <summary>A text value: a number, a bound, a non-finite number, or text.</summary>
    public static MarkerValue Parse(string text)
    {
        var trimmed = text.Trim();
        switch (ParseNumber(trimmed, out var number))
        {
            case MarkerValueKind.Number:
                return new MarkerValue(MarkerValueKind.Number, number, BoundOperator.None, trimmed);
            case MarkerValueKind.NotFinite:
                return new MarkerValue(MarkerValueKind.NotFinite, 0, BoundOperator.None, trimmed);
        }
        foreach (var (prefix, op) in Prefixes)
        {
            if (!trimmed.StartsWith(prefix, StringComparison.Ordinal))
            {
                continue;
            }
            return ParseNumber(trimmed[prefix.Length..].Trim(), out var bound) switch
            {
                MarkerValueKind.Number => new MarkerValue(MarkerValueKind.Bound, bound, op, trimmed),
                MarkerValueKind.NotFinite => new MarkerValue(MarkerValueKind.NotFinite, 0, BoundOperator.None, trimmed),
                _ => new MarkerValue(MarkerValueKind.Text, 0, BoundOperator.None, trimmed),
            };
        }
        return new MarkerValue(MarkerValueKind.Text, 0, BoundOperator.None, trimmed);
    }

    /// <summary>The value for people, in <paramref name="unit"/>: "5.6 mmol/L", "&lt;45.04 mg/dL".</summary>
    public static string Format(BoundOperator op, double number, string unit) => OperatorText(op) + Units.Format(number, unit);

    private static string OperatorText(BoundOperator op) => op switch
    {
        BoundOperator.LessThan => "<",
        BoundOperator.LessThanOrEqual => "<=",
        BoundOperator.GreaterThan => ">",
        BoundOperator.GreaterThanOrEqual => ">=",
        _ => "",
    };

    private static MarkerValueKind ParseNumber(string text, out double number)
    {
        number = 0;
        if (NotFiniteWords.Contains(text))
        {
            return MarkerValueKind.NotFinite;
        }
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var parsed))
        {
            return MarkerValueKind.Text;
        }
        if (!double.IsFinite(parsed))
        {
            // "Infinity", "NaN", or a number too large for a double ("1e400").
            return MarkerValueKind.NotFinite;
        }
        number = parsed;
        return MarkerValueKind.Number;
    }
}
