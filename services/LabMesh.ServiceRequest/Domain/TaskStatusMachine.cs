using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Core.Errors;
using LabMesh.Core.Vocabulary;

namespace LabMesh.ServiceRequest.Domain;

/// <summary>A service request's two statuses: FHIR <c>status</c> and the partner's <c>task_business_status</c>.</summary>
public readonly record struct TaskState(ServiceRequestStatus Status, TaskBusinessStatus BusinessStatus);

/// <summary>
/// Seed 000's <c>task_business_status</c> machine, with the FHIR status derived from it, and the
/// consistency table that maps order events (seed 004) onto service requests.
/// Pure rules: no I/O. Every illegal move throws; a repeat of the current value is a no-op that
/// returns the same state (callers detect it with <c>==</c>).
/// </summary>
/// <remarks>
/// <para><b>The partner's moves</b> (<see cref="UpdateBusinessStatus"/>), for an <c>active</c> request.
/// The happy path only moves forward and may skip steps; an issue status is reachable while it
/// can still happen; issue statuses are terminal.</para>
/// <code>
/// from \ to              CONFIRMED ATTENDED PARTIAL FULL | APPT_ISSUE RESULTS_ISSUE ORDER_ISSUE
/// (none)                     ✓        ✓        ✓     ✓   |     ✓           ✓            ✓
/// ORDER_CONFIRMED          no-op      ✓        ✓     ✓   |     ✓           ✓            ✓
/// APPOINTMENT_ATTENDED       ✗      no-op      ✓     ✓   |     ✗           ✓            ✓
/// PARTIAL_RESULTS_READY      ✗        ✗      no-op   ✓   |     ✗           ✓            ✗
/// FULL_RESULTS_READY (completed)      everything ✗, FULL_RESULTS_READY is a no-op
/// any issue status                    everything ✗, repeating it is a no-op
/// revoked request                     everything ✗, repeating the current value is a no-op
/// </code>
/// <list type="bullet">
/// <item>APPOINTMENT_ISSUE only before the sample is taken (not after APPOINTMENT_ATTENDED).</item>
/// <item>RESULTS_ISSUE until all results are in; from (none) or ORDER_CONFIRMED it implies the
/// skipped APPOINTMENT_ATTENDED, as any skip does.</item>
/// <item>ORDER_ISSUE ("will not be fulfilled") until results start arriving; once some results are
/// in, the remaining ones failing is RESULTS_ISSUE.</item>
/// <item>FULL_RESULTS_READY sets FHIR <c>completed</c>. A <c>completed</c> or <c>revoked</c> request
/// takes no business-status change. Target UNSPECIFIED (or an unknown number) is INVALID_ARGUMENT.</item>
/// <item>An illegal move is <see cref="IllegalTransitionException"/> with subject
/// <c>task_business_status</c>; <c>from</c> is the business status, or the FHIR status
/// (<c>revoked</c>, <c>completed</c>) when that is what forbids every move; <c>allowed</c> is
/// <see cref="AllowedNext"/> (moves only: the no-op repeat is not listed).</item>
/// </list>
/// <para><b>The owner's cancel</b> (<see cref="Revoke"/>): <c>active</c> → <c>revoked</c> whatever the
/// business status (issue statuses included, the business status is kept); <c>revoked</c> → no-op;
/// <c>completed</c> → illegal (subject <c>status</c>, nothing allowed).</para>
/// <para><b>Order events</b> (<see cref="ApplyOrderEvent"/>): see that method.</para>
/// </remarks>
public static class TaskStatusMachine
{
    private static readonly TaskBusinessStatus[] Everything =
    [
        TaskBusinessStatus.OrderConfirmed,
        TaskBusinessStatus.AppointmentAttended,
        TaskBusinessStatus.PartialResultsReady,
        TaskBusinessStatus.FullResultsReady,
        TaskBusinessStatus.AppointmentIssue,
        TaskBusinessStatus.ResultsIssue,
        TaskBusinessStatus.OrderIssue,
    ];

