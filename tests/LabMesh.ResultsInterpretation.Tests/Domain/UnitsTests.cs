using LabMesh.ResultsInterpretation.Domain;

namespace LabMesh.ResultsInterpretation.Tests.Domain;

public class UnitsTests
{
    // (as written, canonical)
    public static TheoryData<string, string> Spellings() => new()
    {
        { "mg/dL", "mg/dL" },
        { "mg/dl", "mg/dL" },
        { "MG/DL", "mg/dL" },
        { " mg / dL ", "mg/dL" },
        { "mmol/L", "mmol/L" },
        { "mmol/l", "mmol/L" },
        { "MMOL/L", "mmol/L" },
        { "mM", "mmol/L" },
        { "meq/l", "mEq/L" },
        { "mEq/L", "mEq/L" },
        { "MEQ/L", "mEq/L" },
        { "g/dl", "g/dL" },
        { "G/DL", "g/dL" },
        { "g/l", "g/L" },
        { "g/L", "g/L" },
        { "10^9/L", "x10^9/L" },
        { "x10^9/L", "x10^9/L" },
        { "X10^9/l", "x10^9/L" },
        { "x10E9/L", "x10^9/L" },
        { "10E9/L", "x10^9/L" },
        { "10*9/L", "x10^9/L" },
        { "x10(9)/L", "x10^9/L" },
        { "×10^9/L", "x10^9/L" },
        { "x 10^9 / L", "x10^9/L" },
        { "G/L", "x10^9/L" },
        { "G/l", "x10^9/L" },
        { "/nL", "x10^9/L" },
        { "10^3/uL", "x10^3/uL" },
        { "x10^3/uL", "x10^3/uL" },
        { "x10E3/uL", "x10^3/uL" },
        { "10*3/uL", "x10^3/uL" },
        { "x10(3)/uL", "x10^3/uL" },
        { "K/uL", "x10^3/uL" },
        { "k/ul", "x10^3/uL" },
        { "thou/uL", "x10^3/uL" },
        { "x10^3/µL", "x10^3/uL" },
        { "x10^3/μL", "x10^3/uL" },
        { "10^3/UL", "x10^3/uL" },
        { "", "" },
        { "   ", "" },
        { "INR", "" },
        { "inr", "" },
        { "ratio", "" },
        { "µmol/L", "umol/L" },
        { "μmol/l", "umol/L" },
        { "NG/ML", "ng/mL" },
        { "u/l", "U/L" },
    };

    [Theory]
    [MemberData(nameof(Spellings))]
    public void Normalize_KnownSpelling_IsCanonical(string unit, string expected) =>
        Assert.Equal(expected, Units.Normalize(unit));

    // Never guessed: kept as written, trimmed.
    public static TheoryData<string, string> Unknown() => new()
    {
        { "x10^3/mm3", "x10^3/mm3" },
        { "cells/mm3", "cells/mm3" },
        { " mg/kg ", "mg/kg" },
        { "mm", "mm" },
        { "MM", "MM" },
        { "mg / 24 h", "mg / 24 h" },
        { "copies/mL", "copies/mL" },
    };

    [Theory]
    [MemberData(nameof(Unknown))]
    public void Normalize_UnknownUnit_IsKeptTrimmed(string unit, string expected) =>
        Assert.Equal(expected, Units.Normalize(unit));

    // (analyte, value, from, to, expected)
    public static TheoryData<string, double, string, string, double> Conversions() => new()
    {
        { "glucose", 1, "mmol/L", "mg/dL", 18.016 },
        { "glucose", 2.5, "mmol/L", "mg/dL", 45.04 },
        { "glucose", 180.16, "mg/dL", "mmol/L", 10 },
        { "hemoglobin", 150, "g/L", "g/dL", 15 },
        { "hemoglobin", 15, "g/dL", "g/L", 150 },
        { "platelets", 250, "x10^3/uL", "x10^9/L", 250 },
        { "platelets", 250, "x10^9/L", "x10^3/uL", 250 },
        { "wbc", 7.5, "K/uL", "x10^9/L", 7.5 },
        { "calcium", 2.5, "mmol/L", "mg/dL", 10.02 },
        { "calcium", 10.02, "mg/dL", "mmol/L", 2.5 },
        { "potassium", 4.1, "mEq/L", "mmol/L", 4.1 },
        { "potassium", 4.1, "mmol/L", "mEq/L", 4.1 },
        { "sodium", 140, "mEq/L", "mmol/L", 140 },
        { "sodium", 140, "mmol/L", "meq/l", 140 },
        { "GLUCOSE", 1, "mmol/l", "MG/DL", 18.016 },
        { "ferritin", 42, "ng/mL", "ng/mL", 42 },
        { "cholesterol", 190, "MG/DL", "mg/dL", 190 },
        { "inr", 1.1, "INR", "", 1.1 },
        // UCUM alone: commensurable units, any analyte.
        { "albumin", 40, "g/L", "g/dL", 4 },
        { "glucose", 0.3, "g/L", "mg/dL", 30 },
        { "creatinine", 1, "mg/dL", "mg/L", 10 },
        { "creatinine", 88.4, "umol/L", "mmol/L", 0.0884 },
        { "ferritin", 42, "ng/mL", "ug/L", 42 },
        { "tsh", 2.5, "mIU/L", "uIU/mL", 2.5 },
        { "hcg", 5, "IU/L", "mIU/mL", 5 },
        { "platelets", 250, "10*3/mm3", "x10^9/L", 250 },
        { "chloride", 101, "mEq/L", "mmol/L", 101 },
        { "bicarbonate", 24, "mmol/L", "mEq/L", 24 },
        { "potassium", 4100, "umol/L", "mEq/L", 4.1 },
        // A molar mass with UCUM on either side.
        { "glucose", 5000, "umol/L", "mg/dL", 90.08 },
        { "glucose", 10, "mmol/L", "g/L", 1.8016 },
        { "calcium", 2.5, "mmol/L", "mg/L", 100.2 },
    };

