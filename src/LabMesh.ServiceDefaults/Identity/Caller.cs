using Grpc.Core;

namespace LabMesh.ServiceDefaults.Identity;

/// <summary>The caller's role (DESIGN.md, "Security").</summary>
public enum CallerRole
{
    Service,
    Partner,
    Clinician,
    Admin,
}

/// <summary>
/// Who is calling: the team (tenant) every read and write is scoped to, a subject for the audit
/// trail and history, a role and, for partners, the partner id.
/// </summary>
/// <remarks>
/// Until bearer tokens and mTLS arrive (the security issue), identity is read from request
/// metadata: <c>x-labmesh-team</c> (required), <c>x-labmesh-subject</c>, <c>x-labmesh-role</c>,
/// <c>x-labmesh-partner</c>. This is the one place that reads it, so the token check replaces it
/// without touching a handler. It is not authentication: do not expose a service beyond the mesh.
/// </remarks>
public sealed record Caller(string TeamId, string Subject, CallerRole Role, string? PartnerId)
{
    public const string TeamHeader = "x-labmesh-team";
    public const string SubjectHeader = "x-labmesh-subject";
    public const string RoleHeader = "x-labmesh-role";
    public const string PartnerHeader = "x-labmesh-partner";

    /// <summary>The metadata a service sends downstream to act for this caller's team.</summary>
    public Metadata ToMetadata(string asService) => new()
    {
        { TeamHeader, TeamId },
        { SubjectHeader, "service:" + asService },
        { RoleHeader, "service" },
    };

    /// <summary>The audit name of the caller: "partner:{id}", or the subject.</summary>
    public string Actor => Role == CallerRole.Partner && PartnerId is not null ? "partner:" + PartnerId : Subject;
}

public static class CallerExtensions
{
    /// <summary>The caller of this call; UNAUTHENTICATED when the call names no team.</summary>
    public static Caller GetCaller(this ServerCallContext context)
    {
        string? team = null, subject = null, role = null, partner = null;
        foreach (var entry in context.RequestHeaders)
        {
            switch (entry.Key)
            {
                case Caller.TeamHeader: team = entry.Value; break;
                case Caller.SubjectHeader: subject = entry.Value; break;
                case Caller.RoleHeader: role = entry.Value; break;
                case Caller.PartnerHeader: partner = entry.Value; break;
            }
        }

        if (string.IsNullOrWhiteSpace(team) || team.Length > 128)
        {
            throw new RpcException(new Status(StatusCode.Unauthenticated, $"The call names no team ({Caller.TeamHeader} metadata)."));
        }

        var parsedRole = role?.ToLowerInvariant() switch
        {
            "partner" => CallerRole.Partner,
            "clinician" => CallerRole.Clinician,
            "admin" => CallerRole.Admin,
            _ => CallerRole.Service,
        };
        return new Caller(team, string.IsNullOrWhiteSpace(subject) ? "anonymous" : subject, parsedRole, string.IsNullOrWhiteSpace(partner) ? null : partner);
    }
}
