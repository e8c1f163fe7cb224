using System.Diagnostics;
using Grpc.AspNetCore.HealthChecks;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.HealthCheck;
using LabMesh.Grpc.Tests.Reflection;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using HealthClient = Grpc.Health.V1.Health.HealthClient;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace LabMesh.Grpc.Tests.Health;

/// <summary><c>grpc.health.v1.Health</c> over real sockets, hosted the way a LabMesh service hosts it.</summary>
public sealed class HealthServiceTests
{
    private const string CatalogService = "labmesh.test.catalog.v1.Catalog";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Check_Server_IsServingOnceStarted()
    {
        await using var server = await StartAsync();
        using var channel = server.CreateChannel();

        var response = await new HealthClient(channel).CheckAsync(new HealthCheckRequest { Service = "" }).ResponseAsync.WaitAsync(Timeout);

        Assert.Equal(ServingStatus.Serving, response.Status);
        Assert.Empty(server.Logs.Errors);
    }

    [Theory]
    [InlineData(CatalogService)]
    [InlineData("grpc.health.v1.Health")]
    public async Task Check_MappedService_IsServingOnceStarted(string service)
    {
        await using var server = await StartAsync();
        using var channel = server.CreateChannel();

        var response = await new HealthClient(channel).CheckAsync(new HealthCheckRequest { Service = service }).ResponseAsync.WaitAsync(Timeout);

        Assert.Equal(ServingStatus.Serving, response.Status);
    }

