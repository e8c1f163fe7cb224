using Grpc.AspNetCore.Server;
using Grpc.HealthCheck;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace Grpc.AspNetCore.HealthChecks.Internal;

/// <summary>
/// Drives <see cref="HealthServiceImpl"/> through the host's lifetime: SERVING once started, NOT_SERVING as
/// soon as shutdown begins, then (after the drain delay) ends Watch streams so they do not hold up Kestrel's
/// graceful shutdown.
/// </summary>
/// <remarks>
/// The host runs every <see cref="IHostedLifecycleService.StoppingAsync"/> before any hosted service's
/// <see cref="IHostedService.StopAsync"/>, so the drain delay passes while Kestrel still accepts calls.
/// </remarks>
internal sealed partial class HealthLifecycleService(
    HealthServiceImpl health,
    GrpcServiceRegistry registry,
    IHostApplicationLifetime lifetime,
    IOptions<GrpcHealthChecksOptions> options,
    TimeProvider timeProvider,
    ILogger<HealthLifecycleService> logger) : IHostedLifecycleService, IDisposable
{
    private CancellationTokenRegistration _stoppingRegistration;

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        // ApplicationStopping fires first thing in a shutdown (also on SIGTERM/Ctrl+C), before hosted
        // services are stopped.
        _stoppingRegistration = lifetime.ApplicationStopping.Register(static state => ((HealthLifecycleService)state!).MarkNotServing(), this);
        return Task.CompletedTask;
    }

    public Task StartedAsync(CancellationToken cancellationToken)
    {
        if (options.Value.MarkMappedServicesServing && !lifetime.ApplicationStopping.IsCancellationRequested)
        {
            health.SetDefaultStatus("", ServingStatus.Serving);
            foreach (var service in registry.Services)
            {
                health.SetDefaultStatus(service.Name, ServingStatus.Serving);
            }
            LogServing(logger, registry.Services.Count);
        }
        return Task.CompletedTask;
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        // Normally already done by the ApplicationStopping callback; repeated in case the host was stopped
        // without it firing first.
        MarkNotServing();
        var delay = options.Value.DrainDelay;
        if (delay > TimeSpan.Zero)
        {
            LogDraining(logger, delay);
            try
            {
                await Task.Delay(delay, timeProvider, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // The shutdown timeout ran out before the drain delay: stop now.
            }
        }
        health.EndWatches();
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _stoppingRegistration.Dispose();

    private void MarkNotServing()
    {
        var changed = health.SetAllNotServing();
        if (changed > 0)
        {
            LogNotServing(logger, changed);
        }
    }

    [LoggerMessage(1, LogLevel.Debug, "gRPC health: the server and {ServiceCount} mapped services are SERVING.")]
    private static partial void LogServing(ILogger logger, int serviceCount);

    [LoggerMessage(2, LogLevel.Information, "gRPC health: shutting down, {Count} statuses turned NOT_SERVING.")]
    private static partial void LogNotServing(ILogger logger, int count);

    [LoggerMessage(3, LogLevel.Information, "gRPC health: draining for {DrainDelay} before the server stops.")]
    private static partial void LogDraining(ILogger logger, TimeSpan drainDelay);
}
