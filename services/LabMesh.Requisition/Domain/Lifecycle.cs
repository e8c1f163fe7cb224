using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Core.Vocabulary;

namespace LabMesh.Requisition.Domain;

/// <summary>What the lifecycle view is derived from.</summary>
/// <param name="Draft">Not placed yet.</param>
/// <param name="Modality">The requisition's test modality.</param>
/// <param name="OrderEvents">The namespaced order statuses recorded, oldest first.</param>
/// <param name="ServiceRequestStatuses">The business statuses of the requisition's service requests,
/// revoked ones left out by the caller.</param>
/// <param name="ResultsStage">The results milestone the ResultsInterpretation service reported last
/// (partial_results, results_amended, interpretation_ready or interpretation_shared; Unspecified before
/// any report). It is the latest in time, not the highest: an amendment after sharing is results_amended.</param>
public sealed record LifecycleInputs(
    bool Draft,
    TestModality Modality,
    IReadOnlyList<string> OrderEvents,
    IReadOnlyList<TaskBusinessStatus> ServiceRequestStatuses,
    LifecycleStatus ResultsStage = LifecycleStatus.Unspecified);

/// <summary>
/// Seed 003's lab-order lifecycle view, derived (never stored as a machine of its own) from a
/// requisition's order events, its service requests and its results.
/// </summary>
/// <remarks>
/// <para>Three views are computed and the later stage (enum order) wins, except that a draft is
/// always <c>not_purchased</c>:</para>
/// <code>
/// 1. order events, oldest first; each one that maps sets the view, the others leave it:
///    (placed, no event yet) / received.*.*      purchased; schedule_appointment for at_home_phlebotomy
///    collecting_sample.*.appointment_scheduled  upcoming_appointment
///    collecting_sample.*.appointment_cancelled  schedule_appointment
///    collecting_sample.*.draw_completed         processing
///    collecting_sample.*.transit_lab            processing
///    collecting_sample.*.(other: kit shipping)  (unchanged)
///    sample_with_lab.*.partial_results          partial_results
///    sample_with_lab.*.(other: delivered_to_lab) processing
///    completed.*.*                              results_ready
///    failed.*.*, cancelled.*.*                  (unchanged: the view stays where it was)
/// 2. service requests (non-revoked):
///    every one FULL_RESULTS_READY               results_ready
///    some PARTIAL_ or FULL_RESULTS_READY        partial_results
/// 3. the results stage (ResultsInterpretation's latest milestone) when later than views 1 and 2.
///    Those never pass results_ready, so every later stage shows as reported, in time order.
/// </code>
/// <para>The appointment states apply only to at_home_phlebotomy, the one modality in seed 004 with
/// appointments; the others go from purchased to processing. Because only events set view 1,
/// appointment_cancelled after appointment_scheduled moves the view back to schedule_appointment,
/// as the patient must book again.</para>
/// </remarks>
public static class Lifecycle
{
    /// <summary>The lifecycle view of one requisition.</summary>
    /// <exception cref="ArgumentException">an order event is not a namespaced status (a stored event is always one).</exception>
    public static LifecycleStatus Derive(LifecycleInputs inputs)
    {
        if (inputs.Draft)
        {
            return LifecycleStatus.NotPurchased;
        }

        var placed = inputs.Modality == TestModality.AtHomePhlebotomy
            ? LifecycleStatus.ScheduleAppointment
            : LifecycleStatus.Purchased;
        var view = placed;
        foreach (var orderEvent in inputs.OrderEvents)
        {
            if (!Modalities.TryParse(orderEvent, out var status))
            {
                throw new ArgumentException($"'{orderEvent}' is not a namespaced order status.", nameof(inputs));
            }
            view = FromEvent(status, placed) ?? view;
        }

        var statuses = inputs.ServiceRequestStatuses;
        if (statuses.Count > 0 && statuses.All(s => s == TaskBusinessStatus.FullResultsReady))
        {
            view = Later(view, LifecycleStatus.ResultsReady);
        }
        else if (statuses.Any(s => s is TaskBusinessStatus.PartialResultsReady or TaskBusinessStatus.FullResultsReady))
        {
            view = Later(view, LifecycleStatus.PartialResults);
        }

        return Later(view, inputs.ResultsStage);
    }

    private static LifecycleStatus? FromEvent(NamespacedStatus status, LifecycleStatus placed) => status.High switch
    {
        OrderStatus.Received => placed,
        OrderStatus.CollectingSample => status.Low switch
        {
            "appointment_scheduled" => LifecycleStatus.UpcomingAppointment,
            "appointment_cancelled" => LifecycleStatus.ScheduleAppointment,
            "draw_completed" or "transit_lab" => LifecycleStatus.Processing,
            _ => null,
        },
        OrderStatus.SampleWithLab => status.Low == "partial_results" ? LifecycleStatus.PartialResults : LifecycleStatus.Processing,
        OrderStatus.Completed => LifecycleStatus.ResultsReady,
        _ => null,
    };

    private static LifecycleStatus Later(LifecycleStatus a, LifecycleStatus b) => a >= b ? a : b;
}
