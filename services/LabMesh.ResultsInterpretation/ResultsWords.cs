using LabMesh.Contracts.Results.V1;
using LabMesh.Core.Vocabulary;

namespace LabMesh.ResultsInterpretation;

/// <summary>Seed 004's words for interpretations and report statuses (seed 003's lifecycle words are <c>LifecycleWords</c>).</summary>
public static class ResultsWords
{
    /// <summary>"normal", "abnormal", "critical", or "" when not read.</summary>
    public static string Interpretation(Interpretation interpretation) => EnumWords.Word(interpretation);

    /// <summary>"partial" or "final"; "" when not set.</summary>
    public static string Status(ReportStatus status) => EnumWords.Word(status);
}
