using LabMesh.Core.Errors;

namespace LabMesh.Core.Validation;

/// <summary>
/// What a resource id in a request may look like, the same in every service: present (not blank) and at
/// most <see cref="MaxLength"/> characters. The ids LabMesh hands out are UUIDs (36 characters) or a short
/// prefix and a UUID, so a longer one can only be a mistake.
/// </summary>
public static class Ids
{
    public const int MaxLength = 64;

    public const string Required = "is required.";

    public static readonly string TooLong = $"must be at most {MaxLength} characters.";

    /// <summary>The id, or INVALID_ARGUMENT naming <paramref name="field"/>.</summary>
    public static string Require(string id, string field = "id")
    {
        var problem = Problem(id);
        return problem is null ? id : throw new InvalidArgumentException(field, problem);
    }

    /// <summary>Adds a field violation for a missing or overlong id, so a caller hears every problem at once.</summary>
    public static void Check(string id, string field, List<FieldViolation> violations)
    {
        ArgumentNullException.ThrowIfNull(violations);
        if (Problem(id) is { } problem)
        {
            violations.Add(new FieldViolation(field, problem));
        }
    }

    private static string? Problem(string id) =>
        string.IsNullOrWhiteSpace(id) ? Required
        : id.Length > MaxLength ? TooLong
        : null;
}

/// <summary>
/// The <c>request_id</c> of a create, the same in every service: the caller's key that makes a retry
/// answer the first call's result instead of creating twice.
/// </summary>
public static class RequestIds
{
    public const int MaxLength = 128;

    public static readonly string Rule = $"is required: 1 to {MaxLength} characters, the same on every retry of this request.";

    /// <summary>Adds a field violation for a missing or overlong request id.</summary>
    public static void Check(string requestId, List<FieldViolation> violations, string field = "request_id")
    {
        ArgumentNullException.ThrowIfNull(violations);
        if (string.IsNullOrWhiteSpace(requestId) || requestId.Length > MaxLength)
        {
            violations.Add(new FieldViolation(field, Rule));
        }
    }
}
