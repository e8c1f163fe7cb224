using LabMesh.Contracts.Results.V1;
using LabMesh.ResultsInterpretation.Domain;
using LabMesh.Core.Errors;

namespace LabMesh.ResultsInterpretation.Tests.Domain;

public class MarkerValidationTests
{
    private static Marker Valid() => TestMarkers.Number("potassium", 4.1, "mmol/L", 3.5, 5.1, name: "Potassium");

    private static List<FieldViolation> Validate(params Marker[] markers)
    {
        var violations = new List<FieldViolation>();
        MarkerValidation.Validate(markers, "results", violations);
        return violations;
    }

    // (case, change to a valid marker, the one field expected to be refused)
    public static TheoryData<string, Action<Marker>, string> OneProblem() => new()
    {
        { "numeric NaN", m => m.NumericValue = double.NaN, "results[0].numeric_value" },
        { "numeric +infinity", m => m.NumericValue = double.PositiveInfinity, "results[0].numeric_value" },
        { "numeric -infinity", m => m.NumericValue = double.NegativeInfinity, "results[0].numeric_value" },
        { "text NaN", m => m.TextValue = "NaN", "results[0].text_value" },
        { "text Infinity", m => m.TextValue = "Infinity", "results[0].text_value" },
        { "text -inf", m => m.TextValue = "-inf", "results[0].text_value" },
        { "text bound on infinity", m => m.TextValue = "<inf", "results[0].text_value" },
        { "text empty", m => m.TextValue = "", "results[0].text_value" },
        { "text blank", m => m.TextValue = "  ", "results[0].text_value" },
        { "text 65 characters", m => m.TextValue = new string('p', 65), "results[0].text_value" },
        { "no value", m => m.ClearValue(), "results[0].value" },
        { "min above max", m => { m.MinRangeValue = 5.2; m.MaxRangeValue = 5.1; }, "results[0].min_range_value" },
        { "min NaN", m => m.MinRangeValue = double.NaN, "results[0].min_range_value" },
        { "min -infinity", m => m.MinRangeValue = double.NegativeInfinity, "results[0].min_range_value" },
        { "max +infinity", m => m.MaxRangeValue = double.PositiveInfinity, "results[0].max_range_value" },
        { "max NaN", m => m.MaxRangeValue = double.NaN, "results[0].max_range_value" },
        { "name empty", m => m.Name = "", "results[0].name" },
        { "name blank", m => m.Name = "   ", "results[0].name" },
        { "name 201 characters", m => m.Name = new string('n', 201), "results[0].name" },
        { "slug empty", m => m.Slug = "", "results[0].slug" },
        { "slug upper-case", m => m.Slug = "Potassium", "results[0].slug" },
        { "slug with a hyphen", m => m.Slug = "potassium-serum", "results[0].slug" },
        { "slug with a space", m => m.Slug = "potassium serum", "results[0].slug" },
        { "slug 65 characters", m => m.Slug = new string('s', 65), "results[0].slug" },
        { "unit 33 characters", m => m.Unit = new string('u', 33), "results[0].unit" },
        { "notes 2001 characters", m => m.Notes = new string('x', 2001), "results[0].notes" },
        { "service request id 65 characters", m => m.ServiceRequestId = new string('i', 65), "results[0].service_request_id" },
        { "interpretation out of the enum", m => m.Interpretation = (Interpretation)9, "results[0].interpretation" },
    };

    [Theory]
    [MemberData(nameof(OneProblem))]
    public void Validate_OneBadField_IsReportedAtItsPath(string @case, Action<Marker> change, string field)
    {
        var marker = Valid();
        change(marker);

        var violations = Validate(marker);

        Assert.True(violations.Count == 1, $"{@case}: {string.Join("; ", violations)}");
        Assert.Equal(field, violations[0].Field);
        Assert.False(string.IsNullOrWhiteSpace(violations[0].Description));
    }

