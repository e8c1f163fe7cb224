using LabMesh.Contracts.Results.V1;
using LabMesh.ResultsInterpretation.Domain;

namespace LabMesh.ResultsInterpretation.Tests.Domain;

public class MarkerReaderTests
{
    private const Interpretation Unspecified = Interpretation.Unspecified;
    private const Interpretation Normal = Interpretation.Normal;
    private const Interpretation Abnormal = Interpretation.Abnormal;
    private const Interpretation Critical = Interpretation.Critical;

    private const MarkerFlag NotComparable = MarkerFlag.UnitNotComparable;
    private const MarkerFlag Qualitative = MarkerFlag.QualitativeValue;
    private const MarkerFlag Inconclusive = MarkerFlag.ValueBoundInconclusive;
    private const MarkerFlag Overridden = MarkerFlag.LabInterpretationOverridden;

    private static readonly MarkerReader Reader = MarkerReader.Default;

    // Each default analyte in its catalog unit, no reference range: at, just inside and just
    // outside each limit. Not critical reads UNSPECIFIED (no range to call it normal).
    // (slug, unit, value, computed)
    public static TheoryData<string, string, double, Interpretation> CatalogLimits() => new()
    {
        { "potassium", "mmol/L", 2.79, Critical },
        { "potassium", "mmol/L", 2.8, Critical },
        { "potassium", "mmol/L", 2.81, Unspecified },
        { "potassium", "mmol/L", 6.19, Unspecified },
        { "potassium", "mmol/L", 6.2, Critical },
        { "potassium", "mmol/L", 6.21, Critical },
        { "sodium", "mmol/L", 119.9, Critical },
        { "sodium", "mmol/L", 120, Critical },
        { "sodium", "mmol/L", 120.1, Unspecified },
        { "sodium", "mmol/L", 157.9, Unspecified },
        { "sodium", "mmol/L", 158, Critical },
        { "sodium", "mmol/L", 158.1, Critical },
        { "glucose", "mg/dL", 45.9, Critical },
        { "glucose", "mg/dL", 46, Critical },
        { "glucose", "mg/dL", 46.1, Unspecified },
        { "glucose", "mg/dL", 483.9, Unspecified },
        { "glucose", "mg/dL", 484, Critical },
        { "glucose", "mg/dL", 484.1, Critical },
        { "calcium", "mg/dL", 6.59, Critical },
        { "calcium", "mg/dL", 6.6, Critical },
        { "calcium", "mg/dL", 6.61, Unspecified },
        { "calcium", "mg/dL", 12.89, Unspecified },
        { "calcium", "mg/dL", 12.9, Critical },
        { "calcium", "mg/dL", 12.91, Critical },
        { "hemoglobin", "g/dL", 6.59, Critical },
        { "hemoglobin", "g/dL", 6.6, Critical },
        { "hemoglobin", "g/dL", 6.61, Unspecified },
        { "hemoglobin", "g/dL", 19.99, Unspecified },
        { "hemoglobin", "g/dL", 20, Critical },
        { "hemoglobin", "g/dL", 20.01, Critical },
        { "platelets", "x10^9/L", 36.9, Critical },
        { "platelets", "x10^9/L", 37, Critical },
        { "platelets", "x10^9/L", 37.1, Unspecified },
        { "platelets", "x10^9/L", 999.9, Unspecified },
        { "platelets", "x10^9/L", 1000, Critical },
        { "platelets", "x10^9/L", 1000.1, Critical },
        { "inr", "", 0.5, Unspecified },
        { "inr", "", 4.99, Unspecified },
        { "inr", "", 5.0, Critical },
        { "inr", "", 5.01, Critical },
        { "inr", "INR", 5.0, Critical },
    };

