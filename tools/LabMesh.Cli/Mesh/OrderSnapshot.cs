using LabMesh.Contracts.Requisition.V1;

namespace LabMesh.Cli.Mesh;

/// <summary>One test of the order as seed 000 names its state: FHIR status and task_business_status.</summary>
internal sealed record TestSnapshot(string Id, string Code, string? Status, string? TaskBusinessStatus, string PartnerId);

/// <summary>
/// An order's status in the three vocabularies LabMesh speaks: seed 004's high-level status and its
/// namespaced sub-status (<c>[high].[modality].[low]</c>), seed 003's lifecycle view, and seed
/// 000's statuses of each service request. Null where there is none yet (a draft has no order status).
/// </summary>
internal sealed record OrderSnapshot(
    string RequisitionId,
    string? OrderStatus,
    string? OrderSubStatus,
    string? LifecycleStatus,
    IReadOnlyList<TestSnapshot> ServiceRequests)
{
    public static OrderSnapshot Of(Requisition requisition) => new(
        requisition.Id,
        Words.Order(requisition.Status),
        requisition.SubStatus.Length == 0 ? null : requisition.SubStatus,
        Words.Lifecycle(requisition.LifecycleStatus),
        [.. requisition.ServiceRequests.Select(s => new TestSnapshot(
            s.Id, s.Code, Words.ServiceRequest(s.Status), Words.TaskBusiness(s.TaskBusinessStatus), s.PartnerId))]);
}
