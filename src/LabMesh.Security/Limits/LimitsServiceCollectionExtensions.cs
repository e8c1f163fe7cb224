using Grpc.AspNetCore.Server;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace LabMesh.Security.Limits;

public static class LimitsServiceCollectionExtensions
{
    /// <summary>
    /// Binds <see cref="LimitsOptions"/> from <c>LabMesh:Limits</c>, registers the shared
    /// <see cref="CallerLimiter"/> and <see cref="RateLimitInterceptor"/>, and applies
    /// <see cref="LimitsOptions.MaxRequestBytes"/> as the server's maximum receive message size.
    /// The interceptor still has to be added to the gRPC options' interceptors.
    /// </summary>
    public static IServiceCollection AddLabMeshLimits(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        services.AddOptions<LimitsOptions>().Bind(configuration.GetSection(LimitsOptions.SectionName)).Validate(o =>
        {
            o.Validate();
            return true;
        });
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<CallerLimiter>();
        services.TryAddSingleton<RateLimitInterceptor>();
        services.AddOptions<GrpcServiceOptions>().Configure<IOptions<LimitsOptions>>((grpc, limits) =>
            grpc.MaxReceiveMessageSize = limits.Value.MaxRequestBytes);
        return services;
    }
}