    private static readonly TaskBusinessStatus[] FromConfirmed =
    [
        TaskBusinessStatus.AppointmentAttended,
        TaskBusinessStatus.PartialResultsReady,
        TaskBusinessStatus.FullResultsReady,
        TaskBusinessStatus.AppointmentIssue,
        TaskBusinessStatus.ResultsIssue,
        TaskBusinessStatus.OrderIssue,
    ];

    private static readonly TaskBusinessStatus[] FromAttended =
    [
        TaskBusinessStatus.PartialResultsReady,
        TaskBusinessStatus.FullResultsReady,
        TaskBusinessStatus.ResultsIssue,
        TaskBusinessStatus.OrderIssue,
    ];

    private static readonly TaskBusinessStatus[] FromPartial =
    [
        TaskBusinessStatus.FullResultsReady,
        TaskBusinessStatus.ResultsIssue,
    ];

    /// <summary>The seed's word for a business status (the proto value name).</summary>
    public static string Word(TaskBusinessStatus status) => status switch
    {
        TaskBusinessStatus.Unspecified => "TASK_BUSINESS_STATUS_UNSPECIFIED",
        TaskBusinessStatus.OrderConfirmed => "ORDER_CONFIRMED",
        TaskBusinessStatus.AppointmentAttended => "APPOINTMENT_ATTENDED",
        TaskBusinessStatus.PartialResultsReady => "PARTIAL_RESULTS_READY",
        TaskBusinessStatus.FullResultsReady => "FULL_RESULTS_READY",
        TaskBusinessStatus.AppointmentIssue => "APPOINTMENT_ISSUE",
        TaskBusinessStatus.ResultsIssue => "RESULTS_ISSUE",
        TaskBusinessStatus.OrderIssue => "ORDER_ISSUE",
        _ => ((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>The FHIR word for a status: <c>active</c>, <c>completed</c>, <c>revoked</c>.</summary>
    public static string Word(ServiceRequestStatus status) => status switch
    {
        ServiceRequestStatus.Active => "active",
        ServiceRequestStatus.Completed => "completed",
        ServiceRequestStatus.Revoked => "revoked",
        ServiceRequestStatus.Unspecified => "SERVICE_REQUEST_STATUS_UNSPECIFIED",
        _ => ((int)status).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    /// <summary>True for the issue statuses, which are terminal.</summary>
    public static bool IsIssue(TaskBusinessStatus status) =>
        status is TaskBusinessStatus.AppointmentIssue or TaskBusinessStatus.ResultsIssue or TaskBusinessStatus.OrderIssue;

    /// <summary>
    /// Every business status the partner may move to from <paramref name="current"/> (in enum order);
    /// empty when the request is terminal. The current value (a no-op repeat) is not listed.
    /// </summary>
    public static IReadOnlyList<TaskBusinessStatus> AllowedNext(TaskState current)
    {
        if (current.Status != ServiceRequestStatus.Active)
        {
            // completed and revoked accept no business-status change; UNSPECIFIED is not a state a
            // stored service request can be in, so it allows nothing rather than everything.
            return [];
        }
        return current.BusinessStatus switch
        {
            TaskBusinessStatus.Unspecified => Everything,
            TaskBusinessStatus.OrderConfirmed => FromConfirmed,
            TaskBusinessStatus.AppointmentAttended => FromAttended,
            TaskBusinessStatus.PartialResultsReady => FromPartial,
            _ => [],
        };
    }

    /// <summary>
    /// The partner's PATCH of seed 000. Returns the new state, or <paramref name="current"/> itself
    /// when <paramref name="next"/> repeats the current value.
    /// </summary>
    /// <exception cref="InvalidArgumentException">next is UNSPECIFIED or not a known value (field <c>task_business_status</c>).</exception>
    /// <exception cref="IllegalTransitionException">the move is not allowed from the current state.</exception>
    public static TaskState UpdateBusinessStatus(TaskState current, TaskBusinessStatus next)
    {
        if (next == TaskBusinessStatus.Unspecified || !Enum.IsDefined(next))
        {
            throw new InvalidArgumentException(
                "task_business_status",
                $"must be one of {string.Join(", ", Everything.Select(Word))}.");
        }
        if (next == current.BusinessStatus)
        {
            return current;
        }
        var allowed = AllowedNext(current);
        if (!allowed.Contains(next))
        {
            var from = current.Status is ServiceRequestStatus.Revoked or ServiceRequestStatus.Completed
                ? Word(current.Status)
                : Word(current.BusinessStatus);
            throw new IllegalTransitionException("task_business_status", from, Word(next), [.. allowed.Select(Word)]);
        }
        return new TaskState(
            next == TaskBusinessStatus.FullResultsReady ? ServiceRequestStatus.Completed : current.Status,
            next);
    }

    /// <summary>
    /// The owner's cancel: <c>active</c> → <c>revoked</c> (the business status is kept for the record);
    /// <c>revoked</c> → the same state (no-op).
    /// </summary>
    /// <exception cref="IllegalTransitionException">the request is <c>completed</c> (subject <c>status</c>, nothing allowed).</exception>
    public static TaskState Revoke(TaskState current) => current.Status switch
    {
        ServiceRequestStatus.Revoked => current,
        ServiceRequestStatus.Active => current with { Status = ServiceRequestStatus.Revoked },
        _ => throw new IllegalTransitionException("status", Word(current.Status), Word(ServiceRequestStatus.Revoked), []),
    };

    /// <summary>
    /// Applies an order event (seed 004's namespaced status) to one service request: DESIGN.md's
    /// consistency table. Never moves backwards, never leaves a terminal state, never throws for a
    /// well-formed status: when the table's target is not reachable the state is returned unchanged.
    /// </summary>
    /// <remarks>
    /// <code>
    /// order event                                   service request (if reachable, else unchanged)
    /// received.*.requisition_created                ORDER_CONFIRMED
    /// received.*.(other)                            unchanged (created active, no business status)
    /// collecting_sample.*.appointment_cancelled     APPOINTMENT_ISSUE (only before the sample is taken)
    /// collecting_sample.*.draw_completed            APPOINTMENT_ATTENDED
    /// collecting_sample.*.transit_lab               APPOINTMENT_ATTENDED (the kit left the patient with the sample)
    /// collecting_sample.*.(other)                   unchanged (appointment_scheduled, kit shipping, ...)
    /// sample_with_lab.*.delivered_to_lab            APPOINTMENT_ATTENDED
    /// sample_with_lab.*.partial_results             APPOINTMENT_ATTENDED at least (the sample is at the lab:
    ///                                               needed for walk-in, which has no other such event);
    ///                                               PARTIAL_RESULTS_READY is set per test by the Results service
    /// sample_with_lab.*.(other)                     APPOINTMENT_ATTENDED
    /// completed.*.*                                 FULL_RESULTS_READY and FHIR completed
    /// failed.*.sample_error                         RESULTS_ISSUE
    /// failed.*.(other: lost, failure_to_deliver_*)  ORDER_ISSUE; after PARTIAL_RESULTS_READY: RESULTS_ISSUE
    ///                                               (some results exist, the rest will not come)
    /// cancelled.*.*                                 FHIR revoked, business status kept (as Revoke)
    /// any event on a completed or revoked request   unchanged
    /// </code>
    /// "Reachable" means the partner's machine allows the move (<see cref="AllowedNext"/>), so an
    /// event never does what the partner could not, except <c>cancelled</c>, which is the owner's.
    /// </remarks>
    /// <exception cref="InvalidArgumentException">the status is not <c>[high].[modality].[low]</c> with a known
    /// high-level status and modality (field <c>order_status</c>).</exception>
    public static TaskState ApplyOrderEvent(TaskState current, string orderStatus)
    {
        var (high, low) = ParseOrderStatus(orderStatus);
        if (current.Status != ServiceRequestStatus.Active)
        {
            return current;
        }
        return high switch
        {
            "received" => low == "requisition_created" ? Advance(current, TaskBusinessStatus.OrderConfirmed) : current,
            "collecting_sample" => low switch
            {
                "appointment_cancelled" => Advance(current, TaskBusinessStatus.AppointmentIssue),
                "draw_completed" or "transit_lab" => Advance(current, TaskBusinessStatus.AppointmentAttended),
                _ => current,
            },
            "sample_with_lab" => Advance(current, TaskBusinessStatus.AppointmentAttended),
            "completed" => Advance(current, TaskBusinessStatus.FullResultsReady),
            "failed" when low == "sample_error" => Advance(current, TaskBusinessStatus.ResultsIssue),
            "failed" => AllowedNext(current).Contains(TaskBusinessStatus.OrderIssue)
                ? Advance(current, TaskBusinessStatus.OrderIssue)
                : Advance(current, TaskBusinessStatus.ResultsIssue),
            "cancelled" => Revoke(current),
            _ => throw new InvalidOperationException($"Unhandled high-level status '{high}'."),
        };
    }

    /// <summary>
    /// A result report for the request (from the ResultsInterpretation service): a partial one moves it
    /// to PARTIAL_RESULTS_READY, a final one to FULL_RESULTS_READY (and FHIR completed), where the
    /// partner's machine allows the move; otherwise, as for an order event, the state is unchanged:
    /// a report never moves a request backwards, out of an issue status, or out of completed or revoked.
    /// </summary>
    public static TaskState ApplyResults(TaskState current, bool final) =>
        current.Status == ServiceRequestStatus.Active
            ? Advance(current, final ? TaskBusinessStatus.FullResultsReady : TaskBusinessStatus.PartialResultsReady)
            : current;

    /// <summary>
    /// What the owner's reschedule reopens, and to what: the issue statuses the owner may take back, each to the
    /// happy-path status the request resumes from. Only an appointment issue is rescheduled (seed 000:
    /// "WHOOP will reschedule"); after RESULTS_ISSUE or ORDER_ISSUE the owner places a replacement order instead.
    /// </summary>
    /// <remarks>
    /// <code>
    /// issue status (active request)   reopened as       why
    /// APPOINTMENT_ISSUE               ORDER_CONFIRMED   the partner confirmed the order; a new appointment is booked next
    /// RESULTS_ISSUE, ORDER_ISSUE      (stays)           the owner replaces the order (CreateRequisition replaces_requisition_id)
    /// </code>
    /// </remarks>
    public static IReadOnlyDictionary<TaskBusinessStatus, TaskBusinessStatus> Reopens { get; } =
        new Dictionary<TaskBusinessStatus, TaskBusinessStatus>
        {
            [TaskBusinessStatus.AppointmentIssue] = TaskBusinessStatus.OrderConfirmed,
        };

    /// <summary>
    /// The owner's reschedule of one request: an active request in an issue status <see cref="Reopens"/> lists goes
    /// back to its happy-path status; any other state is returned unchanged (a request of the same requisition
    /// that had no appointment issue, or one already reopened). The partner never gets this move
    /// (<see cref="UpdateBusinessStatus"/> keeps issue statuses terminal).
    /// </summary>
    public static TaskState Reschedule(TaskState current) =>
        current.Status == ServiceRequestStatus.Active && Reopens.TryGetValue(current.BusinessStatus, out var reopened)
            ? current with { BusinessStatus = reopened }
            : current;

    private static TaskState Advance(TaskState current, TaskBusinessStatus target) =>
        AllowedNext(current).Contains(target) ? UpdateBusinessStatus(current, target) : current;

    private static (string High, string Low) ParseOrderStatus(string? orderStatus)
    {
        if (!NamespacedStatus.TryParse(orderStatus, out var status))
        {
            throw new InvalidArgumentException(
                "order_status",
                $"'{orderStatus}' is not a namespaced order status [high].[modality].[low] with high one of "
                + $"{string.Join(", ", NamespacedStatus.HighWords)} and modality one of {string.Join(", ", NamespacedStatus.ModalityWords)}.");
        }
        return (EnumWords.Word(status.High), status.Low);
    }
}
