using Grpc.AspNetCore.HealthChecks;
using Grpc.AspNetCore.HealthChecks.Internal;
using Grpc.HealthCheck;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the <c>grpc.health.v1.Health</c> service.</summary>
public static class GrpcHealthServiceCollectionExtensions
{
    /// <summary>
    /// Adds the health service (a singleton <see cref="HealthServiceImpl"/>, resolve it to set statuses) and
    /// ties it to the host's lifetime: every mapped gRPC service and the server itself (<c>""</c>) turn
    /// SERVING once the application has started and NOT_SERVING when it begins shutting down.
    /// Map it with <c>MapGrpcHealthChecksService()</c>.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <returns>The same service collection.</returns>
    public static IServiceCollection AddGrpcHealthChecks(this IServiceCollection services) =>
        services.AddGrpcHealthChecks(_ => { });

    /// <summary>Adds the health service as <see cref="AddGrpcHealthChecks(IServiceCollection)"/> does, with options.</summary>
    /// <param name="services">The service collection.</param>
    /// <param name="configure">Configures <see cref="GrpcHealthChecksOptions"/>, e.g. a drain delay for shutdown.</param>
    /// <returns>The same service collection.</returns>
    public static IServiceCollection AddGrpcHealthChecks(this IServiceCollection services, Action<GrpcHealthChecksOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configure);
        services.AddOptions<GrpcHealthChecksOptions>().Configure(configure);
        services.TryAddSingleton<HealthServiceImpl>();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, HealthLifecycleService>());
        return services;
    }
}
