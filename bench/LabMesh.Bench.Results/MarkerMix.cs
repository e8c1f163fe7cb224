using LabMesh.Contracts.Results.V1;

namespace LabMesh.Bench.Results;

/// <summary>
/// Synthetic result reports, deterministic for a seed: a panel of 21 analytes as labs report them.
/// Seven are in the critical-limit catalog (potassium, glucose, hemoglobin, sodium, calcium, platelets,
/// INR), reported in the catalog's unit or one that converts (mEq/L, mmol/L glucose and calcium, g/L,
/// x10E3/uL, K/uL) and now and then in one that does not (calcium in mEq/L); the others are outside it.
/// Some ranges are one-sided (ALT, LDL, HDL, HbA1c, INR), some values bounds ("&lt;0.5", "&gt;1000"),
/// some qualitative ("Non-reactive", "Trace"); half the markers carry the lab's own interpretation.
/// About 8% of the values are out of range; one report in five is given one critical value (which
/// the reader cannot call critical when it falls on calcium in mEq/L).
/// No patient data: markers only.
/// </summary>
internal static class MarkerMix
{
    private enum Outcome
    {
        Normal,
        Abnormal,
        Critical,
    }

    private sealed record Template(bool InCatalog, Func<Rng, Outcome, Marker> Make);

