using LabMesh.Contracts.Results.V1;

namespace LabMesh.ResultsInterpretation.Tests.Domain;

/// <summary>Markers for the domain tests: a valid one by default, changed by named arguments.</summary>
internal static class TestMarkers
{
    public static Marker Number(
        string slug, double value, string unit, double? min = null, double? max = null,
        Interpretation lab = Interpretation.Unspecified, string? name = null)
    {
        var marker = Base(slug, unit, min, max, lab, name);
        marker.NumericValue = value;
        return marker;
    }

    public static Marker Text(
        string slug, string value, string unit, double? min = null, double? max = null,
        Interpretation lab = Interpretation.Unspecified, string? name = null)
    {
        var marker = Base(slug, unit, min, max, lab, name);
        marker.TextValue = value;
        return marker;
    }

    private static Marker Base(string slug, string unit, double? min, double? max, Interpretation lab, string? name)
    {
        var marker = new Marker { Name = name ?? slug, Slug = slug, Unit = unit, Interpretation = lab };
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
}
