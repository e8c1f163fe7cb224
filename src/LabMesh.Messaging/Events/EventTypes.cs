namespace LabMesh.Messaging.Events;

/// <summary>The event types of DESIGN.md ("Notification service"), in the seeds' words.</summary>
public static class EventTypes
{
    public const string OrderPlaced = "order.placed";
    public const string OrderStatusChanged = "order.status_changed";
    public const string ServiceRequestStatusChanged = "service_request.status_changed";
    public const string LabOrderUpdated = "lab_order.updated";
    public const string LabTestResultCritical = "labtest.result.critical";
    public const string CriticalResultAcknowledged = "critical_result.acknowledged";
    public const string CriticalResultEscalated = "critical_result.escalated";

    /// <summary>A report holds results that answer no ordered test (seed 003: results need not align with tests).</summary>
    public const string LabTestResultUnsolicited = "labtest.result.unsolicited";

    /// <summary>A test delivery to one webhook endpoint; never published on the bus.</summary>
    public const string WebhookTest = "webhook.test";

    /// <summary>Every type published on the bus, for validating filters.</summary>
    public static IReadOnlyList<string> Published { get; } =
    [
        OrderPlaced, OrderStatusChanged, ServiceRequestStatusChanged, LabOrderUpdated,
        LabTestResultCritical, CriticalResultAcknowledged, CriticalResultEscalated, LabTestResultUnsolicited,
    ];

    /// <summary>Types also fanned out through pub/sub the moment they are published.</summary>
    public static bool IsCritical(string type) => type == LabTestResultCritical;
}