    [Theory]
    [MemberData(nameof(CatalogLimits))]
    public void Read_DefaultCatalog_AtTheLimitIsCritical(string slug, string unit, double value, Interpretation computed)
    {
        var reading = Reader.Read(TestMarkers.Number(slug, value, unit));

        Assert.Equal(computed, reading.ComputedInterpretation);
        Assert.Equal(computed, reading.Interpretation);
        Assert.Equal(slug, reading.CriticalLimitAnalyte);
        Assert.Equal("", reading.ConvertedValue);
        Assert.Empty(reading.Flags);
    }

    // (slug, value, unit, computed, converted value)
    public static TheoryData<string, double, string, Interpretation, string> Conversions() => new()
    {
        { "glucose", 2.5, "mmol/L", Critical, "45.04 mg/dL" },
        { "glucose", 2.6, "mmol/L", Unspecified, "46.84 mg/dL" },
        { "glucose", 26.8, "mmol/L", Unspecified, "482.8 mg/dL" },
        { "glucose", 26.9, "mmol/L", Critical, "484.6 mg/dL" },
        { "glucose", 5.6, "mmol/l", Unspecified, "100.9 mg/dL" },
        { "hemoglobin", 65, "g/L", Critical, "6.5 g/dL" },
        { "hemoglobin", 66, "g/L", Critical, "6.6 g/dL" },
        { "hemoglobin", 67, "g/L", Unspecified, "6.7 g/dL" },
        { "hemoglobin", 199, "g/L", Unspecified, "19.9 g/dL" },
        { "hemoglobin", 200, "g/L", Critical, "20 g/dL" },
        { "platelets", 1000, "x10^3/uL", Critical, "1000 x10^9/L" },
        { "platelets", 999, "K/uL", Unspecified, "999 x10^9/L" },
        { "platelets", 37, "10^3/µL", Critical, "37 x10^9/L" },
        { "potassium", 6.5, "mEq/L", Critical, "6.5 mmol/L" },
        { "potassium", 2.8, "meq/l", Critical, "2.8 mmol/L" },
        { "potassium", 4.0, "mEq/L", Unspecified, "4 mmol/L" },
        { "sodium", 158, "mEq/L", Critical, "158 mmol/L" },
        { "sodium", 119, "mEq/L", Critical, "119 mmol/L" },
        { "calcium", 1.6, "mmol/L", Critical, "6.413 mg/dL" },
        { "calcium", 1.7, "mmol/L", Unspecified, "6.814 mg/dL" },
        { "calcium", 3.2, "mmol/L", Unspecified, "12.83 mg/dL" },
        { "calcium", 3.3, "mmol/L", Critical, "13.23 mg/dL" },
        { "glucose", 0.3, "g/L", Critical, "30 mg/dL" },
        { "glucose", 1, "g/L", Unspecified, "100 mg/dL" },
        { "glucose", 2600, "umol/L", Unspecified, "46.84 mg/dL" },
        { "hemoglobin", 66, "mg/mL", Critical, "6.6 g/dL" },
        { "potassium", 6200, "umol/L", Critical, "6.2 mmol/L" },
        { "platelets", 37000, "10*6/L", Critical, "37 x10^9/L" },
    };

    [Theory]
    [MemberData(nameof(Conversions))]
    public void Read_OtherUnit_IsConvertedExactlyToTheCatalogUnit(
        string slug, double value, string unit, Interpretation computed, string converted)
    {
        var reading = Reader.Read(TestMarkers.Number(slug, value, unit));

        Assert.Equal(computed, reading.ComputedInterpretation);
        Assert.Equal(slug, reading.CriticalLimitAnalyte);
        Assert.Equal(converted, reading.ConvertedValue);
        Assert.Empty(reading.Flags);
    }

    [Theory]
    [InlineData("potassium", 4.1, "mmol/l")]
    [InlineData("potassium", 4.1, "MMOL/L")]
    [InlineData("platelets", 250, "G/L")]
    public void Read_SameUnitOtherSpelling_SetsNoConvertedValue(string slug, double value, string unit)
    {
        var reading = Reader.Read(TestMarkers.Number(slug, value, unit));

        Assert.Equal(slug, reading.CriticalLimitAnalyte);
        Assert.Equal("", reading.ConvertedValue);
    }

