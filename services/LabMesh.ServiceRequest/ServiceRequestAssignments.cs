using LabMesh.Security.Identity;

namespace LabMesh.ServiceRequest;

/// <summary>The partner of a service request, for the authorization interceptor's partner rule (SECURITY.md).</summary>
internal sealed class ServiceRequestAssignments(ServiceRequestStore store) : IServiceRequestAssignments
{
    public async Task<string?> PartnerOfAsync(string teamId, string id, CancellationToken cancellationToken) =>
        (await store.GetAsync(teamId, id, cancellationToken))?.PartnerId;
}
