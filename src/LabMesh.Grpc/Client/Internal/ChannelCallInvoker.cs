using Grpc.Core;
using Grpc.Net.Client.Configuration;

namespace Grpc.Net.Client.Internal;

/// <summary>Starts each call as a <see cref="GrpcCall{TRequest, TResponse}"/> on the channel.</summary>
internal sealed class ChannelCallInvoker(GrpcChannel channel) : CallInvoker
{
    public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
    {
        using var call = AsyncUnaryCall(method, host, options, request);
        return call.ResponseAsync.GetAwaiter().GetResult();
    }

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
    {
        if (RetryPolicyFor(method) is { } policy)
        {
            var retrying = new RetryingCall<TRequest, TResponse>(channel, method, host, options, policy);
            return new AsyncUnaryCall<TResponse>(retrying.RunUnaryAsync(request), retrying.ResponseHeadersAsync, retrying.GetStatus, retrying.GetTrailers, retrying.Dispose);
        }
        var call = new GrpcCall<TRequest, TResponse>(channel, method, host, options);
        var response = call.RunUnaryAsync(request);
        return new AsyncUnaryCall<TResponse>(response, call.ResponseHeadersAsync, call.GetStatus, call.GetTrailers, call.Dispose);
    }

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
    {
        if (RetryPolicyFor(method) is { } policy)
        {
            var retrying = new RetryingCall<TRequest, TResponse>(channel, method, host, options, policy);
            retrying.StartServerStreaming(request);
            return new AsyncServerStreamingCall<TResponse>(retrying.ResponseStream, retrying.ResponseHeadersAsync, retrying.GetStatus, retrying.GetTrailers, retrying.Dispose);
        }
        var call = new GrpcCall<TRequest, TResponse>(channel, method, host, options);
        call.StartServerStreaming(request);
        return new AsyncServerStreamingCall<TResponse>(call.ResponseStream, call.ResponseHeadersAsync, call.GetStatus, call.GetTrailers, call.Dispose);
    }

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options)
    {
        var call = new GrpcCall<TRequest, TResponse>(channel, method, host, options);
        var response = call.RunClientStreamingAsync();
        return new AsyncClientStreamingCall<TRequest, TResponse>(call.RequestStream, response, call.ResponseHeadersAsync, call.GetStatus, call.GetTrailers, call.Dispose);
    }

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options)
    {
        var call = new GrpcCall<TRequest, TResponse>(channel, method, host, options);
        call.StartDuplexStreaming();
        return new AsyncDuplexStreamingCall<TRequest, TResponse>(call.RequestStream, call.ResponseStream, call.ResponseHeadersAsync, call.GetStatus, call.GetTrailers, call.Dispose);
    }

    // Client- and duplex-streaming calls are not retried yet: replaying them needs a buffer of sent
    // messages, which this runtime does not keep.
    private RetryPolicy? RetryPolicyFor(IMethod method) =>
        method.Type is MethodType.Unary or MethodType.ServerStreaming ? channel.Options.ServiceConfig?.Find(method)?.RetryPolicy : null;
}