    // (slug, value, unit, min, max, computed): the catalog check is not made, the range still is.
    public static TheoryData<string, double, string, double?, double?, Interpretation> NotComparableUnits() => new()
    {
        { "potassium", 30, "mg/dL", null, null, Unspecified },
        { "potassium", 30, "mg/dL", 14, 20, Abnormal },
        { "potassium", 16, "mg/dL", 14, 20, Normal },
        { "potassium", 1.0, "", null, null, Unspecified },
        { "calcium", 2.0, "mEq/L", null, null, Unspecified },
        { "hemoglobin", 3.0, "mmol/L", null, null, Unspecified },
        { "platelets", 5, "mmol/L", null, null, Unspecified },
        { "sodium", 140, "mIU/L", null, null, Unspecified },
        { "platelets", 5, "x10^3/mm3", null, null, Unspecified },
        { "inr", 9, "s", null, null, Unspecified },
    };

    [Theory]
    [MemberData(nameof(NotComparableUnits))]
    public void Read_UnitThatDoesNotConvert_IsFlaggedAndNotCritical(
        string slug, double value, string unit, double? min, double? max, Interpretation computed)
    {
        var reading = Reader.Read(TestMarkers.Number(slug, value, unit, min, max));

        Assert.Equal(computed, reading.ComputedInterpretation);
        Assert.Equal("", reading.CriticalLimitAnalyte);
        Assert.Equal("", reading.ConvertedValue);
        Assert.Equal([NotComparable], reading.Flags);
    }

    // No catalog entry ("ferritin"): the reference range alone.
    // (value, min, max, computed, below, above)
    public static TheoryData<double, double?, double?, Interpretation, bool, bool> Ranges() => new()
    {
        { 12.9, 13.0, 17.7, Abnormal, true, false },
        { 13.0, 13.0, 17.7, Normal, false, false },
        { 15.0, 13.0, 17.7, Normal, false, false },
        { 17.7, 13.0, 17.7, Normal, false, false },
        { 17.8, 13.0, 17.7, Abnormal, false, true },
        { 5, 5, 5, Normal, false, false },
        { 20, 30, null, Abnormal, true, false },
        { 30, 30, null, Normal, false, false },
        { 5000, 30, null, Normal, false, false },
        { 250, null, 200, Abnormal, false, true },
        { 200, null, 200, Normal, false, false },
        { -3, null, 200, Normal, false, false },
        { 42, null, null, Unspecified, false, false },
    };

    [Theory]
    [MemberData(nameof(Ranges))]
    public void Read_ReferenceRange_BelowAboveOrInside(
        double value, double? min, double? max, Interpretation computed, bool below, bool above)
    {
        var reading = Reader.Read(TestMarkers.Number("ferritin", value, "ng/mL", min, max));

        Assert.Equal(computed, reading.ComputedInterpretation);
        Assert.Equal(below, reading.IsBelowMinRange);
        Assert.Equal(above, reading.IsAboveMaxRange);
        Assert.Equal("", reading.CriticalLimitAnalyte);
        Assert.Empty(reading.Flags);
    }

    [Fact]
    public void Read_LabRangeFlags_AreNotTrusted()
    {
        var marker = TestMarkers.Number("ferritin", 50, "ng/mL", 30, 400);
        marker.IsAboveMaxRange = true;
        marker.IsBelowMinRange = true;

        var reading = Reader.Read(marker);

        Assert.Equal((Normal, false, false), (reading.ComputedInterpretation, reading.IsBelowMinRange, reading.IsAboveMaxRange));
    }

