using Grpc.Core;

namespace LabMesh.ServiceDefaults.Peers;

/// <summary>
/// The one definition of which errors from a peer are transient (the same call may succeed later
/// without anyone changing anything) and which are refusals (it will fail again until a person
/// or a later change intervenes). Every caller that retries or parks work by it uses this.
/// </summary>
/// <remarks>
/// <list type="table">
/// <item><term>transient</term><description>UNAVAILABLE (down, restarting, no connection), DEADLINE_EXCEEDED (slow),
/// CANCELLED (the call was cut: the worker stopping, a connection reset), RESOURCE_EXHAUSTED (a peer's rate
/// limit; gRPC's guidance is to retry with backoff), ABORTED (a concurrent change; retried at a higher level).</description></item>
/// <item><term>refusal</term><description>everything else: INVALID_ARGUMENT, NOT_FOUND, FAILED_PRECONDITION,
/// PERMISSION_DENIED, UNAUTHENTICATED, UNIMPLEMENTED, ALREADY_EXISTS, OUT_OF_RANGE, DATA_LOSS, and INTERNAL and
/// UNKNOWN: the one INTERNAL known to pass (a call sent on a connection the peer was closing) is retried by the
/// channel itself (<see cref="MeshChannels.RetryIdempotent"/>), so one that gets through is a peer's bug, which
/// retrying does not fix.</description></item>
/// </list>
/// </remarks>
public static class PeerErrors
{
    /// <summary>True when the failed call may succeed later unchanged.</summary>
    public static bool IsTransient(StatusCode status) => status is StatusCode.Unavailable or StatusCode.DeadlineExceeded
        or StatusCode.Cancelled or StatusCode.ResourceExhausted or StatusCode.Aborted;

    /// <summary>True when the failed call may succeed later unchanged.</summary>
    public static bool IsTransient(RpcException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return IsTransient(exception.StatusCode);
    }
}
