using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;
using Yarp.ReverseProxy.Model;

namespace LabMesh.Gateway;

/// <summary>
/// Passive health that counts what a replica did, not what the caller did: YARP's <c>TransportFailureRate</c> policy
/// (its failure rate per destination over a window, <c>LabMesh:Gateway:PassiveHealth</c>), except that a call the
/// caller ended (its deadline passed or it cancelled: the client reset the stream) counts neither as a failure nor as
/// a success. YARP's policy counts every call that ends with a forwarding error against the destination, the caller's
/// cancellations included, and in an overload the callers' deadlines took healthy replicas out for 5 s and sent every
/// call to the other one (bench/README.md, run O3 of "The gateway under overload and a stalled replica"). A refused
/// or reset connection, a replica that fails a call or stops mid-answer while the caller still waits, still counts.
/// A replica that stalls with its connections open is then never marked by the callers' deadlines: the load balancing
/// (power of two choices, by calls in flight) keeps calls off it instead.
/// </summary>
internal sealed class ReplicaFailureRate(IServiceProvider services) : IPassiveHealthCheckPolicy
{
    public const string PolicyName = "ReplicaFailureRate";

    // YARP's own policy, found by its name among the registered ones on first use (resolving the list while this one
    // is constructed would be a cycle: it is one of them).
    private IPassiveHealthCheckPolicy? _transportFailureRate;

    public string Name => PolicyName;

    public void RequestProxied(HttpContext context, ClusterState cluster, DestinationState destination)
    {
        if (context.GetForwarderErrorFeature() is { } error && EndedByTheCaller(context, error.Error))
        {
            return;
        }

        (_transportFailureRate ??= services.GetServices<IPassiveHealthCheckPolicy>().Single(p => p.Name == "TransportFailureRate"))
            .RequestProxied(context, cluster, destination);
    }

    /// <summary>The caller went away (the stream reset, the connection closed) or YARP names the client's side.</summary>
    internal static bool EndedByTheCaller(HttpContext context, ForwarderError error) =>
        context.RequestAborted.IsCancellationRequested
        || error is ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled or ForwarderError.RequestBodyClient
            or ForwarderError.ResponseBodyCanceled or ForwarderError.ResponseBodyClient;
}
