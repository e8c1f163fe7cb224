using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;

namespace LabMesh.Testing;

/// <summary>Calls made as a given caller: the identity metadata the services read (see <c>Caller</c>).</summary>
public static class TestCaller
{
    /// <summary>
    /// An invoker on <paramref name="channel"/> that names <paramref name="team"/>, and a partner when given
    /// (role partner), or else <paramref name="role"/> when given ("admin", "clinician", "service").
    /// </summary>
    public static CallInvoker Invoker(GrpcChannel channel, string team, string? partner = null, string subject = "test-user", string? role = null)
    {
        ArgumentNullException.ThrowIfNull(channel);
        return channel.CreateCallInvoker().Intercept(metadata =>
        {
            metadata.Add("x-labmesh-team", team);
            metadata.Add("x-labmesh-subject", subject);
            if (partner is not null)
            {
                metadata.Add("x-labmesh-role", "partner");
                metadata.Add("x-labmesh-partner", partner);
            }
            else if (role is not null)
            {
                metadata.Add("x-labmesh-role", role);
            }

            return metadata;
        });
    }
}
