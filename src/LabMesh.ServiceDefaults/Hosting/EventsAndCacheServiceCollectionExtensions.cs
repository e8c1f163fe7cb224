using LabMesh.Messaging.Caching;
using LabMesh.Messaging.Events;
using LabMesh.Messaging.Redis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LabMesh.ServiceDefaults.Hosting;

/// <summary>
/// The choice of bus and cache, made here at the top (Hosting) so that Redis, the lower layer, knows neither.
/// </summary>
public static class EventsAndCacheServiceCollectionExtensions
{
    /// <summary>
    /// Registers the <see cref="IStatusCache"/> and the <see cref="IEventBus"/>: over one shared
    /// <see cref="RedisConnection"/> when <c>ConnectionStrings:Redis</c> or <c>LabMesh:Redis:Configuration</c>
    /// is set (the connection string wins), in process otherwise (the all-in-one host). Other
    /// <see cref="RedisOptions"/> come from section <c>LabMesh:Redis</c>. Calling it again changes nothing.
    /// </summary>
    public static IServiceCollection AddLabMeshEventsAndCache(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection("LabMesh:Redis").Get<RedisOptions>() ?? new RedisOptions();
        var connectionString = configuration.GetConnectionString("Redis");
        if (!string.IsNullOrWhiteSpace(connectionString))
        {
            options.Configuration = connectionString;
        }

        services.AddLogging();
        services.TryAddSingleton<IOptions<RedisOptions>>(Options.Create(options));

        if (string.IsNullOrWhiteSpace(options.Configuration))
        {
            services.TryAddSingleton<IStatusCache>(sp => new InMemoryStatusCache(
                sp.GetRequiredService<IOptions<RedisOptions>>().Value.StatusTtl,
                sp.GetService<TimeProvider>()));
            services.TryAddSingleton<IEventBus>(sp => new InProcessEventBus(
                sp.GetRequiredService<ILogger<InProcessEventBus>>(),
                firstPosition: InProcessEventBus.FirstPositionAt((sp.GetService<TimeProvider>() ?? TimeProvider.System).GetUtcNow())));
        }
        else
        {
            services.TryAddSingleton<RedisConnection>();
            services.TryAddSingleton<IStatusCache, RedisStatusCache>();
            services.TryAddSingleton<IEventBus, RedisEventBus>();
        }

        return services;
    }
}
