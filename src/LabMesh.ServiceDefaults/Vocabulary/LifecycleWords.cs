using LabMesh.Contracts.Requisition.V1;

namespace LabMesh.ServiceDefaults.Vocabulary;

/// <summary>Seed 003's words for the lifecycle view, as events, webhooks and results statuses carry them.</summary>
public static class LifecycleWords
{
    /// <summary>"purchased", "partial_results", ...; "" for UNSPECIFIED.</summary>
    public static string Word(LifecycleStatus status) => status switch
    {
        LifecycleStatus.NotPurchased => "not_purchased",
        LifecycleStatus.Purchased => "purchased",
        LifecycleStatus.ScheduleAppointment => "schedule_appointment",
        LifecycleStatus.UpcomingAppointment => "upcoming_appointment",
        LifecycleStatus.Processing => "processing",
        LifecycleStatus.PartialResults => "partial_results",
        LifecycleStatus.ResultsReady => "results_ready",
        LifecycleStatus.ResultsAmended => "results_amended",
        LifecycleStatus.InterpretationReady => "interpretation_ready",
        LifecycleStatus.InterpretationShared => "interpretation_shared",
        _ => "",
    };
}