    // (slug, value, unit, min, max, computed, below, above, inconclusive)
    public static TheoryData<string, string, string, double?, double?, Interpretation, bool, bool, bool> Bounds() => new()
    {
        { "troponin", "<0.5", "ng/mL", 1, null, Abnormal, true, false, false },
        { "troponin", "<0.5", "ng/mL", 1, 10, Abnormal, true, false, false },
        { "troponin", "<0.5", "ng/mL", 0.5, 10, Abnormal, true, false, false },
        { "troponin", "<=0.5", "ng/mL", 0.5, 10, Unspecified, false, false, true },
        { "troponin", "<0.5", "ng/mL", 0.3, 10, Unspecified, false, false, true },
        { "troponin", "<0.5", "ng/mL", null, 1, Normal, false, false, false },
        { "troponin", "<1", "ng/mL", null, 1, Normal, false, false, false },
        { "troponin", "<=1", "ng/mL", null, 1, Normal, false, false, false },
        { "troponin", "<1.5", "ng/mL", null, 1, Unspecified, false, false, true },
        { "troponin", "<0.5", "ng/mL", null, null, Unspecified, false, false, false },
        { "ferritin", ">1000", "ng/mL", 30, 400, Abnormal, false, true, false },
        { "ferritin", ">400", "ng/mL", 30, 400, Abnormal, false, true, false },
        { "ferritin", ">=400", "ng/mL", 30, 400, Unspecified, false, false, true },
        { "ferritin", "≥ 500", "ng/mL", 30, 400, Abnormal, false, true, false },
        { "ferritin", ">100", "ng/mL", 30, null, Normal, false, false, false },
        { "platelets", ">1000", "x10^9/L", 150, 400, Critical, false, true, false },
        { "platelets", ">1000", "x10^9/L", null, null, Critical, false, false, false },
        { "platelets", ">999", "x10^9/L", null, null, Unspecified, false, false, true },
        { "platelets", "<37", "x10^9/L", 150, 400, Critical, true, false, false },
        { "potassium", "<2.0", "mmol/L", 3.5, 5.1, Critical, true, false, false },
        { "potassium", "<2.8", "mmol/L", null, null, Critical, false, false, false },
        { "potassium", "<=2.8", "mmol/L", null, null, Critical, false, false, false },
        { "potassium", "<3.0", "mmol/L", 3.5, 5.1, Abnormal, true, false, true },
        { "potassium", "<3.0", "mmol/L", null, null, Unspecified, false, false, true },
        { "potassium", ">2.8", "mmol/L", null, null, Unspecified, false, false, true },
        { "potassium", ">6.0", "mmol/L", 3.5, 5.1, Abnormal, false, true, true },
        { "potassium", ">6.2", "mmol/L", 3.5, 5.1, Critical, false, true, false },
        { "potassium", ">=6.2", "mmol/L", null, null, Critical, false, false, false },
        { "potassium", ">4", "mmol/L", 3.5, 5.1, Unspecified, false, false, true },
        { "inr", ">5", "", null, null, Critical, false, false, false },
        { "inr", "<1.0", "", 0.8, 1.2, Unspecified, false, false, true },
        { "inr", "<0.8", "", 0.8, 1.2, Abnormal, true, false, false },
    };

    [Theory]
    [MemberData(nameof(Bounds))]
    public void Read_Bound_DecidesOnlyWhatItProves(
        string slug, string value, string unit, double? min, double? max,
        Interpretation computed, bool below, bool above, bool inconclusive)
    {
        var reading = Reader.Read(TestMarkers.Text(slug, value, unit, min, max));

        Assert.Equal(computed, reading.ComputedInterpretation);
        Assert.Equal(below, reading.IsBelowMinRange);
        Assert.Equal(above, reading.IsAboveMaxRange);
        MarkerFlag[] flags = inconclusive ? [Inconclusive] : [];
        Assert.Equal(flags, reading.Flags);
    }

