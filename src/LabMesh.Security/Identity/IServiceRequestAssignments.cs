namespace LabMesh.Security.Identity;

/// <summary>
/// Which partner a service request is assigned to: what <see cref="AuthorizationInterceptor"/> needs to
/// hold a partner to its own service requests (<see cref="PartnerRule.AssignedServiceRequest"/>). The
/// ServiceRequest service registers it.
/// </summary>
public interface IServiceRequestAssignments
{
    /// <summary>The partner id of the team's visible service request <paramref name="id"/>; null when there is none.</summary>
    Task<string?> PartnerOfAsync(string teamId, string id, CancellationToken cancellationToken);
}
