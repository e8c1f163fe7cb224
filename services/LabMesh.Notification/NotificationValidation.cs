using LabMesh.Contracts.Notification.V1;
using LabMesh.Notification.Webhooks;
using LabMesh.Core.Errors;
using LabMesh.Security.Identity;

namespace LabMesh.Notification;

/// <summary>The request checks of NotificationService, each a field violation naming its field.</summary>
public static class NotificationValidation
{
    public const int MaxDescriptionLength = 500;

    /// <summary>The caller's team's events, narrowed by the filter; another team is PERMISSION_DENIED.</summary>
    public static EventSelection Selection(EventFilter? filter, Caller caller, string field)
    {
        filter ??= new EventFilter();
        var violations = new List<FieldViolation>();
        if (filter.TeamId.Length > 0 && filter.TeamId != caller.TeamId)
        {
            throw new Grpc.Core.RpcException(new Grpc.Core.Status(
                Grpc.Core.StatusCode.PermissionDenied, $"{field}.team_id: a caller follows its own team's events only."));
        }

        var types = EventTypes(filter.Types_, field + ".types", violations);
        if (filter.RequisitionId.Length > 128)
        {
            violations.Add(new FieldViolation(field + ".requisition_id", "is longer than 128 characters."));
        }

        ThrowIfAny(violations);
        return new EventSelection(caller.TeamId, new HashSet<string>(types, StringComparer.Ordinal), filter.RequisitionId.Length > 0 ? filter.RequisitionId : null);
    }

    /// <summary>Known, distinct event types (the ones published on the bus).</summary>
    public static IReadOnlyList<string> EventTypes(IEnumerable<string> types, string field, List<FieldViolation> violations)
    {
        var list = types.ToList();
        for (var i = 0; i < list.Count; i++)
        {
            if (!Messaging.Events.EventTypes.Published.Contains(list[i], StringComparer.Ordinal))
            {
                // The unknown value is not repeated: it may be anything a caller typed, and error messages end up in logs.
                violations.Add(new FieldViolation($"{field}[{i}]", $"is not an event type; known: {string.Join(", ", Messaging.Events.EventTypes.Published)}."));
            }
            else if (list.IndexOf(list[i]) != i)
            {
                violations.Add(new FieldViolation($"{field}[{i}]", $"'{list[i]}' is listed twice."));
            }
        }

        return list;
    }

    public static string Url(string url, WebhookTargetPolicy targets, string field, List<FieldViolation> violations)
    {
        if (!targets.TryValidateUrl(url, out var uri, out var error))
        {
            violations.Add(new FieldViolation(field, error));
            return "";
        }

        return uri.AbsoluteUri;
    }

    public static void Description(string description, string field, List<FieldViolation> violations)
    {
        if (description.Length > MaxDescriptionLength)
        {
            violations.Add(new FieldViolation(field, $"is longer than {MaxDescriptionLength} characters."));
        }
    }

    public static void ThrowIfAny(List<FieldViolation> violations)
    {
        if (violations.Count > 0)
        {
            throw new InvalidArgumentException(violations);
        }
    }
}