    [Theory]
    [MemberData(nameof(Conversions))]
    public void TryConvert_SameUnitUcumOrRule_Converts(string analyte, double value, string from, string to, double expected)
    {
        Assert.True(Units.TryConvert(analyte, value, from, to, out var converted));
        Assert.Equal(expected, converted, 1e-9);
    }

    // (analyte, from, to): not commensurable and no rule of the analyte, so no conversion.
    public static TheoryData<string, string, string> NoConversion() => new()
    {
        { "calcium", "mEq/L", "mmol/L" },
        { "calcium", "mEq/L", "mg/dL" },
        { "magnesium", "mmol/L", "mEq/L" },
        { "cholesterol", "mmol/L", "mg/dL" },
        { "hemoglobin", "mmol/L", "g/dL" },
        { "potassium", "mg/dL", "mmol/L" },
        { "potassium", "", "mmol/L" },
        { "platelets", "x10^3/mm3", "x10^9/L" },
        { "platelets", "mmol/L", "x10^9/L" },
        { "glucose", "mmol/L", "mmol/mol" },
        { "tsh", "mIU/L", "mmol/L" },
        { "tsh", "mIU/L", "x10^3/uL" },
        { "inr", "s", "" },
        { "inr", "%", "" },
        { "wbc", "cells/mm3", "x10^9/L" },
        { "glucose", "not a unit", "mg/dL" },
    };

    [Theory]
    [MemberData(nameof(NoConversion))]
    public void TryConvert_NotCommensurable_IsFalse(string analyte, string from, string to)
    {
        Assert.False(Units.TryConvert(analyte, 1, from, to, out var converted));
        Assert.Equal(0, converted);
    }

    [Fact]
    public void DefaultConversions_AreTheDocumentedExactRules()
    {
        // Only what UCUM cannot know: molar masses.
        UnitConversionRule[] expected =
        [
            new("glucose", "mmol/L", "mg/dL", 18.016),
            new("glucose", "mg/dL", "mmol/L", 1 / 18.016),
            new("calcium", "mmol/L", "mg/dL", 4.008),
            new("calcium", "mg/dL", "mmol/L", 1 / 4.008),
        ];
        Assert.Equal(expected, Units.DefaultConversions);
        // TryConvert compares the rules' units as written with normalised ones.
        Assert.All(Units.DefaultConversions, r => Assert.Equal((r.FromUnit, r.ToUnit), (Units.Normalize(r.FromUnit), Units.Normalize(r.ToUnit))));
    }

    // (value, unit, formatted): 4 significant digits, invariant.
    public static TheoryData<double, string, string> Formats() => new()
    {
        { 45.04, "mg/dL", "45.04 mg/dL" },
        { 484.6304, "mg/dL", "484.6 mg/dL" },
        { 6.4128, "mg/dL", "6.413 mg/dL" },
        { 6.500000000000001, "g/dL", "6.5 g/dL" },
        { 1000, "x10^9/L", "1000 x10^9/L" },
        { 123456, "x10^9/L", "123500 x10^9/L" },
        { 0.000123456, "mmol/L", "0.0001235 mmol/L" },
        { 5, "", "5" },
        { 0, "mmol/L", "0 mmol/L" },
        { -2.25, "mmol/L", "-2.25 mmol/L" },
    };

    [Theory]
    [MemberData(nameof(Formats))]
    public void Format_RoundsToFourSignificantDigits(double value, string unit, string expected) =>
        Assert.Equal(expected, Units.Format(value, unit));
}
