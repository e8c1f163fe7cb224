using System.Collections.Concurrent;
using System.Globalization;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace LabMesh.Testing.Otlp;

/// <summary>
/// An OTLP/HTTP endpoint (<c>http/protobuf</c>) on a loopback port, as a collector would be: it accepts what a
/// host exports to <c>/v1/traces</c>, <c>/v1/metrics</c> and <c>/v1/logs</c>, decodes it with OTLP's messages and
/// keeps it for the test. Point a host at it with <see cref="Settings"/>.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ConcurrentQueue<ExportTraceServiceRequest> _traces = new();
    private readonly ConcurrentQueue<ExportMetricsServiceRequest> _metrics = new();
    private readonly ConcurrentQueue<ExportLogsServiceRequest> _logs = new();

    private OtlpReceiver(WebApplication app, int port)
    {
        _app = app;
        Endpoint = $"http://127.0.0.1:{port}";
    }

    /// <summary>The base address, for <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>.</summary>
    public string Endpoint { get; }

    /// <summary>
    /// The standard variables that point a host here over http/protobuf, with export intervals short enough for
    /// a test (a batch of spans or logs every 100 ms, metrics every 500 ms).
    /// </summary>
    public IReadOnlyDictionary<string, string?> Settings => new Dictionary<string, string?>
    {
        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = Endpoint,
        ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
        ["OTEL_BSP_SCHEDULE_DELAY"] = "100",
        ["OTEL_BLRP_SCHEDULE_DELAY"] = "100",
        ["OTEL_METRIC_EXPORT_INTERVAL"] = "500",
    };

    /// <summary>Every span received, with the resource it came from.</summary>
    public IReadOnlyList<ReceivedSpan> Spans =>
    [
        .. _traces.SelectMany(r => r.ResourceSpans).SelectMany(rs => rs.ScopeSpans.SelectMany(ss => ss.Spans.Select(s => new ReceivedSpan(rs.Resource, ss.Scope, s)))),
    ];

    /// <summary>Every metric received (one per export), with the resource it came from.</summary>
    public IReadOnlyList<(Resource Resource, Metric Metric)> Metrics =>
        [.. _metrics.SelectMany(r => r.ResourceMetrics).SelectMany(rm => rm.ScopeMetrics.SelectMany(sm => sm.Metrics.Select(m => (rm.Resource, m))))];

    /// <summary>Every log record received.</summary>
    public IReadOnlyList<(Resource Resource, InstrumentationScope Scope, LogRecord Record)> Logs =>
        [.. _logs.SelectMany(r => r.ResourceLogs).SelectMany(rl => rl.ScopeLogs.SelectMany(sl => sl.LogRecords.Select(l => (rl.Resource, sl.Scope, l))))];

    /// <summary>
    /// Every string and number of everything received, one line each with where it was: span names and
    /// attributes, events, status messages, metric names and data point attributes, log bodies and attributes.
    /// </summary>
    public IEnumerable<(string Where, string Text)> Text()
    {
        foreach (var span in Spans)
        {
            yield return ($"OTLP span {span.Span.Name}", span.Span.Name);
            yield return ($"OTLP span {span.Span.Name} status", span.Span.Status?.Message ?? "");
            foreach (var line in Attributes($"OTLP span {span.Span.Name}", span.Span.Attributes))
            {
                yield return line;
            }

            foreach (var evt in span.Span.Events)
            {
                yield return ($"OTLP span {span.Span.Name} event", evt.Name);
                foreach (var line in Attributes($"OTLP span {span.Span.Name} event {evt.Name}", evt.Attributes))
                {
                    yield return line;
                }
            }
        }

        foreach (var (_, metric) in Metrics)
        {
            yield return ($"OTLP metric {metric.Name}", metric.Name + " " + metric.Description + " " + metric.Unit);
            var points = metric.DataCase switch
            {
                Metric.DataOneofCase.Sum => metric.Sum.DataPoints.Select(p => p.Attributes),
                Metric.DataOneofCase.Gauge => metric.Gauge.DataPoints.Select(p => p.Attributes),
                Metric.DataOneofCase.Histogram => metric.Histogram.DataPoints.Select(p => p.Attributes),
                Metric.DataOneofCase.ExponentialHistogram => metric.ExponentialHistogram.DataPoints.Select(p => p.Attributes),
                _ => [],
            };
            foreach (var attributes in points)
            {
                foreach (var line in Attributes($"OTLP metric {metric.Name}", attributes))
                {
                    yield return line;
                }
            }
        }

        foreach (var (_, scope, record) in Logs)
        {
            yield return ($"OTLP log {scope.Name}", Value(record.Body));
            foreach (var line in Attributes($"OTLP log {scope.Name}", record.Attributes))
            {
                yield return line;
            }
        }
    }

    public static async Task<OtlpReceiver> StartAsync()
    {
        var port = FreePort.Next();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var receiver = new OtlpReceiver(app, port);
        app.MapPost("/v1/traces", (HttpContext context) => ReceiveAsync(context, ExportTraceServiceRequest.Parser, receiver._traces));
        app.MapPost("/v1/metrics", (HttpContext context) => ReceiveAsync(context, ExportMetricsServiceRequest.Parser, receiver._metrics));
        app.MapPost("/v1/logs", (HttpContext context) => ReceiveAsync(context, ExportLogsServiceRequest.Parser, receiver._logs));
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        return receiver;
    }

    /// <summary>The value of attribute <paramref name="key"/> as text; null when absent.</summary>
    public static string? Attribute(IEnumerable<KeyValue> attributes, string key) =>
        attributes.FirstOrDefault(a => a.Key == key) is { } found ? Value(found.Value) : null;

    /// <summary>An attribute value as text (numbers in the invariant culture, arrays joined with commas).</summary>
    public static string Value(AnyValue? value) => value?.ValueCase switch
    {
        AnyValue.ValueOneofCase.StringValue => value.StringValue,
        AnyValue.ValueOneofCase.BoolValue => value.BoolValue ? "true" : "false",
        AnyValue.ValueOneofCase.IntValue => value.IntValue.ToString(CultureInfo.InvariantCulture),
        AnyValue.ValueOneofCase.DoubleValue => value.DoubleValue.ToString(CultureInfo.InvariantCulture),
        AnyValue.ValueOneofCase.ArrayValue => string.Join(",", value.ArrayValue.Values.Select(Value)),
        AnyValue.ValueOneofCase.KvlistValue => string.Join(",", value.KvlistValue.Values.Select(kv => kv.Key + "=" + Value(kv.Value))),
        AnyValue.ValueOneofCase.BytesValue => Convert.ToBase64String(value.BytesValue.Span),
        _ => "",
    };

    private static IEnumerable<(string Where, string Text)> Attributes(string where, IEnumerable<KeyValue> attributes) =>
        attributes.Select(a => ($"{where} {a.Key}", Value(a.Value)));

    private static async Task ReceiveAsync<T>(HttpContext context, MessageParser<T> parser, ConcurrentQueue<T> into)
        where T : IMessage<T>
    {
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body);
        into.Enqueue(parser.ParseFrom(body.ToArray()));
        // An empty ExportXxxServiceResponse: full success.
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/x-protobuf";
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}

/// <summary>A span as received, with its resource and instrumentation scope.</summary>
public sealed record ReceivedSpan(Resource Resource, InstrumentationScope Scope, Span Span)
{
    public string TraceId => Convert.ToHexStringLower(Span.TraceId.Span);

    public string SpanId => Convert.ToHexStringLower(Span.SpanId.Span);

    public string ParentSpanId => Convert.ToHexStringLower(Span.ParentSpanId.Span);

    /// <summary>The value of the span's attribute <paramref name="key"/>; null when absent.</summary>
    public string? this[string key] => OtlpReceiver.Attribute(Span.Attributes, key);

    /// <summary>The value of the resource's attribute <paramref name="key"/>; null when absent.</summary>
    public string? ResourceAttribute(string key) => OtlpReceiver.Attribute(Resource.Attributes, key);
}
