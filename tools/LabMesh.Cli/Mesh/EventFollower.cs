using System.Runtime.CompilerServices;
using Grpc.Core;
using LabMesh.Contracts.Notification.V1;

namespace LabMesh.Cli.Mesh;

/// <summary>
/// Follows <c>NotificationService.Subscribe</c> and resumes by itself: when the server cuts a slow
/// subscriber off (RESOURCE_EXHAUSTED), the connection drops (UNAVAILABLE, INTERNAL, ...) or the stream
/// ends, it subscribes again with <c>resume_after</c> set to the last cursor it got, so nothing is
/// missed and nothing repeats. Other statuses (a bad filter, no permission, UNIMPLEMENTED) end it.
/// </summary>
/// <param name="mesh">The mesh to follow.</param>
/// <param name="request">The filter, the starting point and the heartbeat period.</param>
/// <param name="maxRetries">How many times in a row it may resubscribe without receiving anything.</param>
/// <param name="notice">Told about every resumption, to say so on stderr.</param>
internal sealed class EventFollower(MeshClient mesh, SubscribeRequest request, int maxRetries, Action<string> notice)
{
    private const string Method = "NotificationService/Subscribe";
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(10);

    private static readonly HashSet<StatusCode> Resumable =
    [
        StatusCode.ResourceExhausted,
        StatusCode.Unavailable,
        StatusCode.Internal,
        StatusCode.Unknown,
        StatusCode.Cancelled,
        StatusCode.DeadlineExceeded,
        StatusCode.Aborted,
    ];

    /// <summary>Where the next subscription starts: the last cursor received, or the request's starting point.</summary>
    public string Cursor { get; private set; } = request.ResumeAfter;

    /// <summary>Every event and heartbeat, in stream order, across resumptions.</summary>
    /// <exception cref="CallFailedException">a status that resuming cannot fix, or too many attempts in a row.</exception>
    public async IAsyncEnumerable<SubscribeResponse> FollowAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var failures = 0;
        while (true)
        {
            var subscribe = request.Clone();
            subscribe.ResumeAfter = Cursor;
            using var call = mesh.Notifications.Subscribe(subscribe, new CallOptions(cancellationToken: cancellationToken));
            string ending;
            while (true)
            {
                RpcException? failure = null;
                var received = false;
                try
                {
                    received = await call.ResponseStream.MoveNext(cancellationToken);
                }
                catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
                {
                    failure = e;
                }
                catch (RpcException e)
                {
                    // Our own cancellation (Ctrl+C, the demo ending), not the stream's end.
                    throw new OperationCanceledException("Following was cancelled.", e, cancellationToken);
                }

                if (received)
                {
                    failures = 0;
                    var item = call.ResponseStream.Current;
                    if (item.Cursor.Length > 0)
                    {
                        Cursor = item.Cursor;
                    }

                    yield return item;
                    continue;
                }

                cancellationToken.ThrowIfCancellationRequested();
                if (failure is not null && !Resumable.Contains(failure.StatusCode))
                {
                    throw new CallFailedException(Method, mesh.Address, failure);
                }

                if (++failures > maxRetries)
                {
                    throw failure is null
                        ? new CallFailedException(Method, mesh.Address, new RpcException(new Status(StatusCode.Unavailable,
                            $"the stream ended {failures} times in a row without an event or heartbeat")))
                        : new CallFailedException(Method, mesh.Address, failure);
                }

                if (Cursor.Length == 0 && failure is not null)
                {
                    // Cut off before this client saw anything: the server names where it stopped.
                    Cursor = CallFailedException.ErrorInfoValue(failure.Trailers, "last_cursor") ?? "";
                }

                ending = failure is null
                    ? "ended"
                    : $"ended with {StatusCodes.Name(failure.StatusCode)} ({failure.Status.Detail})";
                break;
            }

            // A slow consumer resumes at once; a connection problem backs off, up to MaxBackoff.
            var delay = failures == 1 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(Math.Min(MaxBackoff.TotalMilliseconds, 250 * Math.Pow(2, failures - 2)));
            notice($"Subscribe at {mesh.Address} {ending}; resuming {(Cursor.Length == 0 ? "from now (no cursor yet)" : $"after cursor {Cursor}")}"
                + (delay > TimeSpan.Zero ? $" in {delay.TotalSeconds:0.##} s" : "") + $" (attempt {failures} of {maxRetries}).");
            await Task.Delay(delay, cancellationToken);
        }
    }
}
