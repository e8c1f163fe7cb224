using Grpc.Core;
using LabMesh.Security.Identity;

namespace LabMesh.ServiceDefaults.Peers;

/// <summary>
/// Where a service finds the LabMesh services it calls. Section <c>LabMesh:Services</c>. Each address is
/// <c>http://host:port</c>, <c>dns:///host:port</c> to balance round-robin over every address of a
/// Kubernetes headless service, or <c>ipv4:127.0.0.1:7101,127.0.0.1:7102</c> to balance over a fixed list
/// (deploy/local's replicas). Default: this process (the all-in-one host's port).
/// </summary>
public sealed class PeerOptions
{
    public const string Section = "LabMesh:Services";

    public string ServiceRequest { get; set; } = "http://127.0.0.1:5000";

    public string Requisition { get; set; } = "http://127.0.0.1:5000";

    /// <summary>The longest a call to a peer may take when the caller's own deadline is later or absent.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// Channels and call options for service-to-service calls. Every call carries the caller's identity,
/// a deadline no later than the caller's own (so one deadline bounds the whole chain) and the
/// caller's cancellation; calls that fail with UNAVAILABLE are retried with backoff, so only
/// idempotent methods may go through these channels.
/// </summary>
public static class PeerChannel
{
    /// <summary>
    /// Options for one call on behalf of <paramref name="caller"/>: this service's own token (from
    /// <paramref name="tokens"/>, as <c>service:{asService}</c>) with the caller's team and actor as
    /// <see cref="Caller.ForTeamHeader"/> and <see cref="Caller.ForActorHeader"/> (SECURITY.md), and the
    /// earlier of <paramref name="deadline"/> (the caller's) and now + <paramref name="timeout"/>.
    /// </summary>
    public static CallOptions Options(Caller caller, ServiceTokens tokens, string asService, DateTime deadline, TimeSpan timeout, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(caller);
        ArgumentNullException.ThrowIfNull(tokens);
        var headers = new Metadata
        {
            { AuthorizationInterceptor.AuthorizationHeader, "Bearer " + tokens.For(asService) },
            { Caller.ForTeamHeader, caller.TeamId },
        };
        var actor = caller.OnBehalfOf ?? caller.Actor;
        if (actor.All(char.IsAscii))
        {
            // Metadata values are ASCII; an actor named otherwise is left out (the subject still says which service called).
            headers.Add(Caller.ForActorHeader, actor);
        }

        var own = DateTime.UtcNow + timeout;
        return new CallOptions(headers, deadline < own ? deadline : own, cancellationToken);
    }
}
