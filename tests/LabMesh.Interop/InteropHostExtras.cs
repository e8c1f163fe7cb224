using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.Interop;

/// <summary>
/// The services the interop server hosts beside TestService: gRPC health and reflection, so that
/// grpcio's health client and reflection listing can be tried against the same process.
/// </summary>
internal static class InteropHostExtras
{
    public static void AddServices(IServiceCollection services)
    {
        services.AddGrpcHealthChecks();
        services.AddGrpcReflection();
    }

    public static void MapEndpoints(IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGrpcHealthChecksService();
        endpoints.MapGrpcReflectionService();
    }
}
