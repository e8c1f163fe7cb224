using Grpc.AspNetCore.Server;
using Grpc.Reflection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the gRPC server reflection services.</summary>
public static class GrpcReflectionServiceExtensions
{
    /// <summary>
    /// Adds <c>grpc.reflection.v1</c> and <c>grpc.reflection.v1alpha</c>, describing every service mapped with
    /// <c>MapGrpcService</c>. Map them with <c>MapGrpcReflectionService()</c>.
    /// </summary>
    /// <param name="services">The service collection.</param>
    /// <returns>The same service collection.</returns>
    public static IServiceCollection AddGrpcReflection(this IServiceCollection services)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.TryAddSingleton<GrpcServiceRegistry>();
        services.TryAddSingleton(sp => new ReflectionV1ServiceImpl(sp.GetRequiredService<GrpcServiceRegistry>()));
        services.TryAddSingleton(sp => new ReflectionServiceImpl(sp.GetRequiredService<GrpcServiceRegistry>()));
        return services;
    }
}
