using Grpc.Core;

namespace LabMesh.Security.Identity;

/// <summary>The caller's role (DESIGN.md, "Security"; SECURITY.md).</summary>
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
/// Set by <see cref="AuthorizationInterceptor"/> from the call's bearer token (SECURITY.md) before any
/// handler runs; handlers read it with <see cref="CallerExtensions.GetCaller"/>. A service calling for
/// another team's caller names that team per call (<see cref="ForTeamHeader"/>); only a service may.
/// </remarks>
public sealed record Caller(string TeamId, string Subject, CallerRole Role, string? PartnerId)
{
    /// <summary>Metadata a service sends to act for a team (its token's role must be <c>service</c>).</summary>
    public const string ForTeamHeader = "x-labmesh-for-team";

    /// <summary>Metadata a service sends to name the actor it calls for (history and audit); only a service may.</summary>
    public const string ForActorHeader = "x-labmesh-for-actor";

    /// <summary>For a service acting for someone: that actor ("partner:lab-a", a clinician's id); null otherwise.</summary>
    public string? OnBehalfOf { get; init; }

    /// <summary>
    /// True when a service relays a call for someone (it named the team or actor it acts for): a LabMesh
    /// service calling its peers while serving a caller, whose own call was already admitted. Only a
    /// service token without a team claim (the mesh's own) relays; a team-bound one (an integration's)
    /// is always a caller of its own.
    /// </summary>
    public bool Relayed { get; init; }

    /// <summary>The audit name of the caller: "partner:{id}", or the subject.</summary>
    public string Actor => Role == CallerRole.Partner && PartnerId is not null ? "partner:" + PartnerId : Subject;
}

public static class CallerExtensions
{
    private static readonly object CallerKey = new();
    private static readonly object PartnerScopeKey = new();

    /// <summary>The caller of this call, as <see cref="AuthorizationInterceptor"/> authenticated it; UNAUTHENTICATED when it did not.</summary>
    public static Caller GetCaller(this ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.UserState.TryGetValue(CallerKey, out var caller) && caller is Caller known
            ? known
            : throw new RpcException(new Status(StatusCode.Unauthenticated, AuthorizationInterceptor.UnauthenticatedMessage));
    }

    internal static void SetCaller(this ServerCallContext context, Caller caller) => context.UserState[CallerKey] = caller;

    /// <summary>
    /// The partner whose service requests alone this call may read or change, as <see cref="AuthorizationInterceptor"/>
    /// decided it (a partner calling a method of <see cref="PartnerRule.AssignedServiceRequest"/>); null when the call is
    /// not held to a partner. The handler reads with it and decides nothing about partners itself (SECURITY.md).
    /// </summary>
    public static string? GetPartnerScope(this ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        return context.UserState.TryGetValue(PartnerScopeKey, out var partner) ? partner as string : null;
    }

    internal static void SetPartnerScope(this ServerCallContext context, string partnerId) => context.UserState[PartnerScopeKey] = partnerId;
}
