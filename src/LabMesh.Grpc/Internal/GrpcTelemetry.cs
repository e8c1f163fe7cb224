using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Net;

namespace Grpc.Core.Internal;

/// <summary>
/// Traces and metrics for calls, after the OpenTelemetry RPC semantic conventions: a span per call
/// named <c>package.Service/Method</c>, <c>rpc.*</c> attributes, and <c>rpc.server.duration</c> /
/// <c>rpc.client.duration</c> histograms in milliseconds tagged with <c>rpc.grpc.status_code</c>.
/// Only names, codes and addresses are recorded: never messages or metadata values.
/// </summary>
internal static class GrpcTelemetry
{
    /// <summary>The name of the ActivitySource and Meter; subscribe to it to collect LabMesh's gRPC telemetry.</summary>
    public const string Name = "LabMesh.Grpc";

    public static readonly ActivitySource Source = new(Name, "1.0.0");

    private static readonly Meter Meter = new(Name, "1.0.0");

    private static readonly Histogram<double> ServerDuration = Meter.CreateHistogram<double>(
        "rpc.server.duration", "ms", "Duration of inbound gRPC calls.");

    private static readonly Histogram<double> ClientDuration = Meter.CreateHistogram<double>(
        "rpc.client.duration", "ms", "Duration of outbound gRPC calls.");

    private static readonly string[] StatusCodeNames = [.. Enumerable.Range(0, 17).Select(i => i.ToString(CultureInfo.InvariantCulture))];

    public static Activity? StartServer(IMethod method, string? traceParent, string? traceState, IPAddress? peerAddress)
    {
        if (!Source.HasListeners())
        {
            return null;
        }
        // Under the ASP.NET Core request activity when it carries the caller's trace; otherwise
        // directly under the caller's context from the traceparent header.
        var current = Activity.Current;
        ActivityContext parent = default;
        if (traceParent is not null && ActivityContext.TryParse(traceParent, traceState, isRemote: true, out var remote)
            && (current is null || current.TraceId != remote.TraceId))
        {
            parent = remote;
        }
        var activity = parent == default
            ? Source.StartActivity(method.FullName[1..], ActivityKind.Server)
            : Source.StartActivity(method.FullName[1..], ActivityKind.Server, parent);
        if (activity is { IsAllDataRequested: true })
        {
            SetCommonTags(activity, method);
            if (peerAddress is not null)
            {
                activity.SetTag("network.peer.address", peerAddress.ToString());
            }
        }
        return activity;
    }

    public static Activity? StartClient(IMethod method, Uri address)
    {
        if (!Source.HasListeners())
        {
            return null;
        }
        var activity = Source.StartActivity(method.FullName[1..], ActivityKind.Client);
        if (activity is { IsAllDataRequested: true })
        {
            SetCommonTags(activity, method);
            activity.SetTag("server.address", address.Host);
            activity.SetTag("server.port", address.Port);
        }
        return activity;
    }

    public static void StopServer(Activity? activity, IMethod method, StatusCode code, long startTimestamp) =>
        Stop(activity, ServerDuration, method, code, startTimestamp);

    public static void StopClient(Activity? activity, IMethod method, StatusCode code, long startTimestamp) =>
        Stop(activity, ClientDuration, method, code, startTimestamp);

    private static void Stop(Activity? activity, Histogram<double> histogram, IMethod method, StatusCode code, long startTimestamp)
    {
        var codeName = (int)code is >= 0 and <= 16 ? StatusCodeNames[(int)code] : ((int)code).ToString(CultureInfo.InvariantCulture);
        if (histogram.Enabled)
        {
            histogram.Record(Stopwatch.GetElapsedTime(startTimestamp).TotalMilliseconds,
                new KeyValuePair<string, object?>("rpc.system", "grpc"),
                new KeyValuePair<string, object?>("rpc.service", method.ServiceName),
                new KeyValuePair<string, object?>("rpc.method", method.Name),
                new KeyValuePair<string, object?>("rpc.grpc.status_code", codeName));
        }
        if (activity is null)
        {
            return;
        }
        activity.SetTag("rpc.grpc.status_code", (int)code);
        if (code != StatusCode.OK)
        {
            activity.SetStatus(ActivityStatusCode.Error, code.ToString());
        }
        activity.Stop();
    }

    private static void SetCommonTags(Activity activity, IMethod method)
    {
        activity.SetTag("rpc.system", "grpc");
        activity.SetTag("rpc.service", method.ServiceName);
        activity.SetTag("rpc.method", method.Name);
    }
}
