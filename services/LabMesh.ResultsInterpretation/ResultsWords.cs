using LabMesh.Contracts.Results.V1;

namespace LabMesh.ResultsInterpretation;

/// <summary>Seed 004's words for interpretations and report statuses (seed 003's lifecycle words are <c>LifecycleWords</c>).</summary>
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
}
