using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.ResultsInterpretation.Domain;
using LabMesh.ResultsInterpretation.Fhir;
using LabMesh.Messaging.Events;
using LabMesh.ServiceDefaults.Peers;
using LabMesh.Messaging.Storage;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace LabMesh.ResultsInterpretation;

public static class ResultsInterpretationServiceExtensions
{
    /// <summary>
    /// The ResultsInterpretation service: its store (migrated at start-up) and outbox relay, the
    /// critical-limit catalog (<c>LabMesh:Results</c>, checked at start-up), its clients of the
    /// Requisition and ServiceRequest services (<c>LabMesh:Services</c>) and the effects worker.
    /// </summary>
    public static IServiceCollection AddResultsInterpretationService(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddLabMeshStore(ResultsStore.ServiceName, ResultsStore.Migrations);
        services.TryAddSingleton(TimeProvider.System);
        services.Configure<PeerOptions>(configuration.GetSection(PeerOptions.Section));
        services.Configure<ResultsOptions>(configuration.GetSection(ResultsOptions.SectionName));
        services.AddSingleton(sp => CriticalLimitCatalog.Create(sp.GetRequiredService<IOptions<ResultsOptions>>().Value));
        services.AddSingleton<MarkerReader>();
        services.AddSingleton(sp => new ResultsStore(
            sp.GetRequiredKeyedService<Database>(ResultsStore.ServiceName), sp.GetRequiredService<TimeProvider>()));
        services.AddPeerClient<RequisitionService.RequisitionServiceClient>(p => p.Requisition, RequisitionService.Descriptor.FullName);
        services.AddPeerClient<ServiceRequestService.ServiceRequestServiceClient>(p => p.ServiceRequest, ServiceRequestService.Descriptor.FullName);
        services.AddSingleton<MeshGateway>();
        services.AddPeerWork(ResultsStore.ServiceName);
        services.AddSingleton<ResultsEffects>();
        services.AddHostedService(sp => sp.GetRequiredService<ResultsEffects>());
        services.AddSingleton<ResultsWorkflow>();
        services.AddSingleton<FhirExport>();
        return services;
    }

    public static IEndpointRouteBuilder MapResultsInterpretationService(this IEndpointRouteBuilder endpoints)
    {
        // Resolve the catalog now, so a bad configuration stops start-up instead of the first call.
        _ = endpoints.ServiceProvider.GetRequiredService<CriticalLimitCatalog>();
        endpoints.MapGrpcService<ResultsApi>();
        return endpoints;
    }
}
