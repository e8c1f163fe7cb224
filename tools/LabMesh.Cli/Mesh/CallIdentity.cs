using Grpc.Core;
using Grpc.Core.Interceptors;

namespace LabMesh.Cli.Mesh;

/// <summary>
/// Who the CLI calls as. Every call the CLI makes gets its identity here and nowhere else.
/// </summary>
/// <remarks>
/// Until bearer tokens arrive (the security issue), the services read the caller from request
/// metadata (<c>Caller</c> in LabMesh.ServiceDefaults): <c>x-labmesh-team</c> (required),
/// <c>x-labmesh-subject</c>, <c>x-labmesh-role</c> (service, partner, clinician, admin) and
/// <c>x-labmesh-partner</c> (the CLI never acts as a partner). When tokens replace that,
/// <see cref="Apply"/> is the one method to change.
/// </remarks>
internal sealed record CallIdentity(string Team, string Subject, string Role)
{
    public const string DefaultSubject = "labmesh-cli";

    /// <summary>The identity of the CLI itself for a team: a service of the ordering product.</summary>
    public static CallIdentity ForTeam(string team) => new(team, DefaultSubject, "service");

    /// <summary>The same team, acting as a clinician (who may acknowledge a critical result).</summary>
    public CallIdentity AsClinician(string subject) => this with { Role = "clinician", Subject = subject };

    /// <summary>An invoker whose every call carries this identity.</summary>
    public CallInvoker Apply(CallInvoker invoker) => invoker.Intercept(metadata =>
    {
        metadata.Add("x-labmesh-team", Team);
        metadata.Add("x-labmesh-subject", Subject);
        metadata.Add("x-labmesh-role", Role);
        return metadata;
    });
}
