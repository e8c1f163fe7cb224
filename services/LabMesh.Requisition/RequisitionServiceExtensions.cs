using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Messaging.Caching;
using LabMesh.Messaging.Events;
using LabMesh.ServiceDefaults.Peers;
using LabMesh.Messaging.Storage;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LabMesh.Requisition;

public static class RequisitionServiceExtensions
{
    /// <summary>
    /// The Requisition service: its store (migrated at start-up) and outbox relay (which refreshes the
    /// status cache, <see cref="StatusCacheRefresher"/>), its client of the
    /// ServiceRequest service (<c>LabMesh:Services:ServiceRequest</c>), the sync worker, the simulator.
    /// </summary>
    public static IServiceCollection AddRequisitionService(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddLabMeshStore(RequisitionStore.ServiceName, RequisitionStore.Migrations);
        services.TryAddSingleton(TimeProvider.System);
        services.Configure<PeerOptions>(configuration.GetSection(PeerOptions.Section));
        services.AddSingleton(sp => new RequisitionStore(
            sp.GetRequiredKeyedService<Database>(RequisitionStore.ServiceName), sp.GetRequiredService<TimeProvider>()));
        services.AddPeerClient<ServiceRequestService.ServiceRequestServiceClient>(p => p.ServiceRequest, ServiceRequestService.Descriptor.FullName);
        services.AddSingleton<ServiceRequestGateway>();
        services.AddSingleton<LifecycleRefresher>();
        services.AddPeerWork(RequisitionStore.ServiceName);
        services.AddSingleton<ServiceRequestSync>();
        services.AddHostedService(sp => sp.GetRequiredService<ServiceRequestSync>());
        services.AddKeyedSingleton<IOutboxPublishedListener>(RequisitionStore.ServiceName, (sp, _) => new StatusCacheRefresher(
            sp.GetRequiredService<RequisitionStore>(), sp.GetRequiredService<IStatusCache>()));
        services.AddSingleton<RequisitionWorkflow>();
        services.AddSingleton<OrderSimulator>();
        return services;
    }

    public static IEndpointRouteBuilder MapRequisitionService(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGrpcService<RequisitionApi>();
        return endpoints;
    }
}
