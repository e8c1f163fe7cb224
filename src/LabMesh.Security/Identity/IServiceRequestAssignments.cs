namespace LabMesh.Security.Identity;

/// <summary>
/// Which partner a service request is assigned to: what <see cref="AuthorizationInterceptor"/> needs to
/// hold a partner to its own service requests (<see cref="PartnerRule.AssignedServiceRequest"/>). The
/// ServiceRequest service registers it.
/// </summary>
public interface IServiceRequestAssignments
{
    /// <summary>
    /// The partner id of the team's service request <paramref name="id"/>, pending (not yet visible) or not; null when
    /// the team has none. The interceptor's is the only partner check, so it must see every service request a handler could.
    /// </summary>
    Task<string?> PartnerOfAsync(string teamId, string id, CancellationToken cancellationToken);
}
