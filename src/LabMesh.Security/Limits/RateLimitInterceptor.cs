using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Grpc.Core.Interceptors;
using LabMesh.Core.Errors;
using LabMesh.Security.Identity;
using GrpcStatus = Grpc.Core.Status;
using RpcStatus = Google.Rpc.Status;

namespace LabMesh.Security.Limits;

/// <summary>
/// The one place that enforces per-caller limits (<see cref="LimitsOptions"/>): every call takes a permit
/// from its caller's token bucket, and a server-streaming or duplex call also holds one of the caller's
/// stream slots until it ends. Refusals are RESOURCE_EXHAUSTED with a retry hint: a
/// <c>google.rpc.RetryInfo</c> and a <c>google.rpc.ErrorInfo</c> (<c>RATE_LIMITED</c> or
/// <c>TOO_MANY_STREAMS</c>) in <c>grpc-status-details-bin</c>, and the <c>grpc-retry-pushback-ms</c>
/// and <c>retry-after</c> (seconds) trailers. Runs after authentication: a call without a caller
/// identity (health, reflection) is not limited here.
/// </summary>
public sealed class RateLimitInterceptor(CallerLimiter limiter) : Interceptor
{
    /// <summary>The gRPC retry pushback trailer (milliseconds), which LabMesh's client honours on a retryable code.</summary>
    public const string PushbackTrailer = DomainExceptionInterceptor.RetryPushbackTrailer;

    /// <summary>HTTP's Retry-After, in whole seconds, for gateways and people reading trailers.</summary>
    public const string RetryAfterTrailer = "retry-after";

    // How long a caller with too many open streams is told to wait: a stream ends when its client goes.
    private static readonly TimeSpan StreamRetryAfter = TimeSpan.FromSeconds(1);

    /// <inheritdoc />
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        await AdmitAsync(context);
        return await continuation(request, context);
    }

    /// <inheritdoc />
    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await AdmitAsync(context);
        return await continuation(requestStream, context);
    }

    /// <inheritdoc />
    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        using var slot = await AdmitStreamAsync(context);
        await continuation(request, responseStream, context);
    }

    /// <inheritdoc />
    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context,
        DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        using var slot = await AdmitStreamAsync(context);
        await continuation(requestStream, responseStream, context);
    }

    /// <summary>The limiter's key for the call's caller (team and subject), or null for a call that names none or is relayed.</summary>
    public static string? CallerKey(ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        try
        {
            var caller = context.GetCaller();
            // The limit is taken where a call enters the mesh. A service relaying a caller's call to its peers
            // (only a service token may) is not counted again: one SubmitResults makes several peer calls, and
            // counting them under the team's service would throttle the mesh's own work below the callers' limit.
            return caller.Relayed ? null : caller.TeamId + "\n" + caller.Subject;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Unauthenticated)
        {
            // Not ours to refuse: authentication does, and the anonymous endpoints stay open.
            return null;
        }
    }

    private async ValueTask<string?> AdmitAsync(ServerCallContext context)
    {
        var caller = CallerKey(context);
        if (caller is null)
        {
            return null;
        }

        var (granted, retryAfter) = await limiter.AcquireAsync(caller, context.CancellationToken);
        if (!granted)
        {
            var permits = limiter.Options.PermitsPerSecond.ToString("0.###", CultureInfo.InvariantCulture);
            throw Exhausted("RATE_LIMITED", $"Too many calls: at most {permits} per second per caller; retry after the delay given.",
                retryAfter, new Dictionary<string, string>
                {
                    ["permits_per_second"] = permits,
                    ["burst"] = limiter.Options.Burst.ToString(CultureInfo.InvariantCulture),
                });
        }

        return caller;
    }

    private async ValueTask<IDisposable?> AdmitStreamAsync(ServerCallContext context)
    {
        var caller = await AdmitAsync(context);
        if (caller is null)
        {
            return null;
        }

        return limiter.TryOpenStream(caller) ?? throw Exhausted("TOO_MANY_STREAMS",
            $"Too many open streams: at most {limiter.Options.MaxStreamsPerCaller} per caller; end one first.",
            StreamRetryAfter, new Dictionary<string, string>
            {
                ["max_streams_per_caller"] = limiter.Options.MaxStreamsPerCaller.ToString(CultureInfo.InvariantCulture),
            });
    }

    private static RpcException Exhausted(string reason, string message, TimeSpan retryAfter, Dictionary<string, string> metadata)
    {
        var delayMs = Math.Max(1, (long)Math.Ceiling(retryAfter.TotalMilliseconds));
        metadata["retry_after_ms"] = delayMs.ToString(CultureInfo.InvariantCulture);
        var details = new RpcStatus { Code = (int)StatusCode.ResourceExhausted, Message = message };
        details.Details.Add(Any.Pack(new RetryInfo { RetryDelay = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(delayMs)) }));
        details.Details.Add(Any.Pack(new ErrorInfo { Reason = reason, Domain = DomainExceptionInterceptor.ErrorDomain, Metadata = { metadata } }));
        var trailers = new Metadata
        {
            { DomainExceptionInterceptor.StatusDetailsTrailer, details.ToByteArray() },
            { PushbackTrailer, delayMs.ToString(CultureInfo.InvariantCulture) },
            { RetryAfterTrailer, ((delayMs + 999) / 1000).ToString(CultureInfo.InvariantCulture) },
        };
        return new RpcException(new GrpcStatus(StatusCode.ResourceExhausted, message), trailers);
    }
}
