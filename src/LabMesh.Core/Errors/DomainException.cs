namespace LabMesh.Core.Errors;

/// <summary>
/// A caller's mistake found by the domain: the one server interceptor
/// (<see cref="DomainExceptionInterceptor"/>) turns each kind into its gRPC status with details.
/// Never thrown for a fault of LabMesh itself.
/// </summary>
public abstract class DomainException(string message) : Exception(message);

/// <summary>NOT_FOUND with <c>google.rpc.ResourceInfo</c>. Also for another team's resource, so existence does not leak.</summary>
/// <remarks>
/// The id the caller gave is repeated (in the message and as ResourceInfo's <c>resource_name</c>) only when it is a
/// well-formed id (<see cref="IsWellFormedId"/>); anything else may be free text, a patient's name even, and error
/// messages end up in client logs: it is described instead, and <c>resource_name</c> is empty.
/// </remarks>
public sealed class NotFoundException(string resourceType, string resourceName)
    : DomainException(IsWellFormedId(resourceName)
        ? $"{resourceType} '{resourceName}' was not found."
        : $"{resourceType} was not found: the id given ({resourceName.Length} characters) is not a well-formed id.")
{
    public string ResourceType { get; } = resourceType;

    public string ResourceName { get; } = IsWellFormedId(resourceName) ? resourceName : "";

    /// <summary>1 to 64 characters, each an ASCII letter or digit or one of <c>-_.:</c>: what LabMesh's ids are made of.</summary>
    public static bool IsWellFormedId(string id) =>
        id.Length is > 0 and <= 64 && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or ':');
}

/// <summary>One bad field: its path in the request (e.g. <c>tests[1].code</c>) and what is wrong.</summary>
public sealed record FieldViolation(string Field, string Description);

/// <summary>INVALID_ARGUMENT with <c>google.rpc.BadRequest</c> field violations.</summary>
public sealed class InvalidArgumentException(IReadOnlyList<FieldViolation> violations)
    : DomainException(violations.Count == 1
        ? $"Invalid {violations[0].Field}: {violations[0].Description}"
        : $"{violations.Count} invalid fields, first {violations[0].Field}: {violations[0].Description}")
{
    public InvalidArgumentException(string field, string description)
        : this([new FieldViolation(field, description)])
    {
    }

    public IReadOnlyList<FieldViolation> Violations { get; } = violations;
}

/// <summary>
/// FAILED_PRECONDITION with <c>google.rpc.PreconditionFailure</c>: a state machine refused a move.
/// <see cref="Allowed"/> lists every move that would have been accepted from <see cref="From"/>.
/// </summary>
public sealed class IllegalTransitionException(string subject, string from, string to, IReadOnlyList<string> allowed)
    : DomainException(allowed.Count == 0
        ? $"{subject} cannot move from {from} to {to}: {from} is terminal."
        : $"{subject} cannot move from {from} to {to}; allowed: {string.Join(", ", allowed)}.")
{
    public string Subject { get; } = subject;
    public string From { get; } = from;
    public string To { get; } = to;
    public IReadOnlyList<string> Allowed { get; } = allowed;
}

/// <summary>ABORTED: the caller's etag is not the current one; read again and retry.</summary>
public sealed class StaleEtagException(string resourceType, string resourceName)
    : DomainException($"{resourceType} '{resourceName}' changed since it was read (stale etag); read it again.")
{
    public string ResourceType { get; } = resourceType;
    public string ResourceName { get; } = resourceName;
}

/// <summary>ALREADY_EXISTS: an idempotency key was reused for a different request.</summary>
public sealed class AlreadyExistsException(string resourceType, string resourceName, string message)
    : DomainException(message)
{
    public string ResourceType { get; } = resourceType;
    public string ResourceName { get; } = resourceName;
}

/// <summary>
/// OUT_OF_RANGE for a position the caller gave that lies outside what the service still holds (a cursor
/// older than the events it keeps), with a field violation naming <paramref name="field"/> and
/// <c>google.rpc.ErrorInfo</c> (<paramref name="reason"/>).
/// </summary>
public sealed class OutOfRangeException(string field, string reason, string message) : DomainException(message)
{
    public string Field { get; } = field;
    public string Reason { get; } = reason;
}

/// <summary>
/// RESOURCE_EXHAUSTED with <c>google.rpc.ErrorInfo</c> (<paramref name="reason"/>, and in its metadata
/// what the caller needs to carry on, e.g. the last event a slow subscriber got).
/// </summary>
public sealed class ResourceExhaustedException(string reason, string message, IReadOnlyDictionary<string, string> metadata)
    : DomainException(message)
{
    public string Reason { get; } = reason;
    public IReadOnlyDictionary<string, string> Metadata { get; } = metadata;
}