    [Fact]
    public async Task Check_UnknownService_IsNotFound()
    {
        await using var server = await StartAsync();
        using var channel = server.CreateChannel();

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            new HealthClient(channel).CheckAsync(new HealthCheckRequest { Service = "no.such.Service" }).ResponseAsync.WaitAsync(Timeout));

        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Empty(server.Logs.Errors);
    }

    [Fact]
    public async Task Check_AfterSetStatus_AnswersTheNewStatus()
    {
        await using var server = await StartAsync();
        using var channel = server.CreateChannel();
        var client = new HealthClient(channel);
        var health = server.Services.GetRequiredService<HealthServiceImpl>();

        health.SetStatus(CatalogService, ServingStatus.NotServing);
        health.SetStatus("custom.Component", ServingStatus.Serving);

        Assert.Equal(ServingStatus.NotServing, (await client.CheckAsync(new HealthCheckRequest { Service = CatalogService }).ResponseAsync.WaitAsync(Timeout)).Status);
        Assert.Equal(ServingStatus.Serving, (await client.CheckAsync(new HealthCheckRequest { Service = "custom.Component" }).ResponseAsync.WaitAsync(Timeout)).Status);
    }

    [Fact]
    public async Task Check_AfterClearStatusAndClearAll_IsNotFound()
    {
        await using var server = await StartAsync();
        using var channel = server.CreateChannel();
        var client = new HealthClient(channel);
        var health = server.Services.GetRequiredService<HealthServiceImpl>();

        health.ClearStatus(CatalogService);
        var cleared = await Assert.ThrowsAsync<RpcException>(() =>
            client.CheckAsync(new HealthCheckRequest { Service = CatalogService }).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(ServingStatus.Serving, (await client.CheckAsync(new HealthCheckRequest { Service = "" }).ResponseAsync.WaitAsync(Timeout)).Status);

        health.ClearAll();
        var all = await Assert.ThrowsAsync<RpcException>(() =>
            client.CheckAsync(new HealthCheckRequest { Service = "" }).ResponseAsync.WaitAsync(Timeout));

        Assert.Equal(StatusCode.NotFound, cleared.StatusCode);
        Assert.Equal(StatusCode.NotFound, all.StatusCode);
    }

    [Fact]
    public async Task Check_StatusSetBeforeStart_IsNotOverriddenByTheServingDefault()
    {
        await using var server = await StartAsync(beforeStart: health => health.SetStatus(CatalogService, ServingStatus.NotServing));
        using var channel = server.CreateChannel();

        var response = await new HealthClient(channel).CheckAsync(new HealthCheckRequest { Service = CatalogService }).ResponseAsync.WaitAsync(Timeout);

        Assert.Equal(ServingStatus.NotServing, response.Status);
    }

    [Fact]
    public async Task Watch_KnownService_SendsTheCurrentStatusAtOnce()
    {
        await using var server = await StartAsync();
        using var channel = server.CreateChannel();

        using var call = new HealthClient(channel).Watch(new HealthCheckRequest { Service = CatalogService });

        Assert.Equal(ServingStatus.Serving, await NextStatusAsync(call.ResponseStream));
    }

    [Fact]
    public async Task Watch_SetStatus_SendsEveryChange()
    {
        await using var server = await StartAsync();
        using var channel = server.CreateChannel();
        var health = server.Services.GetRequiredService<HealthServiceImpl>();
        using var call = new HealthClient(channel).Watch(new HealthCheckRequest { Service = CatalogService });
        Assert.Equal(ServingStatus.Serving, await NextStatusAsync(call.ResponseStream));

        health.SetStatus(CatalogService, ServingStatus.NotServing);
        Assert.Equal(ServingStatus.NotServing, await NextStatusAsync(call.ResponseStream));

        health.SetStatus(CatalogService, ServingStatus.Serving);
        Assert.Equal(ServingStatus.Serving, await NextStatusAsync(call.ResponseStream));

        health.ClearStatus(CatalogService);
        Assert.Equal(ServingStatus.ServiceUnknown, await NextStatusAsync(call.ResponseStream));
    }

    [Fact]
    public async Task Watch_UnknownService_SendsServiceUnknownAndStaysOpenUntilItAppears()
    {
        await using var server = await StartAsync();
        using var channel = server.CreateChannel();
        var health = server.Services.GetRequiredService<HealthServiceImpl>();
        using var call = new HealthClient(channel).Watch(new HealthCheckRequest { Service = "late.Service" });

        Assert.Equal(ServingStatus.ServiceUnknown, await NextStatusAsync(call.ResponseStream));

        health.SetStatus("late.Service", ServingStatus.Serving);
        Assert.Equal(ServingStatus.Serving, await NextStatusAsync(call.ResponseStream));
    }

    [Fact]
    public async Task Watch_ClientCancels_ServerDropsTheWatch()
    {
        await using var server = await StartAsync();
        using var channel = server.CreateChannel();
        var health = server.Services.GetRequiredService<HealthServiceImpl>();
        using var cancel = new CancellationTokenSource();
        var call = new HealthClient(channel).Watch(new HealthCheckRequest { Service = "" }, cancellationToken: cancel.Token);
        Assert.Equal(ServingStatus.Serving, await NextStatusAsync(call.ResponseStream));
        Assert.Equal(1, health.WatchCount);

        await cancel.CancelAsync();
        call.Dispose();

        await WaitUntilAsync(() => health.WatchCount == 0);
        Assert.Empty(server.Logs.Errors);
    }

    [Fact]
    public async Task Watch_WhenTheAppStops_SendsNotServingThenEndsWithoutHoldingUpShutdown()
    {
        var server = await StartAsync();
        var stopping = Task.CompletedTask;
        try
        {
            using var channel = server.CreateChannel();
            using var all = new HealthClient(channel).Watch(new HealthCheckRequest { Service = "" });
            using var one = new HealthClient(channel).Watch(new HealthCheckRequest { Service = CatalogService });
            Assert.Equal(ServingStatus.Serving, await NextStatusAsync(all.ResponseStream));
            Assert.Equal(ServingStatus.Serving, await NextStatusAsync(one.ResponseStream));

            stopping = server.DisposeAsync().AsTask();

            Assert.Equal(ServingStatus.NotServing, await NextStatusAsync(all.ResponseStream));
            Assert.Equal(ServingStatus.NotServing, await NextStatusAsync(one.ResponseStream));
            Assert.False(await all.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout));
            Assert.False(await one.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout));
            Assert.Equal(StatusCode.OK, all.GetStatus().StatusCode);
            // Open watches must not make Kestrel wait for the host's 30 s shutdown timeout.
            await stopping.WaitAsync(Timeout);
        }
        finally
        {
            if (stopping == Task.CompletedTask)
            {
                await server.DisposeAsync();
            }
        }
        Assert.Empty(server.Logs.Errors);
    }

    [Fact]
    public async Task Check_DuringTheDrainDelay_IsNotServingAndStillAnswered()
    {
        var drainDelay = TimeSpan.FromSeconds(2);
        var server = await StartAsync(options => options.DrainDelay = drainDelay);
        var stopping = Task.CompletedTask;
        try
        {
            using var channel = server.CreateChannel();
            var client = new HealthClient(channel);
            using var watch = client.Watch(new HealthCheckRequest { Service = "" });
            Assert.Equal(ServingStatus.Serving, await NextStatusAsync(watch.ResponseStream));

            var clock = Stopwatch.StartNew();
            stopping = server.DisposeAsync().AsTask();
            Assert.Equal(ServingStatus.NotServing, await NextStatusAsync(watch.ResponseStream));

            var duringDrain = await client.CheckAsync(new HealthCheckRequest { Service = CatalogService }).ResponseAsync.WaitAsync(Timeout);
            Assert.Equal(ServingStatus.NotServing, duringDrain.Status);
            Assert.True(clock.Elapsed < drainDelay, $"The check was answered only after {clock.Elapsed}.");

            Assert.False(await watch.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout));
            Assert.True(clock.Elapsed >= drainDelay - TimeSpan.FromMilliseconds(100), $"The watch ended after {clock.Elapsed}, before the drain delay.");
            await stopping.WaitAsync(Timeout);
        }
        finally
        {
            if (stopping == Task.CompletedTask)
            {
                await server.DisposeAsync();
            }
        }
    }

    [Fact]
    public void AddGrpcHealthChecks_Twice_RegistersOneLifecycleService()
    {
        var services = new ServiceCollection();
        services.AddGrpcHealthChecks();
        services.AddGrpcHealthChecks(options => options.DrainDelay = TimeSpan.FromSeconds(1));

        Assert.Single(services, d => d.ServiceType == typeof(Microsoft.Extensions.Hosting.IHostedService));
        Assert.Single(services, d => d.ServiceType == typeof(HealthServiceImpl));
    }

    private static Task<TestGrpcServer> StartAsync(Action<GrpcHealthChecksOptions>? configure = null, Action<HealthServiceImpl>? beforeStart = null) =>
        TestGrpcServer.StartAsync(
            services => services.AddGrpcHealthChecks(configure ?? (_ => { })),
            endpoints =>
            {
                endpoints.MapGrpcHealthChecksService();
                endpoints.MapGrpcService<CatalogTestService>();
                beforeStart?.Invoke(endpoints.ServiceProvider.GetRequiredService<HealthServiceImpl>());
            });

    private static async Task<ServingStatus> NextStatusAsync(IAsyncStreamReader<HealthCheckResponse> stream)
    {
        Assert.True(await stream.MoveNext(CancellationToken.None).WaitAsync(Timeout), "The watch ended instead of sending a status.");
        return stream.Current.Status;
    }

    private static async Task WaitUntilAsync(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < Timeout, "The condition did not become true in time.");
            await Task.Delay(20);
        }
    }
}
