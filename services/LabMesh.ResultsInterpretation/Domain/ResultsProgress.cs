using LabMesh.Contracts.Requisition.V1;
using LabMesh.Core.Errors;
using LabMesh.Core.Vocabulary;

namespace LabMesh.ResultsInterpretation.Domain;

/// <summary>
/// Where a requisition's results stand: the latest results milestone (<see cref="Stage"/>, numbered
/// <see cref="Sequence"/>) and how far the Requisition service has heard of it. Pure rules: no I/O; the store
/// reads and writes it, in the transaction of the report that moves it.
/// </summary>
/// <remarks>
/// <code>
/// what happened                   stage                   all received      lab_order.updated status
/// report submitted, and now every interpretation_ready    true              all_results_received
///   active service request has a
///   final report
/// report submitted, otherwise     partial_results         false             results_received
/// final report amended            results_amended         unchanged         results_amended
/// interpretation shared           interpretation_shared   true (required)   (no event)
/// </code>
/// Every move numbers a new milestone (<see cref="Sequence"/> + 1), which the Requisition service is told of in
/// order; sharing what is shared already is no move. Sharing needs every result (FAILED_PRECONDITION otherwise).
/// </remarks>
public sealed record ResultsProgress(
    string RequisitionId,
    string TeamId,
    string PatientId,
    LifecycleStatus Stage,
    long Sequence,
    long SyncedSequence,
    bool AllReceived,
    DateTimeOffset? SharedTime)
{
    /// <summary>
    /// A report was submitted. All results are received when the requisition has an active (not revoked) service
    /// request and each one has a final report (<paramref name="finalServiceRequestIds"/>, this report's included).
    /// </summary>
    public ResultsProgress Submitted(IReadOnlyCollection<string> activeServiceRequestIds, IReadOnlySet<string> finalServiceRequestIds)
    {
        ArgumentNullException.ThrowIfNull(activeServiceRequestIds);
        ArgumentNullException.ThrowIfNull(finalServiceRequestIds);
        var allReceived = activeServiceRequestIds.Count > 0 && activeServiceRequestIds.All(finalServiceRequestIds.Contains);
        return Advance(allReceived ? LifecycleStatus.InterpretationReady : LifecycleStatus.PartialResults, allReceived);
    }

    /// <summary>A final report was amended: results_amended; whether all results are in does not change.</summary>
    public ResultsProgress Amended() => Advance(LifecycleStatus.ResultsAmended, AllReceived);

    /// <summary>
    /// The clinician shares the interpretation at <paramref name="now"/>: interpretation_shared. Sharing what is
    /// shared already changes nothing (<c>Changed</c> false, the progress as it is).
    /// </summary>
    /// <param name="progress">The requisition's progress; null when it has no report yet.</param>
    /// <param name="now">When it is shared.</param>
    /// <exception cref="IllegalTransitionException">not every result is in (or none is).</exception>
    public static (ResultsProgress Progress, bool Changed) Share(ResultsProgress? progress, DateTimeOffset now)
    {
        if (progress is null || !progress.AllReceived)
        {
            throw new IllegalTransitionException("results", progress is null ? "no_results" : LifecycleWords.Word(progress.Stage),
                "interpretation_shared", ["SubmitResults (a final report for every ordered test)"]);
        }

        return progress.Stage == LifecycleStatus.InterpretationShared
            ? (progress, false)
            : (progress.Advance(LifecycleStatus.InterpretationShared, true) with { SharedTime = now }, true);
    }

    /// <summary>
    /// The <c>lab_order.updated</c> status the milestone publishes: <c>all_results_received</c>,
    /// <c>results_received</c> or <c>results_amended</c>.
    /// </summary>
    /// <exception cref="InvalidOperationException">the stage publishes no event (interpretation_shared).</exception>
    public string LabOrderStatus => Stage switch
    {
        LifecycleStatus.InterpretationReady => "all_results_received",
        LifecycleStatus.PartialResults => "results_received",
        LifecycleStatus.ResultsAmended => "results_amended",
        _ => throw new InvalidOperationException($"The results stage {LifecycleWords.Word(Stage)} publishes no lab_order.updated."),
    };

    private ResultsProgress Advance(LifecycleStatus stage, bool allReceived) =>
        this with { Stage = stage, Sequence = Sequence + 1, AllReceived = allReceived };
}
