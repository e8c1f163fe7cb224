using Google.Protobuf.WellKnownTypes;
using LabMesh.Core.Errors;

namespace LabMesh.Core.Validation;

/// <summary>
/// A request's <c>Duration</c> and <c>Timestamp</c> fields as .NET values. The wire allows values
/// Google.Protobuf cannot convert (nanos out of range, a sign mismatch, seconds past year 9999), and its
/// conversion throws InvalidOperationException for them: here that is the caller's INVALID_ARGUMENT.
/// </summary>
public static class ProtoTime
{
    /// <summary>The duration in <paramref name="field"/>, or null when unset.</summary>
    public static TimeSpan? ToTimeSpan(Duration? value, string field)
    {
        if (value is null)
        {
            return null;
        }

        try
        {
            return value.ToTimeSpan();
        }
        catch (InvalidOperationException)
        {
            throw new InvalidArgumentException(field, "is not a valid duration (nanos must be within ±999,999,999 and share the sign of seconds).");
        }
    }

    /// <summary>The instant in <paramref name="field"/>, or null when unset.</summary>
    public static DateTimeOffset? ToDateTimeOffset(Timestamp? value, string field)
    {
        if (value is null)
        {
            return null;
        }

        try
        {
            return value.ToDateTimeOffset();
        }
        catch (InvalidOperationException)
        {
            throw new InvalidArgumentException(field, "is not a valid timestamp (years 0001 to 9999, nanos 0 to 999,999,999).");
        }
    }
}
