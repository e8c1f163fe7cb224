using LabMesh.Contracts.Requisition.V1;
using LabMesh.Testing;
using LabMesh.Testing.Otlp;

namespace LabMesh.ServiceDefaults.Tests.Hosting;

/// <summary>
/// What a service on PostgreSQL exports: SQL as spans of the call that ran it, never as traces of their own
/// (the outbox relay polls several times a second and would bury the orders), and the instance id the
/// operator gave it.
/// </summary>
public sealed class TelemetryExportTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Sql_IsTracedInsideCalls_NotForTheRelaysPolls_AndTheOperatorsInstanceIdIsKept()
    {
        await using var otlp = await OtlpReceiver.StartAsync();
        var settings = await TestSettings.CreateAsync(Backend.Postgres);
        foreach (var (key, value) in otlp.Settings)
        {
            settings[key] = value;
        }

        settings["OTEL_RESOURCE_ATTRIBUTES"] = "service.instance.id=requisition-7,deployment.environment.name=test";
        await using var host = await MeshHosts.StartRequisitionsAsync(settings);
        using var channel = host.CreateChannel();

        await new RequisitionService.RequisitionServiceClient(TestCaller.Invoker(channel, "otel-sql"))
            .ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: DateTime.UtcNow + Timeout);
        var list = await Eventually.MatchAsync(
            () => Task.FromResult(otlp.Spans.Where(s => s["rpc.method"] == "ListRequisitions").ToList()), found => found.Count > 0, Timeout, "ListRequisitions' span");
        var sql = await Eventually.MatchAsync(
            () => Task.FromResult(otlp.Spans.Where(s => s.Scope.Name == "Npgsql" && s.TraceId == list[0].TraceId).ToList()), found => found.Count > 0, Timeout,
            "ListRequisitions' SQL");

        // By now the relay has polled its outbox every 50 ms since the host started: none of it is a trace.
        Assert.All(sql, s => Assert.NotEqual("", s.ParentSpanId.Trim('0')));
        // This host's database only: the host's tracer hears every Npgsql command of the test process, and other
        // tests' fixtures (creating their databases) run in parallel outside any span.
        var database = new Npgsql.NpgsqlConnectionStringBuilder(settings["ConnectionStrings:Postgres"]).Database;
        Assert.All(sql, s => Assert.Equal(database, s["db.namespace"]));
        var roots = otlp.Spans.Where(s => s.Scope.Name == "Npgsql" && s["db.namespace"] == database && s.ParentSpanId.Trim('0') == "").ToList();
        Assert.True(roots.Count == 0, string.Join("\n", roots.Take(5).Select(s => s.Span.Name + " " + string.Join(",", s.Span.Attributes.Select(a => a.Key + "=" + OtlpReceiver.Value(a.Value))))));
        Assert.Equal("requisition-7", list[0].ResourceAttribute("service.instance.id"));
        host.Logs.AssertNoErrors();
    }

    [Fact]
    public async Task RedisCommands_AreSpansOfTheirCall_AndTheConsumerGroupsLagIsAGauge()
    {
        await using var otlp = await OtlpReceiver.StartAsync();
        await using var redis = await RedisServer.StartNewAsync();
        var settings = await TestSettings.CreateAsync(Backend.Sqlite, redis.Configuration);
        foreach (var (key, value) in otlp.Settings)
        {
            settings[key] = value;
        }

        await using var host = await MeshHosts.StartAllInOneAsync(settings, FreePort.Next());
        using var channel = host.CreateChannel();
        var client = new RequisitionService.RequisitionServiceClient(TestCaller.Invoker(channel, "otel-redis"));
        var created = await client.CreateRequisitionAsync(new CreateRequisitionRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            Patient = new Contracts.Common.V1.Patient { Id = "otel-redis-patient" },
            Modality = Contracts.Common.V1.TestModality.Testkit,
            Place = true,
            Tests = { new OrderedTest { Code = "BMP", PartnerId = "lab-a" } },
        }, deadline: DateTime.UtcNow + Timeout);
        await client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = created.Requisition.Id }, deadline: DateTime.UtcNow + Timeout);

        var status = await Eventually.MatchAsync(
            () => Task.FromResult(otlp.Spans.Where(s => s["rpc.method"] == "GetRequisitionStatus").ToList()), found => found.Count > 0, Timeout, "GetRequisitionStatus' span");
        await Eventually.HoldsAsync(
            () => otlp.Spans.Any(s => s.Scope.Name.Contains("StackExchangeRedis", StringComparison.Ordinal) && s.ParentSpanId == status[0].SpanId),
            Timeout, "the status cache's Redis command as a child of GetRequisitionStatus");
        // The event the order made reached Notification's consumer group, which is then caught up: lag 0, nothing pending.
        await Eventually.HoldsAsync(
            () => otlp.Metrics.Any(m => m.Metric.Name == "labmesh.events.consumer.lag" && m.Metric.Gauge.DataPoints.Any(p => p.AsInt == 0
                && OtlpReceiver.Attribute(p.Attributes, "messaging.consumer.group.name") is { Length: > 0 })),
            Timeout, "labmesh.events.consumer.lag of the consumer group");
        Assert.Contains(otlp.Metrics, m => m.Metric.Name == "labmesh.events.consumer.pending");
        Assert.DoesNotContain(otlp.Spans, s => s.Scope.Name.Contains("StackExchangeRedis", StringComparison.Ordinal) && s.ParentSpanId.Trim('0') == "");
        host.Logs.AssertNoErrors();
    }
}
