using System.Diagnostics.Metrics;

namespace LabMesh.Core.Diagnostics;

/// <summary>
/// The workflow's figures an on-call engineer reads, on <see cref="LabMeshTelemetry.Meter"/>. Attribute values
/// come from small fixed sets (a modality, an interpretation, an outcome, an event type): never an id, a team,
/// a patient or a value. Recording costs next to nothing while nobody listens.
/// </summary>
public static class LabMeshMetrics
{
    /// <summary>Requisitions placed (ordered), by <c>labmesh.modality</c>.</summary>
    public static readonly Counter<long> RequisitionsPlaced = LabMeshTelemetry.Meter.CreateCounter<long>(
        "labmesh.requisitions.placed", "{requisition}", "Requisitions placed (ordered), by modality.");

    /// <summary>Results interpreted in submitted reports, by <c>labmesh.interpretation</c> (normal, abnormal, critical).</summary>
    public static readonly Counter<long> ResultsInterpreted = LabMeshTelemetry.Meter.CreateCounter<long>(
        "labmesh.results.interpreted", "{result}", "Results of submitted reports, by interpretation.");

    /// <summary>Critical results opened (waiting for a person's acknowledgement).</summary>
    public static readonly Counter<long> CriticalOpened = LabMeshTelemetry.Meter.CreateCounter<long>(
        "labmesh.critical_results.opened", "{critical_result}", "Critical results opened for acknowledgement.");

    /// <summary>Critical results acknowledged.</summary>
    public static readonly Counter<long> CriticalAcknowledged = LabMeshTelemetry.Meter.CreateCounter<long>(
        "labmesh.critical_results.acknowledged", "{critical_result}", "Critical results acknowledged by a person.");

    /// <summary>Critical results escalated for want of an acknowledgement in time.</summary>
    public static readonly Counter<long> CriticalEscalated = LabMeshTelemetry.Meter.CreateCounter<long>(
        "labmesh.critical_results.escalated", "{critical_result}", "Critical results escalated, unacknowledged in time.");

    /// <summary>From a critical result's opening to its acknowledgement.</summary>
    public static readonly Histogram<double> TimeToAcknowledge = LabMeshTelemetry.Meter.CreateHistogram(
        "labmesh.critical_results.time_to_acknowledge", "s", "From a critical result's opening to its acknowledgement.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [1, 5, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200] });

    /// <summary>Webhook delivery attempts, by <c>labmesh.webhook.outcome</c> (the decision: delivered, retry, failed, ...).</summary>
    public static readonly Counter<long> WebhookAttempts = LabMeshTelemetry.Meter.CreateCounter<long>(
        "labmesh.webhook.attempts", "{attempt}", "Webhook delivery attempts, by outcome.");
}
