using LabMesh.Contracts.Common.V1;

namespace LabMesh.Cli.Output;

/// <summary>What an event says, in a few words. Events carry no result values, so neither does this.</summary>
internal static class EventText
{
    public static string Summary(Event e) => e.PayloadCase switch
    {
        Event.PayloadOneofCase.OrderPlaced =>
            $"{e.OrderPlaced.Modality}: {string.Join(", ", e.OrderPlaced.LineItems.Select(l => l.Code))}",
        Event.PayloadOneofCase.OrderStatusChanged =>
            $"{e.OrderStatusChanged.Status} (lifecycle {e.OrderStatusChanged.LifecycleStatus})",
        Event.PayloadOneofCase.ServiceRequestStatusChanged =>
            $"{e.ServiceRequestStatusChanged.Code}: {e.ServiceRequestStatusChanged.Status} {Or(e.ServiceRequestStatusChanged.TaskBusinessStatus, "")}".TrimEnd(),
        Event.PayloadOneofCase.LabOrderUpdated =>
            $"{e.LabOrderUpdated.Status} (report v{e.LabOrderUpdated.ReportVersion}, {Or(e.LabOrderUpdated.Interpretation, "not read")})",
        Event.PayloadOneofCase.CriticalResult =>
            $"{string.Join(", ", e.CriticalResult.CriticalAnalytes)} {e.CriticalResult.Interpretation} ({e.CriticalResult.Status} report v{e.CriticalResult.ReportVersion})",
        Event.PayloadOneofCase.CriticalResultAcknowledged =>
            $"by {e.CriticalResultAcknowledged.AcknowledgedBy} via {e.CriticalResultAcknowledged.Channel}",
        Event.PayloadOneofCase.CriticalResultEscalated =>
            $"escalation {e.CriticalResultEscalated.Escalation}: {string.Join(", ", e.CriticalResultEscalated.CriticalAnalytes)}",
        Event.PayloadOneofCase.WebhookTest => $"endpoint {e.WebhookTest.EndpointId}",
        _ => "",
    };

    private static string Or(string value, string fallback) => value.Length == 0 ? fallback : value;
}
