using LabMesh.Contracts.Requisition.V1;

namespace LabMesh.Core.Vocabulary;

/// <summary>Seed 003's words for the lifecycle view, as events, webhooks and results statuses carry them.</summary>
public static class LifecycleWords
{
    /// <summary>"purchased", "partial_results", ...; "" for UNSPECIFIED.</summary>
    public static string Word(LifecycleStatus status) => EnumWords.Word(status);
}
