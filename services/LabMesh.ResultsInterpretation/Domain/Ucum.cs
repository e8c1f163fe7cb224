using System.Collections.Concurrent;
using Fhir.Metrics;

namespace LabMesh.ResultsInterpretation.Domain;

/// <summary>
/// Dimensional conversions between UCUM units, through Fhir.Metrics (the UCUM library of the Firely
/// SDK). Two units convert when UCUM gives them the same dimension and they count the same kind of
/// thing (see <see cref="TryFactor"/>); the factor is UCUM's, never a guess.
/// </summary>
/// <remarks>
/// <para>Fhir.Metrics reads a mole and an equivalent as the same dimensionless count (6.022e23), and an
/// arbitrary unit such as <c>[IU]</c> as a plain count too: by dimension alone mmol/L would equal
/// mEq/L for every ion and IU/L would equal 10*3/L. So the units must also carry the same "counted
/// things": the atoms <c>mol</c>, <c>eq</c> and every bracketed atom (<c>[IU]</c>, <c>[iU]</c>, ...),
/// with their exponents. An equivalent is a mole only for a monovalent ion: the caller says so
/// (the <c>monovalent</c> argument of <see cref="TryFactor"/>).</para>
/// <para>The UCUM essence is loaded once, on first use (about 1 s of CPU and about 3 MB resident, bench/README.md);
/// <see cref="Warm"/> loads it ahead. Parsed units are cached, at most <see cref="MaxCachedUnits"/>.</para>
/// </remarks>
public static class Ucum
{
    /// <summary>At most this many distinct units are kept parsed; past it a unit is parsed on each use.</summary>
    public const int MaxCachedUnits = 1024;

    private static readonly Lazy<SystemOfUnits> System = new(UCUM.Load, LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly Lock ParseLock = new();
    private static readonly ConcurrentDictionary<string, Parsed?> Cache = new(StringComparer.Ordinal);

    /// <summary>Loads the UCUM essence now rather than on the first conversion.</summary>
    public static void Warm() => _ = System.Value;

    /// <summary>Whether <paramref name="code"/> is a UCUM code Fhir.Metrics can read (case-sensitive).</summary>
    public static bool IsUnit(string code) => Parse(code) is not null;

    /// <summary>
    /// The factor <c>f</c> with <c>value in <paramref name="to"/> = value in <paramref name="from"/> × f</c>,
    /// both UCUM codes (case-sensitive). False when either is not UCUM, when their dimensions differ,
    /// or when they count different things (moles against equivalents, unless <paramref name="monovalent"/>;
    /// an arbitrary unit against anything but itself).
    /// </summary>
    public static bool TryFactor(string from, string to, bool monovalent, out double factor)
    {
        factor = 0;
        if (Parse(from) is not { } a || Parse(to) is not { } b)
        {
            return false;
        }
        if (!string.Equals(a.Dimension, b.Dimension, StringComparison.Ordinal)
            || !string.Equals(a.Counted(monovalent), b.Counted(monovalent), StringComparison.Ordinal))
        {
            return false;
        }
        factor = a.Canonical / b.Canonical;
        return double.IsFinite(factor) && factor > 0;
    }

    private static Parsed? Parse(string code)
    {
        if (Cache.TryGetValue(code, out var cached))
        {
            return cached;
        }
        var parsed = ParseUncached(code);
        if (Cache.Count < MaxCachedUnits)
        {
            Cache.TryAdd(code, parsed);
        }
        return parsed;
    }

    private static Parsed? ParseUncached(string code)
    {
        if (code.Length == 0 || code.Any(char.IsWhiteSpace))
        {
            return null;
        }
        var system = System.Value;
        lock (ParseLock)
        {
            try
            {
                var metric = system.Metric(code);
                var canonical = system.Canonical(system.Quantity("1", code));
                var atoms = metric.Axes
                    .Where(axis => axis.Unit.Symbol is "mol" or "eq" || axis.Unit.Symbol.StartsWith('['))
                    .GroupBy(axis => axis.Unit.Symbol, StringComparer.Ordinal)
                    .Select(g => (Symbol: g.Key, Exponent: g.Sum(axis => axis.Exponent)))
                    .Where(atom => atom.Exponent != 0)
                    .OrderBy(atom => atom.Symbol, StringComparer.Ordinal)
                    .ToList();
                var value = canonical.Value.ValueToFloat();
                return double.IsFinite(value) && value > 0 ? new Parsed(canonical.Metric.ToString(), value, atoms) : null;
            }
            // Fhir.Metrics throws ArgumentException for an unknown atom and InvalidCastException (or
            // others) for what it cannot bring to base units: any of them means "not a UCUM unit here".
#pragma warning disable CA1031
            catch (Exception)
#pragma warning restore CA1031
            {
                return null;
            }
        }
    }

    private sealed record Parsed(string Dimension, double Canonical, IReadOnlyList<(string Symbol, int Exponent)> Atoms)
    {
        // The counted atoms as one string; with monovalent, equivalents count as moles.
        public string Counted(bool monovalent) => string.Join('.', Atoms
            .Select(atom => (Symbol: monovalent && atom.Symbol == "eq" ? "mol" : atom.Symbol, atom.Exponent))
            .GroupBy(atom => atom.Symbol, StringComparer.Ordinal)
            .Select(g => (Symbol: g.Key, Exponent: g.Sum(atom => atom.Exponent)))
            .Where(atom => atom.Exponent != 0)
            .OrderBy(atom => atom.Symbol, StringComparer.Ordinal)
            .Select(atom => $"{atom.Symbol}{atom.Exponent}"));
    }
}
