using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;

namespace LabMesh.ResultsInterpretation;

/// <summary>The seeds' words for the results vocabulary: seed 004's interpretations and report statuses, seed 003's lifecycle.</summary>
public static class ResultsWords
{
    /// <summary>"normal", "abnormal", "critical", or "" when not read.</summary>
    public static string Interpretation(Interpretation interpretation) => interpretation switch
    {
        Contracts.Results.V1.Interpretation.Normal => "normal",
        Contracts.Results.V1.Interpretation.Abnormal => "abnormal",
        Contracts.Results.V1.Interpretation.Critical => "critical",
        _ => "",
    };

    /// <summary>"partial" or "final".</summary>
    public static string Status(ReportStatus status) => status switch
    {
        ReportStatus.Partial => "partial",
        ReportStatus.Final => "final",
        _ => "",
    };

    /// <summary>Seed 003's lab-order status for a results milestone, e.g. "interpretation_ready"; "" for none.</summary>
    public static string Stage(LifecycleStatus stage) => stage switch
    {
        LifecycleStatus.PartialResults => "partial_results",
        LifecycleStatus.ResultsReady => "results_ready",
        LifecycleStatus.ResultsAmended => "results_amended",
        LifecycleStatus.InterpretationReady => "interpretation_ready",
        LifecycleStatus.InterpretationShared => "interpretation_shared",
        _ => "",
    };
}
