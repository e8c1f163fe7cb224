using LabMesh.Contracts.Results.V1;
using LabMesh.ResultsInterpretation.Domain;

namespace LabMesh.ResultsInterpretation.Tests.Domain;

public class MarkerValueTests
{
    // (text, kind, number, operator)
    public static TheoryData<string, MarkerValueKind, double, BoundOperator> Texts() => new()
    {
        { "5.6", MarkerValueKind.Number, 5.6, BoundOperator.None },
        { " 7 ", MarkerValueKind.Number, 7, BoundOperator.None },
        { "-1.5e2", MarkerValueKind.Number, -150, BoundOperator.None },
        { "+0.25", MarkerValueKind.Number, 0.25, BoundOperator.None },
        { "<0.5", MarkerValueKind.Bound, 0.5, BoundOperator.LessThan },
        { "< 0.5", MarkerValueKind.Bound, 0.5, BoundOperator.LessThan },
        { "<=0.5", MarkerValueKind.Bound, 0.5, BoundOperator.LessThanOrEqual },
        { "<= 0.5", MarkerValueKind.Bound, 0.5, BoundOperator.LessThanOrEqual },
        { "≤0.5", MarkerValueKind.Bound, 0.5, BoundOperator.LessThanOrEqual },
        { "≤ 0.5", MarkerValueKind.Bound, 0.5, BoundOperator.LessThanOrEqual },
        { ">1000", MarkerValueKind.Bound, 1000, BoundOperator.GreaterThan },
        { " > 1000 ", MarkerValueKind.Bound, 1000, BoundOperator.GreaterThan },
        { ">=1000", MarkerValueKind.Bound, 1000, BoundOperator.GreaterThanOrEqual },
        { "≥1000", MarkerValueKind.Bound, 1000, BoundOperator.GreaterThanOrEqual },
        { "positive", MarkerValueKind.Text, 0, BoundOperator.None },
        { "NEGATIVE", MarkerValueKind.Text, 0, BoundOperator.None },
        { "1,000", MarkerValueKind.Text, 0, BoundOperator.None },
        { "5,6", MarkerValueKind.Text, 0, BoundOperator.None },
        { "<abc", MarkerValueKind.Text, 0, BoundOperator.None },
        { "5.6 mmol/L", MarkerValueKind.Text, 0, BoundOperator.None },
        { "0x1A", MarkerValueKind.Text, 0, BoundOperator.None },
        { "", MarkerValueKind.Text, 0, BoundOperator.None },
        { "NaN", MarkerValueKind.NotFinite, 0, BoundOperator.None },
        { "nan", MarkerValueKind.NotFinite, 0, BoundOperator.None },
        { "Infinity", MarkerValueKind.NotFinite, 0, BoundOperator.None },
        { "-Infinity", MarkerValueKind.NotFinite, 0, BoundOperator.None },
        { "inf", MarkerValueKind.NotFinite, 0, BoundOperator.None },
        { "-INF", MarkerValueKind.NotFinite, 0, BoundOperator.None },
        { "∞", MarkerValueKind.NotFinite, 0, BoundOperator.None },
        { "1e400", MarkerValueKind.NotFinite, 0, BoundOperator.None },
        { "<inf", MarkerValueKind.NotFinite, 0, BoundOperator.None },
        { "> NaN", MarkerValueKind.NotFinite, 0, BoundOperator.None },
    };

    [Theory]
    [MemberData(nameof(Texts))]
    public void Parse_Text_IsNumberBoundTextOrNotFinite(string text, MarkerValueKind kind, double number, BoundOperator op)
    {
        var value = MarkerValue.Parse(text);

        Assert.Equal(kind, value.Kind);
        Assert.Equal(number, value.Number);
        Assert.Equal(op, value.Operator);
    }

    // (numeric value, kind)
    public static TheoryData<double, MarkerValueKind> Doubles() => new()
    {
        { 4.2, MarkerValueKind.Number },
        { 0, MarkerValueKind.Number },
        { -3, MarkerValueKind.Number },
        { double.NaN, MarkerValueKind.NotFinite },
        { double.PositiveInfinity, MarkerValueKind.NotFinite },
        { double.NegativeInfinity, MarkerValueKind.NotFinite },
    };

    [Theory]
    [MemberData(nameof(Doubles))]
    public void Of_NumericValue_IsNumberOnlyWhenFinite(double numeric, MarkerValueKind kind) =>
        Assert.Equal(kind, MarkerValue.Of(new Marker { NumericValue = numeric }).Kind);

    [Fact]
    public void Of_NoValue_IsMissing()
    {
        var value = MarkerValue.Of(new Marker { Slug = "potassium" });

        Assert.Equal(MarkerValueKind.Missing, value.Kind);
        Assert.False(value.IsValid);
    }

    [Fact]
    public void Of_TextValue_IsParsed()
    {
        var value = MarkerValue.Of(new Marker { TextValue = "<2.0" });

        Assert.Equal(new MarkerValue(MarkerValueKind.Bound, 2.0, BoundOperator.LessThan, "<2.0"), value);
    }
}
