using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Core.Errors;

namespace LabMesh.Requisition.Domain;

/// <summary>
/// When the owner may place a replacement order (<c>CreateRequisition</c> with <c>replaces_requisition_id</c>):
/// seed 000's "ORDER_ISSUE ... WHOOP will place a new order", and a redraw of tests whose results will not come.
/// Pure rules: no I/O.
/// </summary>
/// <remarks>
/// <code>
/// the replaced requisition                                     a replacement
/// failed.*.*                                                   allowed
/// a service request (not revoked) in ORDER_ISSUE,              allowed, whatever the order status (a partial
///   RESULTS_ISSUE or APPOINTMENT_ISSUE                           redraw while the other tests go on included)
/// a draft; or no failure and no issue (open, completed,        FAILED_PRECONDITION, with what the owner may do
///   cancelled)                                                   instead
/// another patient's                                            INVALID_ARGUMENT (patient.id)
/// ordering a test it did not order                             INVALID_ARGUMENT (tests[i].code): all its tests or a subset
/// </code>
/// A requisition may be replaced more than once (a redraw of some tests, later another); the links form its chain.
/// </remarks>
public static class Replacements
{
    /// <summary>The task_business_status values after which the owner may replace the test's order.</summary>
    public static IReadOnlyList<TaskBusinessStatus> IssueStatuses { get; } =
        [TaskBusinessStatus.OrderIssue, TaskBusinessStatus.ResultsIssue, TaskBusinessStatus.AppointmentIssue];

    /// <summary>Throws when <paramref name="replacement"/> may not replace <paramref name="replaced"/>.</summary>
    /// <exception cref="InvalidArgumentException">another patient, or a test the replaced order did not have.</exception>
    /// <exception cref="IllegalTransitionException">the replaced order neither failed nor has an issue (subject <c>requisition</c>).</exception>
    public static void Check(
        RequisitionRecord replaced,
        IReadOnlyList<Contracts.ServiceRequest.V1.ServiceRequest> replacedServiceRequests,
        CreateRequisitionRequest replacement)
    {
        var violations = new List<FieldViolation>();
        if (replacement.Patient?.Id != replaced.Order.Patient?.Id)
        {
            violations.Add(new FieldViolation("patient.id", "must be the patient of the replaced requisition."));
        }

        var ordered = replaced.Order.Tests.Select(t => t.Code).ToHashSet(StringComparer.Ordinal);
        for (var i = 0; i < replacement.Tests.Count; i++)
        {
            if (!ordered.Contains(replacement.Tests[i].Code))
            {
                violations.Add(new FieldViolation($"tests[{i}].code",
                    $"is not a test of the replaced requisition ({string.Join(", ", ordered.Order(StringComparer.Ordinal))}): a replacement orders all its tests or some of them."));
            }
        }

        if (violations.Count > 0)
        {
            throw new InvalidArgumentException(violations);
        }

        var failed = replaced.Status == OrderStatus.Failed;
        var issue = replacedServiceRequests.Any(s => s.Status != ServiceRequestStatus.Revoked && IssueStatuses.Contains(s.TaskBusinessStatus));
        if (!failed && !issue)
        {
            var instead = replaced.IsDraft ? new[] { "PlaceRequisition", "CancelRequisition" }
                : replaced.Current is { IsTerminal: true } ? []
                : ["CancelRequisition"];
            throw new IllegalTransitionException("requisition", replaced.IsDraft ? "draft" : replaced.SubStatus, "replaced", instead);
        }
    }
}
