using Grpc.AspNetCore.Server;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Builder returned by <see cref="GrpcServiceCollectionExtensions.AddGrpc"/>.</summary>
public interface IGrpcServerBuilder
{
    /// <summary>The service collection.</summary>
    IServiceCollection Services { get; }
}

/// <summary>Registers the gRPC server runtime.</summary>
public static class GrpcServiceCollectionExtensions
{
    /// <summary>Adds the gRPC server runtime; call once, before mapping services.</summary>
    public static IGrpcServerBuilder AddGrpc(this IServiceCollection services, Action<GrpcServiceOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddRouting();
        services.AddOptions();
        services.TryAddSingleton<GrpcServiceRegistry>();
        if (configure is not null)
        {
            services.Configure(configure);
        }
        return new Builder(services);
    }

    private sealed class Builder(IServiceCollection services) : IGrpcServerBuilder
    {
        public IServiceCollection Services { get; } = services;
    }
}