    // (slug, value, unit, computed, converted value)
    public static TheoryData<string, string, string, Interpretation, string> ConvertedBounds() => new()
    {
        { "glucose", "<2.5", "mmol/L", Critical, "<45.04 mg/dL" },
        { "glucose", ">= 26.9", "mmol/L", Critical, ">=484.6 mg/dL" },
        { "platelets", ">1000", "K/uL", Critical, ">1000 x10^9/L" },
        { "hemoglobin", "<=66", "g/L", Critical, "<=6.6 g/dL" },
        { "potassium", "≤ 2.8", "mEq/L", Critical, "<=2.8 mmol/L" },
    };

    [Theory]
    [MemberData(nameof(ConvertedBounds))]
    public void Read_BoundInOtherUnit_IsConvertedWithItsOperator(
        string slug, string value, string unit, Interpretation computed, string converted)
    {
        var reading = Reader.Read(TestMarkers.Text(slug, value, unit));

        Assert.Equal(computed, reading.ComputedInterpretation);
        Assert.Equal(converted, reading.ConvertedValue);
        Assert.Equal(slug, reading.CriticalLimitAnalyte);
    }

    [Fact]
    public void Read_NumberAsText_IsReadAsANumber()
    {
        var reading = Reader.Read(TestMarkers.Text("potassium", "2.5", "mmol/L", 3.5, 5.1));

        Assert.Equal((Critical, true), (reading.ComputedInterpretation, reading.IsBelowMinRange));
        Assert.Empty(reading.Flags);
    }

    // (slug, text, lab, interpretation)
    public static TheoryData<string, string, Interpretation, Interpretation> QualitativeValues() => new()
    {
        { "hiv_screen", "negative", Unspecified, Unspecified },
        { "hiv_screen", "positive", Unspecified, Unspecified },
        { "hiv_screen", "positive", Abnormal, Abnormal },
        { "hiv_screen", "negative", Normal, Normal },
        { "potassium", "hemolyzed", Unspecified, Unspecified },
        { "potassium", "see note", Critical, Critical },
        { "platelets", "1,000", Unspecified, Unspecified },
    };

    [Theory]
    [MemberData(nameof(QualitativeValues))]
    public void Read_TextValue_IsQualitativeAndKeepsTheLabReading(
        string slug, string text, Interpretation lab, Interpretation interpretation)
    {
        var reading = Reader.Read(TestMarkers.Text(slug, text, "", 0, 1, lab));

        Assert.Equal(Unspecified, reading.ComputedInterpretation);
        Assert.Equal(interpretation, reading.Interpretation);
        Assert.Equal([Qualitative], reading.Flags);
        Assert.Equal("", reading.CriticalLimitAnalyte);
        Assert.False(reading.IsBelowMinRange || reading.IsAboveMaxRange);
    }

    // Potassium, range 3.5 to 5.1. (value, lab, computed, interpretation, overridden)
    public static TheoryData<double, Interpretation, Interpretation, Interpretation, bool> LabVersusComputed() => new()
    {
        { 4.0, Critical, Normal, Critical, false },
        { 4.0, Abnormal, Normal, Abnormal, false },
        { 4.0, Normal, Normal, Normal, false },
        { 4.0, Unspecified, Normal, Normal, false },
        { 6.5, Normal, Critical, Critical, true },
        { 6.5, Abnormal, Critical, Critical, true },
        { 6.5, Critical, Critical, Critical, false },
        { 6.5, Unspecified, Critical, Critical, false },
        { 5.5, Normal, Abnormal, Abnormal, true },
        { 5.5, Unspecified, Abnormal, Abnormal, false },
        { 5.5, Critical, Abnormal, Critical, false },
        { 3.0, Abnormal, Abnormal, Abnormal, false },
    };

