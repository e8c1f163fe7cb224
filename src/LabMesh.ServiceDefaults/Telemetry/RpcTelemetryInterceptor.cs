using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Grpc.Core;
using Grpc.Core.Interceptors;
using LabMesh.Core.Diagnostics;

namespace LabMesh.ServiceDefaults.Telemetry;

/// <summary>
/// RPC semantic conventions for the calls a service serves: <c>rpc.server.call.duration</c> (seconds) by
/// <c>rpc.service</c>, <c>rpc.method</c> and <c>rpc.grpc.status_code</c>, and the same attributes on ASP.NET
/// Core's span of the call (which <see cref="LabMeshOpenTelemetry"/> then names <c>package.Service/Method</c>). Registered first, so it sees the status the
/// domain-error interceptor gives an exception. Only in a process that exports telemetry.
/// </summary>
public sealed class RpcTelemetryInterceptor : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        var started = Stopwatch.GetTimestamp();
        var status = StatusCode.Unknown;
        try
        {
            var response = await continuation(request, context);
            status = context.Status.StatusCode;
            return response;
        }
        catch (RpcException e)
        {
            status = e.StatusCode;
            throw;
        }
        finally
        {
            RpcMetrics.Served(context.Method, status, Stopwatch.GetElapsedTime(started));
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        var started = Stopwatch.GetTimestamp();
        var status = StatusCode.Unknown;
        try
        {
            await continuation(request, responseStream, context);
            status = context.Status.StatusCode;
        }
        catch (RpcException e)
        {
            status = e.StatusCode;
            throw;
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            status = StatusCode.Cancelled;
            throw;
        }
        finally
        {
            RpcMetrics.Served(context.Method, status, Stopwatch.GetElapsedTime(started));
        }
    }
}

/// <summary>
/// The calls a service makes to its peers: <c>rpc.client.call.duration</c> (seconds) by service, method and
/// status code. On every peer client; a no-op when nobody listens to the meter.
/// </summary>
public sealed class RpcClientTelemetryInterceptor : Interceptor
{
    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(
        TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
    {
        var call = continuation(request, context);
        if (!RpcMetrics.ClientDuration.Enabled)
        {
            return call;
        }

        var started = Stopwatch.GetTimestamp();
        return new AsyncUnaryCall<TResponse>(
            Observe(call.ResponseAsync, context.Method.FullName, started),
            call.ResponseHeadersAsync, call.GetStatus, call.GetTrailers, call.Dispose);
    }

    private static async Task<TResponse> Observe<TResponse>(Task<TResponse> response, string method, long started)
    {
        var status = StatusCode.OK;
        try
        {
            return await response;
        }
        catch (RpcException e)
        {
            status = e.StatusCode;
            throw;
        }
        finally
        {
            RpcMetrics.Called(method, status, Stopwatch.GetElapsedTime(started));
        }
    }
}

/// <summary>The RPC instruments of <see cref="LabMeshTelemetry.Meter"/>.</summary>
internal static class RpcMetrics
{
    private static readonly double[] Buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

    public static readonly Histogram<double> ServerDuration = LabMeshTelemetry.Meter.CreateHistogram(
        "rpc.server.call.duration", "s", "How long the calls this service served took, by method and status code.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = Buckets });

    public static readonly Histogram<double> ClientDuration = LabMeshTelemetry.Meter.CreateHistogram(
        "rpc.client.call.duration", "s", "How long the calls this service made to its peers took, by method and status code.",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = Buckets });

    public static void Served(string fullMethod, StatusCode status, TimeSpan elapsed)
    {
        var (service, method) = Split(fullMethod);
        if (Activity.Current is { } span)
        {
            span.SetTag("rpc.system", "grpc");
            span.SetTag("rpc.service", service);
            span.SetTag("rpc.method", method);
            span.SetTag("rpc.grpc.status_code", (int)status);
            if (status is StatusCode.Unknown or StatusCode.Internal or StatusCode.Unavailable or StatusCode.DataLoss
                or StatusCode.DeadlineExceeded or StatusCode.Unimplemented)
            {
                // The server's errors (RPC semantic conventions); a caller's mistake is not an error of the span.
                span.SetStatus(ActivityStatusCode.Error);
            }
        }

        ServerDuration.Record(elapsed.TotalSeconds, Tags(service, method, status));
    }

    public static void Called(string fullMethod, StatusCode status, TimeSpan elapsed)
    {
        var (service, method) = Split(fullMethod);
        ClientDuration.Record(elapsed.TotalSeconds, Tags(service, method, status));
    }

    private static TagList Tags(string service, string method, StatusCode status) => new()
    {
        { "rpc.system", "grpc" },
        { "rpc.service", service },
        { "rpc.method", method },
        { "rpc.grpc.status_code", (int)status },
    };

    // A call's service and method, split once per method rather than on every call.
    private static readonly ConcurrentDictionary<string, (string Service, string Method)> Methods = new(StringComparer.Ordinal);

    private static (string Service, string Method) Split(string fullMethod) => Methods.GetOrAdd(fullMethod, static full =>
    {
        var trimmed = full.TrimStart('/');
        var slash = trimmed.LastIndexOf('/');
        return slash < 0 ? (trimmed, "") : (trimmed[..slash], trimmed[(slash + 1)..]);
    });
}