    // Catalog analytes at every third position, so any window of 3 or more holds one.
    private static readonly Template[] Panel =
    [
        new(true, (r, o) => // potassium, mmol/L or mEq/L (converts 1:1)
        {
            var v = o switch
            {
                Outcome.Critical => r.Pick(r.Between(6.4, 7.0), r.Between(2.2, 2.6)),
                Outcome.Abnormal => r.Pick(r.Between(5.3, 5.9), r.Between(3.0, 3.4)),
                _ => r.Between(3.6, 5.0),
            };
            return Numeric("potassium", "Potassium", r.Chance(0.3) ? "mEq/L" : "mmol/L", Math.Round(v, 1), 3.5, 5.1);
        }),
        new(false, (r, o) => Numeric("creatinine", "Creatinine", "mg/dL",
            Math.Round(o == Outcome.Normal ? r.Between(0.6, 1.3) : r.Between(1.4, 2.5), 2), 0.6, 1.3)),
        new(false, (r, o) => Numeric("alt", "ALT (SGPT)", "U/L",
            Math.Round(o == Outcome.Normal ? r.Between(10, 40) : r.Between(50, 120)), null, 44)),
        new(true, (r, o) => // glucose, mg/dL or mmol/L (converts by 18.016)
        {
            var mg = o switch
            {
                Outcome.Critical => r.Pick(r.Between(500, 600), r.Between(30, 40)),
                Outcome.Abnormal => r.Between(105, 180),
                _ => r.Between(72, 98),
            };
            return r.Chance(0.4)
                ? Numeric("glucose", "Glucose", "mmol/L", Math.Round(mg / 18.016, 1), 3.9, 5.5)
                : Numeric("glucose", "Glucose", "mg/dL", Math.Round(mg), 70, 99);
        }),
        new(false, (r, o) => Numeric("ldl_cholesterol", "LDL Cholesterol", "mg/dL",
            Math.Round(o == Outcome.Normal ? r.Between(60, 99) : r.Between(130, 190)), null, 100)),
        new(false, (r, o) => o == Outcome.Normal && r.Chance(0.5)
            ? Text("crp", "C-Reactive Protein", "mg/L", "<0.5", null, 5.0)
            : Numeric("crp", "C-Reactive Protein", "mg/L", Math.Round(o == Outcome.Normal ? r.Between(0.6, 4.9) : r.Between(8, 40), 1), null, 5.0)),
        new(true, (r, o) => // hemoglobin, g/dL or g/L (converts by 0.1)
        {
            var gdl = o switch
            {
                Outcome.Critical => r.Between(5.5, 6.3),
                Outcome.Abnormal => r.Between(10.0, 11.5),
                _ => r.Between(12.5, 15.5),
            };
            return r.Chance(0.4)
                ? Numeric("hemoglobin", "Hemoglobin", "g/L", Math.Round(gdl * 10), 120, 160)
                : Numeric("hemoglobin", "Hemoglobin", "g/dL", Math.Round(gdl, 1), 12.0, 16.0);
        }),
        new(false, (r, o) => Numeric("hdl_cholesterol", "HDL Cholesterol", "mg/dL",
            Math.Round(o == Outcome.Normal ? r.Between(45, 80) : r.Between(28, 38)), 40, null)),
        new(false, (r, o) => Qualitative("hiv_1_2_ag_ab", "HIV-1/2 Ag/Ab", o == Outcome.Normal ? "Non-reactive" : "Reactive",
            o == Outcome.Normal ? Interpretation.Normal : Interpretation.Abnormal)),
        new(true, (r, o) => // sodium, mmol/L or mEq/L
        {
            var v = o switch
            {
                Outcome.Critical => r.Pick(r.Between(160, 165), r.Between(114, 118)),
                Outcome.Abnormal => r.Pick(r.Between(146, 150), r.Between(130, 134)),
                _ => r.Between(136, 144),
            };
            return Numeric("sodium", "Sodium", r.Chance(0.3) ? "mEq/L" : "mmol/L", Math.Round(v), 135, 145);
        }),
        new(false, (r, o) => Numeric("tsh", "TSH", "mIU/L",
            Math.Round(o == Outcome.Normal ? r.Between(0.5, 4.4) : r.Between(5, 12), 2), 0.45, 4.5)),
        new(false, (r, o) => o == Outcome.Normal
            ? Text("troponin_i", "Troponin I", "ng/mL", "<0.01", null, 0.04)
            : Numeric("troponin_i", "Troponin I", "ng/mL", Math.Round(r.Between(0.06, 0.5), 2), null, 0.04)),
        new(true, (r, o) => // calcium (total), mg/dL, mmol/L (converts by 4.008) or mEq/L (does not convert)
        {
            var mg = o switch
            {
                Outcome.Critical => r.Pick(r.Between(13.5, 14.5), r.Between(5.5, 6.2)),
                Outcome.Abnormal => r.Between(10.6, 11.8),
                _ => r.Between(8.8, 10.1),
            };
            var unit = r.Between(0, 1);
            return unit < 0.1 ? Numeric("calcium", "Calcium", "mEq/L", Math.Round(mg / 2.004, 2), 4.3, 5.15)
                : unit < 0.4 ? Numeric("calcium", "Calcium", "mmol/L", Math.Round(mg / 4.008, 2), 2.15, 2.57)
                : Numeric("calcium", "Calcium", "mg/dL", Math.Round(mg, 1), 8.6, 10.3);
        }),
        new(false, (r, o) => Numeric("hba1c", "Hemoglobin A1c", "%",
            Math.Round(o == Outcome.Normal ? r.Between(4.8, 5.6) : r.Between(5.8, 8.5), 1), null, 5.6)),
        new(false, (r, o) => Numeric("unknown", "Chloride", "mmol/L", // a result the lab could not map (seed 004)
            Math.Round(o == Outcome.Normal ? r.Between(99, 106) : r.Between(108, 112)), 98, 107)),
        new(true, (r, o) => // platelets, x10^9/L, x10E3/uL or K/uL (1:1)
        {
            var v = o switch
            {
                Outcome.Critical => r.Pick(r.Between(1100, 1300), r.Between(15, 30)),
                Outcome.Abnormal => r.Pick(r.Between(420, 600), r.Between(100, 140)),
                _ => r.Between(160, 390),
            };
            var unit = r.Between(0, 1);
            return Numeric("platelets", "Platelets", unit < 0.4 ? "x10^9/L" : unit < 0.8 ? "x10E3/uL" : "K/uL", Math.Round(v), 150, 400);
        }),
        new(false, (r, o) => o == Outcome.Normal
            ? Qualitative("urine_protein", "Protein, Urine", "Negative", Interpretation.Unspecified)
            : Qualitative("urine_protein", "Protein, Urine", r.Pick("Trace", "1+"), Interpretation.Abnormal)),
        new(false, (r, o) => o == Outcome.Normal
            ? Numeric("ferritin", "Ferritin", "ng/mL", Math.Round(r.Between(40, 380)), 30, 400)
            : Text("ferritin", "Ferritin", "ng/mL", ">1000", 30, 400)),
        new(true, (r, o) => // INR: a ratio without unit, one-sided range
        {
            var v = o switch
            {
                Outcome.Critical => r.Between(5.5, 8.0),
                Outcome.Abnormal => r.Between(1.5, 3.0),
                _ => r.Between(0.9, 1.1),
            };
            return Numeric("inr", "INR", r.Chance(0.5) ? "" : "INR", Math.Round(v, 1), null, 1.1);
        }),
        new(false, (r, o) => Numeric("wbc", "White Blood Cells", "x10^3/uL",
            Math.Round(o == Outcome.Normal ? r.Between(4.6, 10.8) : r.Between(11.5, 18), 1), 4.5, 11.0)),
        new(false, (r, o) => Numeric("vitamin_d_25_oh", "Vitamin D, 25-Hydroxy", "ng/mL",
            Math.Round(o == Outcome.Normal ? r.Between(31, 90) : r.Between(12, 28)), 30, 100)),
    ];