    [Theory]
    [MemberData(nameof(LabVersusComputed))]
    public void Read_LabAndComputed_TheMoreSevereWins(
        double value, Interpretation lab, Interpretation computed, Interpretation interpretation, bool overridden)
    {
        var reading = Reader.Read(TestMarkers.Number("potassium", value, "mmol/L", 3.5, 5.1, lab));

        Assert.Equal(computed, reading.ComputedInterpretation);
        Assert.Equal(interpretation, reading.Interpretation);
        MarkerFlag[] flags = overridden ? [Overridden] : [];
        Assert.Equal(flags, reading.Flags);
    }

    [Fact]
    public void Read_NoRangeNoEntryNoLab_IsUnspecified()
    {
        var reading = Reader.Read(TestMarkers.Number("vitamin_d", 30, "ng/mL"));

        Assert.Equal((Unspecified, Unspecified), (reading.ComputedInterpretation, reading.Interpretation));
        Assert.Empty(reading.Flags);
    }

    [Fact]
    public void Read_SeedHemoglobin_IsCriticalAndAbove()
    {
        var marker = TestMarkers.Number("hemoglobin", 100.2, "g/dL", 13.0, 17.7, Critical, "Hemoglobin");

        var reading = Reader.Read(marker);

        Assert.Equal((Critical, Critical, true, false, "hemoglobin"),
            (reading.Interpretation, reading.ComputedInterpretation, reading.IsAboveMaxRange, reading.IsBelowMinRange, reading.CriticalLimitAnalyte));
        Assert.Empty(reading.Flags);
    }

    [Fact]
    public void Read_SeedSodiumWithUnknownSlug_IsFoundByNameAndNormal()
    {
        var marker = TestMarkers.Number("unknown", 136, "mmol/L", 134, 144, Normal, "Sodium");

        var reading = Reader.Read(marker);

        Assert.Equal((Normal, Normal, "sodium"), (reading.Interpretation, reading.ComputedInterpretation, reading.CriticalLimitAnalyte));
        Assert.Empty(reading.Flags);
    }

    [Fact]
    public void Read_SeveralFlags_AreInEnumOrder()
    {
        // Potassium in mg/dL (no catalog check) and a bound that may be above the range max.
        var reading = Reader.Read(TestMarkers.Text("potassium", ">15", "mg/dL", 14, 20, Normal));

        Assert.Equal([NotComparable, Inconclusive], reading.Flags);
        Assert.Equal(Normal, reading.Interpretation);
    }

    public static TheoryData<string, Marker> Unreadable() => new()
    {
        { "no value", new Marker { Slug = "potassium", Unit = "mmol/L" } },
        { "NaN", TestMarkers.Number("potassium", double.NaN, "mmol/L") },
        { "text infinity", TestMarkers.Text("potassium", "Infinity", "mmol/L") },
        { "min NaN", TestMarkers.Number("potassium", 4, "mmol/L", double.NaN, 5.1) },
        { "min above max", TestMarkers.Number("potassium", 4, "mmol/L", 5.1, 3.5) },
    };

    [Theory]
    [MemberData(nameof(Unreadable))]
    public void Read_InvalidMarker_Throws(string @case, Marker marker)
    {
        Assert.False(string.IsNullOrEmpty(@case));
        Assert.Throws<ArgumentException>(() => Reader.Read(marker));
    }

    // (readings, overall)
    public static TheoryData<Interpretation[], Interpretation> Overalls() => new()
    {
        { [], Unspecified },
        { [Unspecified], Unspecified },
        { [Normal, Unspecified], Normal },
        { [Normal, Abnormal, Normal], Abnormal },
        { [Unspecified, Critical, Normal], Critical },
        { [Critical, Abnormal], Critical },
        { [Abnormal, Unspecified], Abnormal },
    };

    [Theory]
    [MemberData(nameof(Overalls))]
    public void Overall_IsTheMostSevere(Interpretation[] readings, Interpretation overall) =>
        Assert.Equal(overall, MarkerReader.Overall(readings));
}
