using LabMesh.Messaging.Caching;
using LabMesh.Messaging.Events;
using LabMesh.Security.Identity;
using LabMesh.Messaging.Storage;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LabMesh.ServiceRequest;

public static class ServiceRequestServiceExtensions
{
    /// <summary>The ServiceRequest service's store (migrated at start-up), its outbox relay (which refreshes the status cache, <see cref="StatusCacheRefresher"/>), its gRPC class, and the partner assignments the access matrix checks.</summary>
    public static IServiceCollection AddServiceRequestService(this IServiceCollection services)
    {
        services.AddLabMeshStore(ServiceRequestStore.ServiceName, ServiceRequestStore.Migrations);
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(sp => new ServiceRequestStore(
            sp.GetRequiredKeyedService<Database>(ServiceRequestStore.ServiceName), sp.GetRequiredService<TimeProvider>()));
        services.AddKeyedSingleton<IOutboxPublishedListener>(ServiceRequestStore.ServiceName, (sp, _) => new StatusCacheRefresher(
            sp.GetRequiredService<ServiceRequestStore>(), sp.GetRequiredService<IStatusCache>()));
        services.AddSingleton<IServiceRequestAssignments, ServiceRequestAssignments>();
        return services;
    }

    public static IEndpointRouteBuilder MapServiceRequestService(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGrpcService<ServiceRequestApi>();
        return endpoints;
    }
}