    // (case, change to a valid marker): at the limits, still valid.
    public static TheoryData<string, Action<Marker>> AtTheLimits() => new()
    {
        { "name 200 characters", m => m.Name = new string('n', 200) },
        { "slug 64 characters", m => m.Slug = new string('s', 64) },
        { "slug with digits and underscores", m => m.Slug = "vitamin_b12_2" },
        { "slug unknown", m => m.Slug = "unknown" },
        { "unit 32 characters", m => m.Unit = new string('u', 32) },
        { "unit empty", m => m.Unit = "" },
        { "text 64 characters", m => m.TextValue = new string('p', 64) },
        { "text bound", m => m.TextValue = "<0.5" },
        { "text qualitative", m => m.TextValue = "positive" },
        { "notes 2000 characters", m => m.Notes = new string('x', 2000) },
        { "service request id 64 characters", m => m.ServiceRequestId = new string('i', 64) },
        { "min equal to max", m => { m.MinRangeValue = 5; m.MaxRangeValue = 5; } },
        { "no range", m => { m.ClearMinRangeValue(); m.ClearMaxRangeValue(); } },
        { "min only", m => m.ClearMaxRangeValue() },
        { "negative value", m => m.NumericValue = -4 },
        { "lab interpretation critical", m => m.Interpretation = Interpretation.Critical },
    };

    [Theory]
    [MemberData(nameof(AtTheLimits))]
    public void Validate_AtTheLimits_IsValid(string @case, Action<Marker> change)
    {
        var marker = Valid();
        change(marker);

        var violations = Validate(marker);

        Assert.True(violations.Count == 0, $"{@case}: {string.Join("; ", violations)}");
    }

    [Fact]
    public void Validate_NoMarkers_IsRefused()
    {
        var violations = Validate();

        var violation = Assert.Single(violations);
        Assert.Equal("results", violation.Field);
    }

    [Fact]
    public void Validate_501Markers_IsRefused()
    {
        var markers = Enumerable.Range(0, 501).Select(i => TestMarkers.Number($"m{i}", 1, "U/L")).ToArray();

        var violations = Validate(markers);

        var violation = Assert.Single(violations);
        Assert.Equal("results", violation.Field);
    }

    [Fact]
    public void Validate_500Markers_IsValid()
    {
        var markers = Enumerable.Range(0, 500).Select(i => TestMarkers.Number($"m{i}", 1, "U/L")).ToArray();

        Assert.Empty(Validate(markers));
    }

    [Fact]
    public void Validate_DuplicateSlug_IsReportedOnEachLaterMarker()
    {
        var violations = Validate(
            TestMarkers.Number("potassium", 4.1, "mmol/L"),
            TestMarkers.Number("sodium", 140, "mmol/L"),
            TestMarkers.Number("potassium", 4.2, "mmol/L"),
            TestMarkers.Number("potassium", 4.3, "mmol/L"));

        Assert.Equal(["results[2].slug", "results[3].slug"], violations.Select(v => v.Field));
        Assert.Contains("results[0]", violations[0].Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_UnknownSlugTwice_IsRefused()
    {
        var violations = Validate(
            TestMarkers.Number("unknown", 136, "mmol/L", name: "Sodium"),
            TestMarkers.Number("unknown", 4.1, "mmol/L", name: "Potassium"));

        Assert.Equal(["results[1].slug"], violations.Select(v => v.Field));
    }

    [Fact]
    public void Validate_EveryProblem_IsReported()
    {
        var first = Valid();
        first.Name = "";
        first.NumericValue = double.NaN;
        first.MinRangeValue = 9;
        first.MaxRangeValue = 1;
        var second = TestMarkers.Number("sodium", 140, "mmol/L");
        var third = Valid();
        third.Slug = "Bad Slug";
        third.ClearValue();
        third.Notes = new string('x', 2001);

        var violations = Validate(first, second, third);

        Assert.Equal(
            [
                "results[0].name", "results[0].numeric_value", "results[0].min_range_value",
                "results[2].slug", "results[2].value", "results[2].notes",
            ],
            violations.Select(v => v.Field));
    }

    [Fact]
    public void Validate_FieldName_PrefixesEveryPath()
    {
        var marker = Valid();
        marker.Slug = "";
        var violations = new List<FieldViolation>();

        MarkerValidation.Validate([marker], "markers", violations);

        Assert.Equal("markers[0].slug", Assert.Single(violations).Field);
    }

    [Fact]
    public void Validate_AppendsToExistingViolations()
    {
        var violations = new List<FieldViolation> { new("request_id", "is required.") };

        MarkerValidation.Validate([], "results", violations);

        Assert.Equal(["request_id", "results"], violations.Select(v => v.Field));
    }
}
