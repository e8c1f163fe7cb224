using System.Collections.Concurrent;
using Grpc.Net.Client;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Testing;
using LabMesh.Testing.Otlp;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace LabMesh.AllInOne.Tests;

/// <summary>
/// Issue 21, measured as an operator would: the all-in-one host started with only the standard variables
/// (<c>OTEL_EXPORTER_OTLP_ENDPOINT</c>, <c>OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf</c>) exports to an OTLP/HTTP
/// endpoint in the test, which decodes what arrives: one lab order is one trace (CreateRequisition and its peer
/// call; SubmitResults, the outbox's publish, Notification's ingest, the Subscribe delivery and the webhook POST),
/// with the RPC and workflow metrics and the logs of that trace.
/// </summary>
public sealed class TelemetryTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private const string Team = "otel";
    private readonly ConcurrentQueue<string?> _webhookTraceparents = new();
    private OtlpReceiver _otlp = null!;
    private WebApplication _webhooks = null!;
    private string _webhookUrl = "";
    private AllInOneProcess _host = null!;
    private GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        _otlp = await OtlpReceiver.StartAsync();
        var webhookPort = FreePort.Next();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{webhookPort}");
        builder.Logging.ClearProviders();
        _webhooks = builder.Build();
        _webhooks.MapPost("/hook", (HttpContext context) =>
        {
            _webhookTraceparents.Enqueue(context.Request.Headers["traceparent"].FirstOrDefault());
            return Results.NoContent();
        });
        await _webhooks.StartAsync().WaitAsync(Timeout);
        _webhookUrl = $"http://127.0.0.1:{webhookPort}/hook";

        var environment = new Dictionary<string, string>
        {
            ["LabMesh__Notification__Webhooks__AllowedNetworks__0"] = "127.0.0.0/8",
            // The critical result goes unacknowledged: escalated after 2 s, looked for every 200 ms.
            ["LabMesh__Notification__AcknowledgementWindow"] = "00:00:02",
            ["LabMesh__Notification__EscalationCheckInterval"] = "00:00:00.200",
        };
        foreach (var (key, value) in TestCaller.HostSettings)
        {
            environment[key.Replace(":", "__", StringComparison.Ordinal)] = value!;
        }

        foreach (var (key, value) in _otlp.Settings)
        {
            environment[key] = value!;
        }

        _host = AllInOneProcess.WithEnvironment(environment);
        await _host.InitializeAsync();
        _channel = GrpcChannel.ForAddress(_host.Address);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _host.DisposeAsync();
        await _webhooks.DisposeAsync();
        await _otlp.DisposeAsync();
    }

    [Fact]
    public async Task OneLabOrder_IsOneTrace_AcrossEveryHop_WithItsMetricsAndLogs_OverOtlp()
    {
        var invoker = TestCaller.Invoker(_channel, Team);
        var deadline = DateTime.UtcNow + Timeout;
        var notifications = new NotificationService.NotificationServiceClient(invoker);
        await notifications.CreateWebhookEndpointAsync(new CreateWebhookEndpointRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            Url = _webhookUrl,
            EventTypes = { "labtest.result.critical" },
        }, deadline: deadline);
        using var subscription = notifications.Subscribe(
            new SubscribeRequest { Filter = new EventFilter { Types_ = { "labtest.result.critical" } } }, deadline: deadline);

        var placed = (await new RequisitionService.RequisitionServiceClient(invoker).CreateRequisitionAsync(new CreateRequisitionRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            Patient = new Patient { Id = "otel-patient" },
            Modality = TestModality.WalkInTest,
            Place = true,
            Tests = { new OrderedTest { Code = "BMP", PartnerId = "lab-a" } },
        }, deadline: deadline)).Requisition;
        await new ResultsInterpretationService.ResultsInterpretationServiceClient(invoker).SubmitResultsAsync(new SubmitResultsRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            RequisitionId = placed.Id,
            ServiceRequestIds = { placed.ServiceRequests[0].Id },
            Metadata = new ReportMetadata { Status = ReportStatus.Partial, SpecimenNumber = "S-OTEL" },
            Results = { new Marker { Name = "Potassium", Slug = "potassium", Unit = "mmol/L", NumericValue = 6.6, MinRangeValue = 3.5, MaxRangeValue = 5.1 } },
        }, deadline: deadline);
        Assert.True(await subscription.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout));
        await Eventually.HoldsAsync(() => !_webhookTraceparents.IsEmpty, Timeout, "the webhook POST");

        // The order: CreateRequisition, and inside it Requisition's call to ServiceRequest.
        var created = await SpanAsync(s => s["rpc.method"] == "CreateRequisition" && s.Span.Kind == Span.Types.SpanKind.Server, "CreateRequisition's server span");
        Assert.Equal("labmesh.requisition.v1.RequisitionService/CreateRequisition", created.Span.Name);
        Assert.Equal("grpc", created["rpc.system"]);
        Assert.Equal("0", created["rpc.grpc.status_code"]);
        Assert.Equal("all-in-one", created.ResourceAttribute("service.name"));
        Assert.Equal("labmesh", created.ResourceAttribute("service.namespace"));
        Assert.False(string.IsNullOrEmpty(created.ResourceAttribute("service.instance.id")));
        Assert.False(string.IsNullOrEmpty(created.ResourceAttribute("service.version")));
        var peer = await SpanAsync(
            s => s.TraceId == created.TraceId && s.Span.Kind == Span.Types.SpanKind.Server && s["rpc.service"] == "labmesh.servicerequest.v1.ServiceRequestService",
            "ServiceRequest's server span in CreateRequisition's trace");
        var peerCaller = _otlp.Spans.Single(s => s.SpanId == peer.ParentSpanId);
        Assert.Equal(Span.Types.SpanKind.Client, peerCaller.Span.Kind);
        AssertDescends(peerCaller, created);

        // The result: SubmitResults -> outbox publish -> ingest -> Subscribe delivery and webhook -> its POST.
        var submitted = await SpanAsync(s => s["rpc.method"] == "SubmitResults" && s.Span.Kind == Span.Types.SpanKind.Server, "SubmitResults' server span");
        const string Critical = "labtest.result.critical";
        var publish = await SpanAsync(s => s.Span.Name == "publish " + Critical && s.TraceId == submitted.TraceId, "the critical event's publish");
        var ingest = await SpanAsync(s => s.Span.Name == "ingest " + Critical && s.TraceId == submitted.TraceId, "its ingest");
        var deliver = await SpanAsync(s => s.Span.Name == "deliver " + Critical && s.TraceId == submitted.TraceId, "its Subscribe delivery");
        var webhook = await SpanAsync(s => s.Span.Name == "webhook " + Critical && s.TraceId == submitted.TraceId, "its webhook delivery");
        var post = await SpanAsync(s => s.ParentSpanId == webhook.SpanId && s.Span.Kind == Span.Types.SpanKind.Client, "the webhook's POST");
        Assert.Equal(Span.Types.SpanKind.Producer, publish.Span.Kind);
        Assert.Equal(Span.Types.SpanKind.Consumer, ingest.Span.Kind);
        Assert.Equal("POST", post["http.request.method"]);
        Assert.Equal("delivered", webhook["labmesh.webhook.decision"]);
        foreach (var span in new[] { publish, ingest, deliver, webhook })
        {
            Assert.Equal(Critical, span["labmesh.event.type"]);
            AssertDescends(span, submitted);
        }

        // The webhook's receiver is handed the same trace (the POST's traceparent).
        Assert.Contains(_webhookTraceparents, header => header is not null && header.Split('-')[1] == submitted.TraceId);

        // Metrics with the semantic conventions' names and LabMesh's figures, low-cardinality attributes only.
        await MetricAsync("rpc.server.call.duration", p => p["rpc.method"] == "SubmitResults" && p["rpc.grpc.status_code"] == "0");
        await MetricAsync("rpc.client.call.duration", p => p["rpc.service"] == "labmesh.servicerequest.v1.ServiceRequestService");
        await MetricAsync("labmesh.requisitions.placed", p => p["labmesh.modality"] == "walk_in_test");
        await MetricAsync("labmesh.results.interpreted", p => p["labmesh.interpretation"] == "critical");
        await MetricAsync("labmesh.critical_results.opened", _ => true);
        await MetricAsync("labmesh.webhook.attempts", p => p["labmesh.webhook.decision"] == "delivered" && p["labmesh.webhook.response"] == "2xx");
        await MetricAsync("http.server.request.duration", _ => true);
        await MetricAsync("dotnet.gc.collections", _ => true);

        // The escalation of the unacknowledged result: a span for the pass that escalated it, none for the empty passes.
        var escalation = await SpanAsync(s => s.Span.Name == "escalate overdue critical results", "the escalation pass's span");
        Assert.Equal("1", escalation["labmesh.critical_results.escalated"]);
        Assert.DoesNotContain(_otlp.Spans, s => s.Span.Name == escalation.Span.Name && s["labmesh.critical_results.escalated"] == "0");
        await MetricAsync("labmesh.critical_results.escalated", _ => true);
        await MetricAsync("labmesh.outbox.oldest_unsent.age", p => p["labmesh.service"] == "notification");

        // Logs, correlated: the webhook attempt's line carries the order's trace.
        var attempt = await Eventually.MatchAsync(
            () => Task.FromResult(_otlp.Logs.Where(l => l.Scope.Name == "LabMesh.Notification.WebhookDeliveryWorker").ToList()),
            found => found.Count > 0, Timeout, "the webhook attempt's log record");
        Assert.Equal(submitted.TraceId, Convert.ToHexStringLower(attempt[0].Record.TraceId.Span));
    }

    private async Task<ReceivedSpan> SpanAsync(Func<ReceivedSpan, bool> match, string what) =>
        (await Eventually.MatchAsync(() => Task.FromResult(_otlp.Spans.Where(match).ToList()), found => found.Count > 0, Timeout, what))[0];

    /// <summary>Fails unless <paramref name="span"/> has <paramref name="ancestor"/> among its parents.</summary>
    private void AssertDescends(ReceivedSpan span, ReceivedSpan ancestor)
    {
        var spans = _otlp.Spans.ToDictionary(s => s.SpanId, s => s);
        var path = new List<string> { span.Span.Name };
        for (var current = span; current.ParentSpanId.Length > 0 && !current.ParentSpanId.All(c => c == '0');)
        {
            if (current.ParentSpanId == ancestor.SpanId)
            {
                return;
            }

            Assert.True(spans.TryGetValue(current.ParentSpanId, out current!), $"{string.Join(" <- ", path)}: a parent was not exported");
            path.Add(current.Span.Name);
        }

        Assert.Fail($"{string.Join(" <- ", path)} does not descend from {ancestor.Span.Name}");
    }

    private async Task MetricAsync(string name, Func<Point, bool> match) =>
        await Eventually.HoldsAsync(
            () => _otlp.Metrics.Where(m => m.Metric.Name == name).SelectMany(m => Points(m.Metric)).Any(match),
            Timeout, $"metric {name} with the expected attributes");

    private static IEnumerable<Point> Points(Metric metric) => metric.DataCase switch
    {
        Metric.DataOneofCase.Sum => metric.Sum.DataPoints.Select(p => new Point(p.Attributes)),
        Metric.DataOneofCase.Gauge => metric.Gauge.DataPoints.Select(p => new Point(p.Attributes)),
        Metric.DataOneofCase.Histogram => metric.Histogram.DataPoints.Select(p => new Point(p.Attributes)),
        Metric.DataOneofCase.ExponentialHistogram => metric.ExponentialHistogram.DataPoints.Select(p => new Point(p.Attributes)),
        _ => [],
    };

    private sealed record Point(IEnumerable<KeyValue> Attributes)
    {
        public string? this[string key] => OtlpReceiver.Attribute(Attributes, key);
    }
}
