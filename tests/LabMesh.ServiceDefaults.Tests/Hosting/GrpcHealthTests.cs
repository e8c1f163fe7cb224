using Grpc.Core;
using Grpc.Health.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.ServiceDefaults.Hosting;
using LabMesh.Messaging.Redis;
using LabMesh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace LabMesh.ServiceDefaults.Tests.Hosting;

/// <summary>
/// grpc.health.v1 on grpc-dotnet's health checks, as Kubernetes probes and deploy/local use it: "" and every
/// mapped service SERVING once started, "liveness" apart from the store, NOT_SERVING while draining with the
/// listener still open, and readiness that follows the store.
/// </summary>
public sealed class GrpcHealthTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task EveryMappedServiceAndTheServer_AreServing_AnUnknownNameIsNotFound()
    {
        await using var host = await MeshHosts.StartServiceRequestsAsync(await TestSettings.CreateAsync(Backend.Sqlite));
        using var channel = host.CreateChannel();
        var health = new Health.HealthClient(channel);

        foreach (var name in new[] { "", GrpcHealth.Liveness, ServiceRequestService.Descriptor.FullName, "labmesh.audit.v1.AuditService", "grpc.health.v1.Health" })
        {
            var response = await health.CheckAsync(new HealthCheckRequest { Service = name }, deadline: DateTime.UtcNow + Timeout);
            Assert.True(response.Status == ServingStatus.Serving, $"'{name}' is {response.Status}");
        }

        var unknown = await Assert.ThrowsAsync<RpcException>(() =>
            health.CheckAsync(new HealthCheckRequest { Service = "labmesh.nothing.v1.Nothing" }, deadline: DateTime.UtcNow + Timeout).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        host.Logs.AssertNoErrors();
    }

    [Fact]
    public async Task Shutdown_TurnsEveryNameNotServing_WhileTheListenerStillAnswers_ForTheDrainDelay()
    {
        var settings = await TestSettings.CreateAsync(Backend.Sqlite);
        settings["LabMesh:Health:DrainDelay"] = "00:00:05";
        var host = await MeshHosts.StartServiceRequestsAsync(settings);
        using var channel = host.CreateChannel();
        var health = new Health.HealthClient(channel);
        using var watch = health.Watch(new HealthCheckRequest { Service = ServiceRequestService.Descriptor.FullName });
        Assert.True(await watch.ResponseStream.MoveNext().WaitAsync(Timeout));
        Assert.Equal(ServingStatus.Serving, watch.ResponseStream.Current.Status);

        var stopwatch = System.Diagnostics.Stopwatch.StartNew();
        var stopping = host.DisposeAsync().AsTask();

        // Watch hears NOT_SERVING, and its call ends, when the drain begins, not when it is over.
        var last = ServingStatus.Serving;
        while (await watch.ResponseStream.MoveNext().WaitAsync(Timeout))
        {
            last = watch.ResponseStream.Current.Status;
        }

        Assert.Equal(ServingStatus.NotServing, last);
        Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(4), $"Watch heard NOT_SERVING only after {stopwatch.Elapsed}");

        // Check during the drain: NOT_SERVING, answered (the listener is open).
        foreach (var name in new[] { "", ServiceRequestService.Descriptor.FullName, GrpcHealth.Liveness })
        {
            var status = await Eventually.MatchAsync(
                async () => (await health.CheckAsync(new HealthCheckRequest { Service = name }, deadline: DateTime.UtcNow + Timeout)).Status,
                s => s == ServingStatus.NotServing, TimeSpan.FromSeconds(2), $"'{name}' NOT_SERVING while draining");
            Assert.Equal(ServingStatus.NotServing, status);
        }

        await stopping.WaitAsync(Timeout);
        Assert.True(stopwatch.Elapsed >= TimeSpan.FromSeconds(4.9), $"the host stopped after {stopwatch.Elapsed}, before its 5 s drain delay");
        host.Logs.AssertNoErrors();
    }

    [Fact]
    public async Task StoreDown_IsNotServing_ButLivenessStaysServing()
    {
        await using var postgres = await PostgresServer.StartAsync();
        var settings = await TestSettings.CreateAsync(Backend.Sqlite);
        settings["ConnectionStrings:Postgres"] = await postgres.CreateDatabaseAsync("health");
        await using var host = await MeshHosts.StartServiceRequestsAsync(settings);
        using var channel = host.CreateChannel();
        var health = new Health.HealthClient(channel);
        Assert.Equal(ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow + Timeout)).Status);

        await postgres.StopAsync();

        Assert.Equal(ServingStatus.NotServing, (await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow + Timeout)).Status);
        Assert.Equal(ServingStatus.NotServing,
            (await health.CheckAsync(new HealthCheckRequest { Service = ServiceRequestService.Descriptor.FullName }, deadline: DateTime.UtcNow + Timeout)).Status);
        Assert.Equal(ServingStatus.Serving,
            (await health.CheckAsync(new HealthCheckRequest { Service = GrpcHealth.Liveness }, deadline: DateTime.UtcNow + Timeout)).Status);
        Assert.Contains(host.Logs.Records, r => r.Level == Microsoft.Extensions.Logging.LogLevel.Warning && r.Message.Contains("does not answer", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RedisDown_StaysServing_AndShowsInTheGaugeAndOneWarningPerOutage()
    {
        await using var redis = await RedisServer.StartNewAsync();
        await using var host = await MeshHosts.StartServiceRequestsAsync(await TestSettings.CreateAsync(Backend.Sqlite, redis.Configuration));
        using var channel = host.CreateChannel();
        var health = new Health.HealthClient(channel);
        var connection = host.Services.GetRequiredService<RedisConnection>();
        using var gauge = new RedisGauge(redis.Configuration);
        await Eventually.HoldsAsync(() => gauge.Read() == 1, Timeout, "the gauge shows Redis connected");

        for (var outage = 1; outage <= 2; outage++)
        {
            await redis.StopAsync();
            await Eventually.HoldsAsync(() => gauge.Read() == 0, Timeout, "the gauge shows Redis unreachable");

            // Every call during the outage fails; none of them is logged again.
            for (var i = 0; i < 20; i++)
            {
                await Assert.ThrowsAsync<RedisUnavailableException>(() => connection.GetLastEventPositionAsync(CancellationToken.None));
            }

            Assert.Equal(ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow + Timeout)).Status);
            Assert.Equal(ServingStatus.Serving,
                (await health.CheckAsync(new HealthCheckRequest { Service = ServiceRequestService.Descriptor.FullName }, deadline: DateTime.UtcNow + Timeout)).Status);

            await redis.StartAsync();
            await Eventually.HoldsAsync(() => gauge.Read() == 1, Timeout, "the gauge shows Redis back");
            await Eventually.HoldsAsync(() => RedisLines(host, LogLevel.Information, "reachable again") == outage, Timeout, "the end of the outage is logged");
            Assert.Equal(outage, RedisLines(host, LogLevel.Warning, "is unreachable"));
        }

        host.Logs.AssertNoErrors();
    }

    private static int RedisLines(ServiceHost host, LogLevel level, string fragment) =>
        host.Logs.Records.Count(r => r.Category == typeof(RedisConnection).FullName && r.Level == level && r.Message.Contains(fragment, StringComparison.Ordinal));

    /// <summary>Reads meter LabMesh.Redis's labmesh.redis.connected for one Redis server (other tests' connections run beside).</summary>
    private sealed class RedisGauge : IDisposable
    {
        private readonly System.Diagnostics.Metrics.MeterListener _listener = new();
        private readonly string _server;
        private int? _last;

        public RedisGauge(string server)
        {
            _server = server;
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == RedisConnection.MeterName && instrument.Name == "labmesh.redis.connected")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<int>((_, value, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag.Key == "server.address" && Equals(tag.Value, _server))
                    {
                        _last = value;
                    }
                }
            });
            _listener.Start();
        }

        public int? Read()
        {
            _last = null;
            _listener.RecordObservableInstruments();
            return _last;
        }

        public void Dispose() => _listener.Dispose();
    }
}
