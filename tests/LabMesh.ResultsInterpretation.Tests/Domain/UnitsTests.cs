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
    };

    [Theory]
    [MemberData(nameof(Conversions))]
    public void TryConvert_ExactRule_Converts(string analyte, double value, string from, string to, double expected)
    {
        Assert.True(Units.TryConvert(analyte, value, from, to, out var converted));
        Assert.Equal(expected, converted, 1e-9);
    }

    // (analyte, from, to): no exact rule, so no conversion.
    public static TheoryData<string, string, string> NoConversion() => new()
    {
        { "calcium", "mEq/L", "mmol/L" },
        { "calcium", "mEq/L", "mg/dL" },
        { "cholesterol", "mmol/L", "mg/dL" },
        { "glucose", "mmol/L", "g/L" },
        { "hemoglobin", "mmol/L", "g/dL" },
        { "potassium", "mg/dL", "mmol/L" },
        { "potassium", "", "mmol/L" },
        { "platelets", "x10^3/mm3", "x10^9/L" },
        { "glucose", "mmol/L", "mmol/mol" },
    };

    [Theory]
    [MemberData(nameof(NoConversion))]
    public void TryConvert_NoRule_IsFalse(string analyte, string from, string to) =>
        Assert.False(Units.TryConvert(analyte, 1, from, to, out _));

    [Fact]
    public void DefaultConversions_AreTheDocumentedExactRules()
    {
        UnitConversionRule[] expected =
        [
            new("glucose", "mmol/L", "mg/dL", 18.016),
            new("glucose", "mg/dL", "mmol/L", 1 / 18.016),
            new("hemoglobin", "g/L", "g/dL", 0.1),
            new("hemoglobin", "g/dL", "g/L", 10),
            new("", "x10^3/uL", "x10^9/L", 1),
            new("", "x10^9/L", "x10^3/uL", 1),
            new("calcium", "mmol/L", "mg/dL", 4.008),
            new("calcium", "mg/dL", "mmol/L", 1 / 4.008),
            new("potassium", "mEq/L", "mmol/L", 1),
            new("potassium", "mmol/L", "mEq/L", 1),
            new("sodium", "mEq/L", "mmol/L", 1),
            new("sodium", "mmol/L", "mEq/L", 1),
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
