using LabMesh.Contracts.Notification.V1;
using LabMesh.Notification.Webhooks;

namespace LabMesh.Notification;

/// <summary>A webhook endpoint as stored, secrets included (never returned by a read RPC).</summary>
public sealed record EndpointRecord(
    string Id,
    string TeamId,
    string Url,
    string Description,
    IReadOnlyList<string> EventTypes,
    bool Escalation,
    bool Enabled,
    string DisabledReason,
    string Secret,
    string? PreviousSecret,
    DateTimeOffset? PreviousSecretExpiresAt,
    long Version,
    DateTimeOffset CreatedAt,
    DateTimeOffset UpdatedAt)
{
    public string Etag => "\"" + Version.ToString(System.Globalization.CultureInfo.InvariantCulture) + "\"";

    /// <summary>Whether an event of <paramref name="eventType"/> is sent to this endpoint.</summary>
    public bool Accepts(string eventType) =>
        EventTypes.Count == 0 || EventTypes.Contains(eventType, StringComparer.Ordinal)
        || (Escalation && eventType == Messaging.Events.EventTypes.CriticalResultEscalated);

    /// <summary>The secrets an attempt at <paramref name="now"/> is signed with: the current one, and the previous one during its overlap.</summary>
    public IReadOnlyList<string> SigningSecrets(DateTimeOffset now) =>
        PreviousSecret is not null && PreviousSecretExpiresAt > now ? [Secret, PreviousSecret] : [Secret];
}

/// <summary>One event for one endpoint; its id is the <c>webhook-id</c> of every attempt.</summary>
public sealed record DeliveryRecord(
    string Id,
    string EndpointId,
    string TeamId,
    string EventId,
    string EventType,
    string? CriticalId,
    byte[] Body,
    DeliveryState State,
    int Attempts,
    DateTimeOffset CreatedAt,
    DateTimeOffset? NextAttemptAt,
    DateTimeOffset? DeliveredAt,
    DateTimeOffset? LastAttemptAt,
    int LastStatusCode,
    string LastError,
    string? Traceparent);

/// <summary>A delivery leased to this replica, with its endpoint as it was when the delivery was claimed.</summary>
public sealed record ClaimedDelivery(DeliveryRecord Delivery, EndpointRecord Endpoint);

/// <summary>One finished attempt of a delivery and what comes next, to be recorded.</summary>
public sealed record AttemptRecord(DeliveryRecord Delivery, WebhookDecision Decision, int StatusCode, string Error, DateTimeOffset AttemptedAt);

/// <summary>
/// What one write transaction of the delivery worker did: for each attempt given, whether it was recorded (false: its
/// lease was lost, another replica owns the delivery); and the deliveries it claimed next.
/// </summary>
public sealed record RecordedAndClaimed(bool[] Recorded, IReadOnlyList<ClaimedDelivery> Claimed);

/// <summary>A critical result waiting for (or having had) a person's acknowledgement.</summary>
public sealed record CriticalRecord(
    string Id,
    string TeamId,
    string RequisitionId,
    string ReportId,
    int ReportVersion,
    IReadOnlyList<string> CriticalAnalytes,
    DateTimeOffset OpenedAt,
    DateTimeOffset DueAt,
    int Escalations,
    DateTimeOffset? AcknowledgedAt,
    string? AcknowledgedBy,
    AcknowledgementChannel Channel,
    string? ReadBack,
    string Tier,
    string EscalatedTo,
    IReadOnlyList<string> DeclinedBy)
{
    public CriticalResultState State => AcknowledgedAt is not null
        ? CriticalResultState.Acknowledged
        : Escalations > 0 ? CriticalResultState.Escalated : CriticalResultState.Open;
}

/// <summary>One line of a critical result's audit trail.</summary>
public sealed record AuditRecord(string CriticalId, DateTimeOffset At, string Action, string Actor, string Channel, string Detail);

/// <summary>The audit actions of a critical result.</summary>
public static class AuditActions
{
    public const string Opened = "opened";
    public const string Notified = "notified";
    public const string Escalated = "escalated";
    public const string Declined = "declined";
    public const string Acknowledged = "acknowledged";
}

/// <summary>Where a critical result came from, for the store.</summary>
public static class CriticalSource
{
    /// <summary>The critical result an event concerns: the critical event itself, or the one an escalation or acknowledgement names.</summary>
    public static string? CriticalIdOf(LabMesh.Contracts.Common.V1.Event evt) => evt.Type switch
    {
        Messaging.Events.EventTypes.LabTestResultCritical => evt.Id,
        Messaging.Events.EventTypes.CriticalResultEscalated => evt.CriticalResultEscalated?.CriticalResultId,
        Messaging.Events.EventTypes.CriticalResultAcknowledged => evt.CriticalResultAcknowledged?.CriticalResultId,
        _ => null,
    };
}
