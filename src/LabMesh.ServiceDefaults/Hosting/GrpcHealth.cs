using Grpc.AspNetCore.HealthChecks;
using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LabMesh.ServiceDefaults.Hosting;

/// <summary>Section <c>LabMesh:Health</c>: how <c>grpc.health.v1.Health</c> behaves around shutdown.</summary>
public sealed class HealthOptions
{
    public const string Section = "LabMesh:Health";

    /// <summary>
    /// How long the process keeps answering calls after every status has turned NOT_SERVING at shutdown, so
    /// probes and load balancers take it out of rotation before its listener closes. Zero (the default, right
    /// for a laptop) stops at once; in Kubernetes give about one readiness period. Part of the host's shutdown
    /// timeout, so keep it well below that.
    /// </summary>
    public TimeSpan DrainDelay { get; set; } = TimeSpan.Zero;
}

/// <summary>
/// <c>grpc.health.v1.Health</c> on grpc-dotnet's health checks integration, with what upstream leaves out:
/// <list type="bullet">
/// <item><c>""</c> and every gRPC service the process maps (read from its endpoints, so nothing is listed by
/// hand) are SERVING once the host has started, every registered check passes (each store answers) and it is
/// not shutting down; upstream maps only names configured one by one and answers NOT_FOUND for the rest.</item>
/// <item><c>liveness</c> says only that the process runs and is not shutting down: a database outage must
/// make replicas unready, not restart them.</item>
/// <item>At shutdown every name turns NOT_SERVING at once (upstream ends Watch calls with it), and the listener
/// stays open for <see cref="HealthOptions.DrainDelay"/> (upstream has no drain).</item>
/// </list>
/// Check runs the checks on every call (probes see the store as it is now); Watch follows the results the
/// health check publisher computes every <see cref="PublishPeriod"/>.
/// </summary>
public static partial class GrpcHealth
{
    /// <summary>The health service name that reports only whether the process runs (Kubernetes liveness probes).</summary>
    public const string Liveness = "liveness";

    /// <summary>How often Watch calls see the checks run again.</summary>
    public static readonly TimeSpan PublishPeriod = TimeSpan.FromSeconds(5);

    private const string LifecycleCheck = "lifecycle";

    /// <summary>Registers the health service, the lifecycle check and the drain (<see cref="HealthOptions"/>).</summary>
    public static IServiceCollection AddLabMeshHealth(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<HealthOptions>().Bind(configuration.GetSection(HealthOptions.Section));
        services.AddGrpcHealthChecks()
            .AddCheck<HostLifecycleCheck>(LifecycleCheck);
        services.Configure<HealthCheckPublisherOptions>(o =>
        {
            o.Delay = TimeSpan.Zero;
            o.Period = PublishPeriod;
        });
        services.Configure<GrpcHealthChecksOptions>(o =>
        {
            o.Services.Clear();
            o.Services.Map(Liveness, r => r.Name == LifecycleCheck);
            // Every registered check decides readiness: this one and each store's (AddLabMeshStore).
            o.Services.Map("", _ => true);
        });
        services.AddHostedService<HealthDrain>();
        return services;
    }

    /// <summary>
    /// Gives every gRPC service <paramref name="endpoints"/> maps the same health as <c>""</c>. Call it once
    /// everything is mapped (MapDefaultEndpoints does, last).
    /// </summary>
    public static void MapHealthOfEveryService(this IEndpointRouteBuilder endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        var options = endpoints.ServiceProvider.GetRequiredService<IOptions<GrpcHealthChecksOptions>>().Value;
        var names = endpoints.DataSources
            .SelectMany(d => d.Endpoints)
            .Select(e => e.Metadata.GetMetadata<GrpcMethodMetadata>()?.Method.ServiceName)
            .OfType<string>()
            .Distinct(StringComparer.Ordinal);
        foreach (var name in names)
        {
            options.Services.Map(name, _ => true);
        }
    }

    /// <summary>Healthy from the host's start until its shutdown begins.</summary>
    private sealed class HostLifecycleCheck(IHostApplicationLifetime lifetime) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(
                lifetime.ApplicationStopping.IsCancellationRequested ? HealthCheckResult.Unhealthy("shutting down")
                : lifetime.ApplicationStarted.IsCancellationRequested ? HealthCheckResult.Healthy()
                : HealthCheckResult.Unhealthy("starting"));
    }

    /// <summary>
    /// At shutdown, makes sure ApplicationStopping has fired (on SIGTERM it fires first; a host stopped from code
    /// runs <see cref="IHostedLifecycleService.StoppingAsync"/> before it): from then on every name is NOT_SERVING,
    /// grpc-dotnet ends Watch calls with NOT_SERVING and Subscribe streams end. Then it holds the shutdown for the
    /// drain delay while the listener still accepts calls: the host runs every StoppingAsync before it stops any
    /// hosted service, Kestrel among them.
    /// </summary>
    private sealed partial class HealthDrain(
        IHostApplicationLifetime lifetime,
        IOptions<HealthOptions> options,
        ILogger<HealthDrain> logger) : IHostedLifecycleService
    {
        public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public async Task StoppingAsync(CancellationToken cancellationToken)
        {
            lifetime.StopApplication();
            var delay = options.Value.DrainDelay;
            if (delay <= TimeSpan.Zero)
            {
                return;
            }

            LogDraining(logger, delay);
            try
            {
                await Task.Delay(delay, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                // The host's shutdown timeout ran out first: stop now.
            }
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        [LoggerMessage(Level = LogLevel.Information, Message = "gRPC health: NOT_SERVING, draining for {DrainDelay} before the listener closes")]
        private static partial void LogDraining(ILogger logger, TimeSpan drainDelay);
    }
}
