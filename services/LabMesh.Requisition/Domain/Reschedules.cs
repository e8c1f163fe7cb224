using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Core.Errors;

namespace LabMesh.Requisition.Domain;

/// <summary>
/// When the owner may reschedule a requisition (<c>RescheduleRequisition</c>): seed 000's "APPOINTMENT_ISSUE ...
/// WHOOP will reschedule". Pure rules: no I/O.
/// </summary>
/// <remarks>
/// <code>
/// the requisition                                            RescheduleRequisition
/// a draft                                                    FAILED_PRECONDITION (allowed: PlaceRequisition)
/// ended: completed, cancelled or failed                      FAILED_PRECONDITION (allowed: CreateRequisition replacing it)
/// open, some active service request in APPOINTMENT_ISSUE     reopens those (ORDER_CONFIRMED); the others stay
/// open, none in APPOINTMENT_ISSUE                            FAILED_PRECONDITION (allowed: the order statuses that may follow)
/// </code>
/// After a reschedule the order goes on as before: at-home phlebotomy records
/// <c>collecting_sample.at_home_phlebotomy.appointment_scheduled</c> again (allowed after
/// <c>appointment_cancelled</c>, <see cref="OrderStatusMachine"/> rule 6), seed 003's lifecycle is
/// <c>upcoming_appointment</c> again, and the draw moves the reopened service requests on. The partner never
/// leaves an issue status itself: only this owner's call reopens one.
/// </remarks>
public static class Reschedules
{
    /// <summary>Throws when the requisition may not be rescheduled now.</summary>
    /// <exception cref="IllegalTransitionException">subject <c>requisition</c>, with the allowed moves.</exception>
    public static void Check(RequisitionRecord record, IReadOnlyList<Contracts.ServiceRequest.V1.ServiceRequest> serviceRequests)
    {
        if (record.IsDraft)
        {
            throw new IllegalTransitionException("requisition", "draft", "rescheduled", ["PlaceRequisition"]);
        }

        if (record.Current is { IsTerminal: true } current)
        {
            throw new IllegalTransitionException("requisition", current.ToString(), "rescheduled",
                ["CreateRequisition with replaces_requisition_id"]);
        }

        if (!serviceRequests.Any(s => s.Status == ServiceRequestStatus.Active && s.TaskBusinessStatus == TaskBusinessStatus.AppointmentIssue))
        {
            // Nothing to reopen: the allowed moves are the order's own.
            throw new IllegalTransitionException("requisition", record.SubStatus, "rescheduled",
                OrderStatusMachine.AllowedNext(record.Modality, record.Current));
        }
    }
}
