using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Grpc.Core;
using LabMesh.Grpc.Tests.Echo;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.Grpc.Tests.Runtime;

public sealed class TelemetryTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task OneTrace_SpansClientServiceAAndServiceB()
    {
        var stopped = new ConcurrentQueue<Activity>();
        using var listener = new ActivityListener
        {
            // HTTP and ASP.NET Core spans sit between a client span and the server span it calls.
            ShouldListenTo = source => source.Name is "LabMesh.Grpc" or "System.Net.Http" or "Microsoft.AspNetCore",
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = stopped.Enqueue,
        };
        ActivitySource.AddActivityListener(listener);

        await using var serviceB = await EchoServer.StartAsync();
        await using var serviceA = await TestGrpcServer.StartAsync(
            services => services.AddSingleton(new DeadlineAndCancellationTests.RelayProbe(serviceB.Server.Address)),
            app => app.MapGrpcService<DeadlineAndCancellationTests.RelayService>());
        using var channel = serviceA.CreateChannel();
        var client = new Echo.Echo.EchoClient(channel);

        using var root = new Activity("test-root").SetIdFormat(ActivityIdFormat.W3C).Start();
        await client.UnaryAsync(new EchoRequest { Text = "traced" }).ResponseAsync.WaitAsync(Timeout);
        root.Stop();

        // Four gRPC spans in the root's trace, each hop below the one that made it:
        // client->A, A's server span, A's client->B, B's server span.
        var deadline = DateTime.UtcNow + Timeout;
        List<Activity> spans;
        while ((spans = [.. stopped.Where(a => a.TraceId == root.TraceId && a.Source.Name == "LabMesh.Grpc")]).Count < 4 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }
        Assert.Equal(4, spans.Count);
        var all = stopped.Where(a => a.TraceId == root.TraceId).ToDictionary(a => a.SpanId);
        var clientToA = Assert.Single(spans, s => s.Kind == ActivityKind.Client && s.ParentSpanId == root.SpanId);
        var serverA = Assert.Single(spans, s => s.Kind == ActivityKind.Server && NearestGrpcAncestor(s, all) == clientToA.SpanId);
        var clientToB = Assert.Single(spans, s => s.Kind == ActivityKind.Client && s.ParentSpanId == serverA.SpanId);
        var serverB = Assert.Single(spans, s => s.Kind == ActivityKind.Server && NearestGrpcAncestor(s, all) == clientToB.SpanId);
        foreach (var span in new[] { clientToA, serverA, clientToB, serverB })
        {
            Assert.Equal("labmesh.test.v1.Echo/Unary", span.DisplayName);
            Assert.Equal("grpc", span.GetTagItem("rpc.system"));
            Assert.Equal("labmesh.test.v1.Echo", span.GetTagItem("rpc.service"));
            Assert.Equal("Unary", span.GetTagItem("rpc.method"));
            Assert.Equal(0, span.GetTagItem("rpc.grpc.status_code"));
        }
    }

    [Fact]
    public async Task DurationHistograms_AreTaggedWithTheStatusCode()
    {
        var measurements = new ConcurrentQueue<(string Instrument, double Value, Dictionary<string, object?> Tags)>();
        using var meterListener = new MeterListener
        {
            InstrumentPublished = (instrument, l) =>
            {
                if (instrument.Meter.Name == "LabMesh.Grpc")
                {
                    l.EnableMeasurementEvents(instrument);
                }
            },
        };
        meterListener.SetMeasurementEventCallback<double>((instrument, value, tags, _) =>
        {
            var copy = new Dictionary<string, object?>();
            foreach (var tag in tags)
            {
                copy[tag.Key] = tag.Value;
            }
            measurements.Enqueue((instrument.Name, value, copy));
        });
        meterListener.Start();

        await using var echo = await EchoServer.StartAsync();
        await echo.Client.UnaryAsync(new EchoRequest()).ResponseAsync.WaitAsync(Timeout);
        await Assert.ThrowsAsync<RpcException>(() =>
            echo.Client.UnaryAsync(new EchoRequest { FailWithCode = (int)StatusCode.NotFound }).ResponseAsync.WaitAsync(Timeout));

        var deadline = DateTime.UtcNow + Timeout;
        while (!HasBoth(measurements) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }
        Assert.True(HasBoth(measurements), string.Join("\n", measurements.Select(m => $"{m.Instrument} {string.Join(",", m.Tags)}")));
        Assert.All(measurements.Where(m => Equals(m.Tags.GetValueOrDefault("rpc.service"), "labmesh.test.v1.Echo")), m =>
        {
            Assert.Equal("grpc", m.Tags["rpc.system"]);
            Assert.True(m.Value >= 0);
        });
    }

    /// <summary>The closest enclosing LabMesh.Grpc span, skipping the HTTP and ASP.NET Core spans between hops.</summary>
    private static ActivitySpanId NearestGrpcAncestor(Activity span, Dictionary<ActivitySpanId, Activity> all)
    {
        for (var parent = span.ParentSpanId; all.TryGetValue(parent, out var next); parent = next.ParentSpanId)
        {
            if (next.Source.Name == "LabMesh.Grpc")
            {
                return next.SpanId;
            }
        }
        return default;
    }

    private static bool HasBoth(IEnumerable<(string Instrument, double Value, Dictionary<string, object?> Tags)> measurements) =>
        new[] { "rpc.server.duration", "rpc.client.duration" }.All(name =>
            new[] { "0", "5" }.All(code => measurements.Any(m =>
                m.Instrument == name && Equals(m.Tags.GetValueOrDefault("rpc.grpc.status_code"), code) && Equals(m.Tags.GetValueOrDefault("rpc.method"), "Unary"))));
}
