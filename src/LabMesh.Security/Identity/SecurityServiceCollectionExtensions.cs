using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;

namespace LabMesh.Security.Identity;

/// <summary>Registers bearer-token identity (SECURITY.md).</summary>
public static class SecurityServiceCollectionExtensions
{
    /// <summary>
    /// Binds <see cref="SecurityOptions"/> from <c>LabMesh:Security</c> and registers <see cref="SecurityKeys"/>
    /// (settled once the server listens: see <see cref="SecurityKeys.Settle"/>), <see cref="ServiceTokens"/>
    /// and <see cref="AuthorizationInterceptor"/>. In the Development environment a service alone on loopback
    /// may use the development key. Calling it again changes nothing.
    /// </summary>
    public static IServiceCollection AddLabMeshSecurity(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);
        if (services.Any(d => d.ServiceType == typeof(SecurityKeys)))
        {
            return services;
        }

        services.AddOptions<SecurityOptions>().Bind(configuration.GetSection(SecurityOptions.Section));
        services.AddSingleton<SecurityKeys>();
        services.AddSingleton<ServiceTokens>();
        services.AddSingleton<AuthorizationInterceptor>();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, SecurityKeysStartup>());
        return services;
    }
}
