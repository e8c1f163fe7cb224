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
            $"{string.Join(", ", e.CriticalResult.CriticalAnalytes)} {e.CriticalResult.Interpretation} ({e.CriticalResult.Status} report v{e.CriticalResult.ReportVersion}{(e.CriticalResult.Tier.Length == 0 ? "" : ", " + e.CriticalResult.Tier)})",
        Event.PayloadOneofCase.CriticalResultAcknowledged =>
            $"by {e.CriticalResultAcknowledged.AcknowledgedBy} via {e.CriticalResultAcknowledged.Channel}",
        Event.PayloadOneofCase.CriticalResultEscalated =>
            $"escalation {e.CriticalResultEscalated.Escalation}{(e.CriticalResultEscalated.EscalatedTo.Length == 0 ? "" : " to " + e.CriticalResultEscalated.EscalatedTo)}" +
            $"{(e.CriticalResultEscalated.DeclinedBy.Length == 0 ? "" : " (declined by " + e.CriticalResultEscalated.DeclinedBy + ")")}: {string.Join(", ", e.CriticalResultEscalated.CriticalAnalytes)}",
        Event.PayloadOneofCase.UnsolicitedResult =>
            $"{string.Join(", ", e.UnsolicitedResult.Analytes)} answer no ordered test ({e.UnsolicitedResult.Status} report v{e.UnsolicitedResult.ReportVersion})",
        Event.PayloadOneofCase.WebhookTest => $"endpoint {e.WebhookTest.EndpointId}",
        _ => "",
    };

    private static string Or(string value, string fallback) => value.Length == 0 ? fallback : value;
}
