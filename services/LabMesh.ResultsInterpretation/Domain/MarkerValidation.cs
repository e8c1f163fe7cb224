using LabMesh.Contracts.Results.V1;
using LabMesh.Core.Errors;

namespace LabMesh.ResultsInterpretation.Domain;

/// <summary>
/// What a report's markers must look like before they are read or stored. Every problem is
/// reported, each at its field path (<c>results[3].numeric_value</c>), so a caller fixes them in one go.
/// </summary>
public static class MarkerValidation
{
    public const int MinMarkers = 1;
    public const int MaxMarkers = 500;
    public const int MaxNameLength = 200;
    public const int MaxSlugLength = 64;
    public const int MaxUnitLength = 32;
    public const int MaxTextValueLength = 64;
    public const int MaxNotesLength = 2000;
    public const int MaxServiceRequestIdLength = 64;

    public const string SlugRule = "is required: 1 to 64 of a-z, 0-9, '_', unique within the report.";

    /// <summary>
    /// Appends to <paramref name="violations"/> every problem of <paramref name="markers"/>, the
    /// request field <paramref name="field"/> (e.g. <c>results</c>).
    /// </summary>
    public static void Validate(IReadOnlyList<Marker> markers, string field, List<FieldViolation> violations)
    {
        if (markers.Count is < MinMarkers or > MaxMarkers)
        {
            violations.Add(new(field, $"must hold {MinMarkers} to {MaxMarkers} markers (it holds {markers.Count})."));
        }

        var firstBySlug = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < markers.Count; i++)
        {
            var marker = markers[i];
            var at = $"{field}[{i}]";

            if (string.IsNullOrWhiteSpace(marker.Name) || marker.Name.Length > MaxNameLength)
            {
                violations.Add(new($"{at}.name", $"is required: 1 to {MaxNameLength} characters."));
            }

            if (!IsSlug(marker.Slug))
            {
                violations.Add(new($"{at}.slug", SlugRule));
            }
            else if (firstBySlug.TryGetValue(marker.Slug, out var first))
            {
                violations.Add(new($"{at}.slug", $"'{marker.Slug}' is already the slug of {field}[{first}]; slugs are unique within a report."));
            }
            else
            {
                firstBySlug[marker.Slug] = i;
            }

            if (marker.Unit.Length > MaxUnitLength)
            {
                violations.Add(new($"{at}.unit", $"must be at most {MaxUnitLength} characters."));
            }

            ValidateValue(marker, at, violations);

            var minFinite = !marker.HasMinRangeValue || double.IsFinite(marker.MinRangeValue);
            var maxFinite = !marker.HasMaxRangeValue || double.IsFinite(marker.MaxRangeValue);
            if (!minFinite)
            {
                violations.Add(new($"{at}.min_range_value", "must be a finite number when set."));
            }
            if (!maxFinite)
            {
                violations.Add(new($"{at}.max_range_value", "must be a finite number when set."));
            }
            if (minFinite && maxFinite && marker.HasMinRangeValue && marker.HasMaxRangeValue
                && marker.MinRangeValue > marker.MaxRangeValue)
            {
                violations.Add(new($"{at}.min_range_value", "must not be above max_range_value."));
            }

            if (!Enum.IsDefined(marker.Interpretation))
            {
                violations.Add(new($"{at}.interpretation", "must be one of the Interpretation values."));
            }

            if (marker.Notes.Length > MaxNotesLength)
            {
                violations.Add(new($"{at}.notes", $"must be at most {MaxNotesLength} characters."));
            }

            if (marker.ServiceRequestId.Length > MaxServiceRequestIdLength)
            {
                violations.Add(new($"{at}.service_request_id", $"must be at most {MaxServiceRequestIdLength} characters."));
            }
        }
    }

    /// <summary>A slug: 1 to 64 of <c>a-z</c>, <c>0-9</c>, <c>_</c>.</summary>
    public static bool IsSlug(string slug) =>
        slug.Length is > 0 and <= MaxSlugLength && slug.All(c => c is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_');

    private static void ValidateValue(Marker marker, string at, List<FieldViolation> violations)
    {
        switch (marker.ValueCase)
        {
            case Marker.ValueOneofCase.None:
                violations.Add(new($"{at}.value", "is required: set numeric_value or text_value."));
                break;
            case Marker.ValueOneofCase.NumericValue when !double.IsFinite(marker.NumericValue):
                violations.Add(new($"{at}.numeric_value", "must be a finite number (not NaN or infinite)."));
                break;
            case Marker.ValueOneofCase.TextValue:
                var text = marker.TextValue;
                if (string.IsNullOrWhiteSpace(text) || text.Length > MaxTextValueLength)
                {
                    violations.Add(new($"{at}.text_value", $"must be 1 to {MaxTextValueLength} characters."));
                }
                else if (MarkerValue.Parse(text).Kind == MarkerValueKind.NotFinite)
                {
                    violations.Add(new($"{at}.text_value", "must not be NaN or infinite."));
                }
                break;
        }
    }
}
