using LabMesh.Security.Identity;

namespace LabMesh.ServiceRequest;

/// <summary>
/// The partner of a service request, pending or not, for the authorization interceptor's partner rule (SECURITY.md):
/// the one place that rule is decided, so it must see the pending ones the handlers' reads hide.
/// </summary>
internal sealed class ServiceRequestAssignments(ServiceRequestStore store) : IServiceRequestAssignments
{
    public async Task<string?> PartnerOfAsync(string teamId, string id, CancellationToken cancellationToken) =>
        await store.PartnerOfAsync(teamId, id, cancellationToken);
}
