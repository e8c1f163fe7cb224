using System.Diagnostics;
using System.IO.Compression;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Core.Internal;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Grpc.AspNetCore.Server.Internal;

/// <summary>
/// Serves one method: validates the call, reads requests, runs the interceptor chain and the
/// service method on a per-call service instance, writes responses and always ends with a status.
/// </summary>
internal sealed class ServerMethodHandler<TService, TRequest, TResponse>
    where TService : class
    where TRequest : class
    where TResponse : class
{
    private readonly Method<TRequest, TResponse> _method;
    private readonly Delegate _invoker;
    private readonly ServerOptionsSnapshot _options;
    private readonly IReadOnlyList<InterceptorRegistration> _interceptors;
    private readonly ILogger _logger;
    private readonly ServiceActivator<TService> _activator = new();

    // The innermost handlers, bound once: a method group converted at each call would allocate a delegate per call.
    private readonly UnaryServerMethod<TRequest, TResponse> _unary;
    private readonly ServerStreamingServerMethod<TRequest, TResponse> _serverStreaming;
    private readonly ClientStreamingServerMethod<TRequest, TResponse> _clientStreaming;
    private readonly DuplexStreamingServerMethod<TRequest, TResponse> _duplexStreaming;

    /// <param name="method">The method.</param>
    /// <param name="invoker">An open-instance delegate to the service method: the first parameter is the service.</param>
    /// <param name="options">Server options.</param>
    /// <param name="interceptors">Server interceptors, outermost first.</param>
    /// <param name="logger">The runtime's logger.</param>
    public ServerMethodHandler(Method<TRequest, TResponse> method, Delegate invoker, ServerOptionsSnapshot options, IReadOnlyList<InterceptorRegistration> interceptors, ILogger logger)
    {
        _method = method;
        _invoker = invoker;
        _options = options;
        _interceptors = interceptors;
        _logger = logger;
        _unary = InvokeUnary;
        _serverStreaming = InvokeServerStreaming;
        _clientStreaming = InvokeClientStreaming;
        _duplexStreaming = InvokeDuplexStreaming;
    }

    public async Task HandleCallAsync(HttpContext http)
    {
        var started = Stopwatch.GetTimestamp();
        var headers = http.Request.Headers;
        var activity = GrpcTelemetry.StartServer(_method, headers.TraceParent, headers.TraceState, http.Connection.RemoteIpAddress);
        var call = new HttpServerCallContext(http, _method, _options, _logger);
        List<object>? created = null;
        try
        {
            if (!call.TryStart())
            {
                return;
            }
            var reader = new MessageReader(http.Request.BodyReader, _options.MaxReceiveMessageSize, call.RequestEncoding, isServer: true);
            var writer = new MessageWriter(_options.MaxSendMessageSize, _options.ResponseCompressionLevel);
            try
            {
                switch (_method.Type)
                {
                    case MethodType.Unary:
                    {
                        var request = await ReadSingleRequestAsync(reader, call).ConfigureAwait(false);
                        var handler = _interceptors.Count == 0
                            ? _unary
                            : Intercept<UnaryServerMethod<TRequest, TResponse>>(http, ref created, _unary,
                                static (i, next) => (req, ctx) => i.UnaryServerHandler(req, ctx, next));
                        var response = await handler(request, call).ConfigureAwait(false);
                        await WriteSingleResponseAsync(call, writer, response).ConfigureAwait(false);
                        break;
                    }
                    case MethodType.ServerStreaming:
                    {
                        var request = await ReadSingleRequestAsync(reader, call).ConfigureAwait(false);
                        var handler = _interceptors.Count == 0
                            ? _serverStreaming
                            : Intercept<ServerStreamingServerMethod<TRequest, TResponse>>(http, ref created, _serverStreaming,
                                static (i, next) => (req, stream, ctx) => i.ServerStreamingServerHandler(req, stream, ctx, next));
                        await handler(request, new ServerStreamWriter<TResponse>(call, writer, _method.ResponseMarshaller), call).ConfigureAwait(false);
                        break;
                    }
                    case MethodType.ClientStreaming:
                    {
                        call.DisableMinimumDataRate();
                        var handler = _interceptors.Count == 0
                            ? _clientStreaming
                            : Intercept<ClientStreamingServerMethod<TRequest, TResponse>>(http, ref created, _clientStreaming,
                                static (i, next) => (stream, ctx) => i.ClientStreamingServerHandler(stream, ctx, next));
                        var response = await handler(new ServerStreamReader<TRequest>(call, reader, _method.RequestMarshaller), call).ConfigureAwait(false);
                        await WriteSingleResponseAsync(call, writer, response).ConfigureAwait(false);
                        break;
                    }
                    case MethodType.DuplexStreaming:
                    {
                        call.DisableMinimumDataRate();
                        var handler = _interceptors.Count == 0
                            ? _duplexStreaming
                            : Intercept<DuplexStreamingServerMethod<TRequest, TResponse>>(http, ref created, _duplexStreaming,
                                static (i, next) => (requests, responses, ctx) => i.DuplexStreamingServerHandler(requests, responses, ctx, next));
                        await handler(new ServerStreamReader<TRequest>(call, reader, _method.RequestMarshaller),
                            new ServerStreamWriter<TResponse>(call, writer, _method.ResponseMarshaller), call).ConfigureAwait(false);
                        break;
                    }
                }
            }
            catch (Exception ex)
            {
                call.SetError(ex);
            }
            await call.CompleteAsync().ConfigureAwait(false);
        }
        finally
        {
            GrpcTelemetry.StopServer(activity, _method, call.SentStatusCode, started);
            call.Dispose();
            if (created is not null)
            {
                foreach (var instance in created)
                {
                    await DisposeAsync(instance).ConfigureAwait(false);
                }
            }
        }
    }

    private async ValueTask<TRequest> ReadSingleRequestAsync(MessageReader reader, HttpServerCallContext call)
    {
        try
        {
            return await ReadExactlyOneAsync(reader, call).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException || (ex is OperationCanceledException && !call.DeadlineExceeded))
        {
            throw ClientGone.Exception(ex);
        }
    }

    private async ValueTask<TRequest> ReadExactlyOneAsync(MessageReader reader, HttpServerCallContext call)
    {
        var (ok, request) = await reader.ReadAsync(_method.RequestMarshaller.ContextualDeserializer, call.CancellationToken).ConfigureAwait(false);
        if (!ok)
        {
            // statuscodes.md: a request cardinality violation is UNIMPLEMENTED.
            throw new RpcException(new Status(StatusCode.Unimplemented, "The request stream ended without a message; this method takes exactly one."));
        }
        var (extra, _) = await reader.ReadAsync(_method.RequestMarshaller.ContextualDeserializer, call.CancellationToken).ConfigureAwait(false);
        if (extra)
        {
            throw new RpcException(new Status(StatusCode.Unimplemented, "The request stream has more than one message; this method takes exactly one."));
        }
        return request;
    }

    private async ValueTask WriteSingleResponseAsync(HttpServerCallContext call, MessageWriter writer, TResponse? response)
    {
        if (response is null)
        {
            throw new InvalidOperationException($"The handler for {_method.FullName} returned a null response.");
        }
        // Only a status follows, so the message is not flushed on its own: Kestrel sends it with the trailers.
        if (call.Status.StatusCode == StatusCode.OK)
        {
            await call.WriteMessageAsync(response, _method.ResponseMarshaller, writer, flush: false, call.CancellationToken).ConfigureAwait(false);
        }
    }

    private async Task<TResponse> InvokeUnary(TRequest request, ServerCallContext context)
    {
        var http = ((HttpServerCallContext)context).HttpContext;
        var (service, created) = _activator.Create(http.RequestServices);
        try
        {
            return await ((Func<TService, TRequest, ServerCallContext, Task<TResponse>>)_invoker)(service, request, context).ConfigureAwait(false);
        }
        finally
        {
            await ServiceActivator<TService>.ReleaseAsync(service, created).ConfigureAwait(false);
        }
    }

    private async Task InvokeServerStreaming(TRequest request, IServerStreamWriter<TResponse> responses, ServerCallContext context)
    {
        var http = ((HttpServerCallContext)context).HttpContext;
        var (service, created) = _activator.Create(http.RequestServices);
        try
        {
            await ((Func<TService, TRequest, IServerStreamWriter<TResponse>, ServerCallContext, Task>)_invoker)(service, request, responses, context).ConfigureAwait(false);
        }
        finally
        {
            await ServiceActivator<TService>.ReleaseAsync(service, created).ConfigureAwait(false);
        }
    }

    private async Task<TResponse> InvokeClientStreaming(IAsyncStreamReader<TRequest> requests, ServerCallContext context)
    {
        var http = ((HttpServerCallContext)context).HttpContext;
        var (service, created) = _activator.Create(http.RequestServices);
        try
        {
            return await ((Func<TService, IAsyncStreamReader<TRequest>, ServerCallContext, Task<TResponse>>)_invoker)(service, requests, context).ConfigureAwait(false);
        }
        finally
        {
            await ServiceActivator<TService>.ReleaseAsync(service, created).ConfigureAwait(false);
        }
    }

    private async Task InvokeDuplexStreaming(IAsyncStreamReader<TRequest> requests, IServerStreamWriter<TResponse> responses, ServerCallContext context)
    {
        var http = ((HttpServerCallContext)context).HttpContext;
        var (service, created) = _activator.Create(http.RequestServices);
        try
        {
            await ((Func<TService, IAsyncStreamReader<TRequest>, IServerStreamWriter<TResponse>, ServerCallContext, Task>)_invoker)(service, requests, responses, context).ConfigureAwait(false);
        }
        finally
        {
            await ServiceActivator<TService>.ReleaseAsync(service, created).ConfigureAwait(false);
        }
    }

    /// <summary>Wraps the innermost handler in this call's interceptors, the first registered outermost.</summary>
    private TDelegate Intercept<TDelegate>(HttpContext http, ref List<object>? created, TDelegate innermost, Func<Interceptor, TDelegate, TDelegate> wrap)
    {
        var handler = innermost;
        for (var i = _interceptors.Count - 1; i >= 0; i--)
        {
            var registration = _interceptors[i];
            var interceptor = (Interceptor?)http.RequestServices.GetService(registration.Type);
            if (interceptor is null)
            {
                interceptor = (Interceptor)ActivatorUtilities.CreateInstance(http.RequestServices, registration.Type, [.. registration.Arguments]);
                (created ??= []).Add(interceptor);
            }
            handler = wrap(interceptor, handler);
        }
        return handler;
    }

    private static ValueTask DisposeAsync(object instance)
    {
        if (instance is IAsyncDisposable asyncDisposable)
        {
            return asyncDisposable.DisposeAsync();
        }
        (instance as IDisposable)?.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>Resolves <see cref="GrpcServiceOptions"/> into what a call reads.</summary>
internal static class ServerOptionsResolver
{
    public static ServerOptionsSnapshot Resolve(GrpcServiceOptions options) => new(
        options.MaxReceiveMessageSize,
        options.MaxSendMessageSize,
        options.EnableDetailedErrors,
        options.ResponseCompressionAlgorithm,
        options.ResponseCompressionLevel ?? CompressionLevel.Fastest);
}
