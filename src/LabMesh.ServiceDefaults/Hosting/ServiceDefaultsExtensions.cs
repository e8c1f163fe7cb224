using LabMesh.ServiceDefaults.Audit;
using LabMesh.ServiceDefaults.Errors;
using LabMesh.ServiceDefaults.Redis;
using LabMesh.ServiceDefaults.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.ServiceDefaults.Hosting;

/// <summary>What every LabMesh service process sets up the same way (eShop's ServiceDefaults).</summary>
public static class ServiceDefaultsExtensions
{
    /// <summary>
    /// h2c-only Kestrel endpoints (clients use HTTP/2 prior knowledge), the gRPC runtime with the
    /// domain-error and audit interceptors, health and reflection, storage options, and the event bus and
    /// status cache (Redis when <c>ConnectionStrings:Redis</c> is set, in-process otherwise).
    /// </summary>
    public static WebApplicationBuilder AddServiceDefaults(this WebApplicationBuilder builder)
    {
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.ConfigureEndpointDefaults(listen => listen.Protocols = HttpProtocols.Http2);
            kestrel.ConfigureGrpcKeepAlive();
        });
        builder.Services.AddSingleton<AuditInterceptor>();
        builder.Services.AddGrpc(options =>
        {
            options.Interceptors.Add<DomainExceptionInterceptor>();
            options.Interceptors.Add<AuditInterceptor>();
        });
        builder.Services.AddGrpcHealthChecks();
        builder.Services.AddGrpcReflection();
        builder.Services.AddLabMeshStorageOptions(builder.Configuration);
        builder.Services.AddLabMeshEventsAndCache(builder.Configuration);
        return builder;
    }

    /// <summary>Maps <c>grpc.health.v1.Health</c>, server reflection and the audit log of the services hosted.</summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.MapGrpcHealthChecksService();
        app.MapGrpcService<AuditApi>();
        app.MapGrpcReflectionService();
        return app;
    }
}