    /// <summary>
    /// <paramref name="count"/> reports of <paramref name="markers"/> markers each: report i takes the
    /// panel from position 7i on (wrapping), then numbered extra analytes when more are asked than
    /// the panel holds. Reports whose index is a multiple of 5 hold one critical value.
    /// </summary>
    public static IReadOnlyList<Marker[]> Reports(int count, int markers, ulong seed)
    {
        var rng = new Rng(seed);
        var reports = new List<Marker[]>(count);
        for (var i = 0; i < count; i++)
        {
            var offset = 7 * i % Panel.Length;
            var fromPanel = Math.Min(markers, Panel.Length);
            var critical = i % 5 == 0 ? Enumerable.Range(0, fromPanel).FirstOrDefault(k => Panel[(offset + k) % Panel.Length].InCatalog, -1) : -1;
            var report = new Marker[markers];
            for (var k = 0; k < markers; k++)
            {
                if (k >= Panel.Length)
                {
                    report[k] = Numeric($"analyte_{k}", $"Analyte {k}", "mg/dL", Math.Round(rng.Between(2, 9), 1), 1, 10);
                    continue;
                }
                var outcome = k == critical ? Outcome.Critical : rng.Chance(0.08) ? Outcome.Abnormal : Outcome.Normal;
                var marker = Panel[(offset + k) % Panel.Length].Make(rng, outcome);
                if (marker.Interpretation == Interpretation.Unspecified && marker.ValueCase != Marker.ValueOneofCase.TextValue && rng.Chance(0.5))
                {
                    // The lab's own flag; for a critical value it says abnormal, which the reading overrides.
                    marker.Interpretation = outcome == Outcome.Normal ? Interpretation.Normal : Interpretation.Abnormal;
                }
                report[k] = marker;
            }
            reports.Add(report);
        }
        return reports;
    }

    private static Marker Numeric(string slug, string name, string unit, double value, double? min, double? max) =>
        Ranged(new Marker { Slug = slug, Name = name, Unit = unit, NumericValue = value }, min, max);

    private static Marker Text(string slug, string name, string unit, string value, double? min, double? max) =>
        Ranged(new Marker { Slug = slug, Name = name, Unit = unit, TextValue = value }, min, max);

    private static Marker Qualitative(string slug, string name, string value, Interpretation lab) =>
        new() { Slug = slug, Name = name, TextValue = value, Interpretation = lab };

    private static Marker Ranged(Marker marker, double? min, double? max)
    {
        if (min is { } low)
        {
            marker.MinRangeValue = low;
        }
        if (max is { } high)
        {
            marker.MaxRangeValue = high;
        }
        return marker;
    }

    /// <summary>SplitMix64: deterministic, and not System.Random (nothing here is security-relevant either way).</summary>
    private sealed class Rng(ulong seed)
    {
        private ulong _state = seed;

        public double Between(double low, double high) => low + (high - low) * Next();

        public bool Chance(double p) => Next() < p;

        public T Pick<T>(T a, T b) => Next() < 0.5 ? a : b;

        private double Next()
        {
            var z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            return (z >> 11) * (1.0 / (1UL << 53));
        }
    }
}
