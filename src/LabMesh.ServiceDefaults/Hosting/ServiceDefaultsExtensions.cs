using LabMesh.Security.Audit;
using LabMesh.Core.Errors;
using LabMesh.Messaging.Events;
using LabMesh.Security.Identity;
using LabMesh.Security.Limits;
using LabMesh.Messaging.Storage;
using LabMesh.ServiceDefaults.Telemetry;
using LabMesh.Core.Validation;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration.Memory;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LabMesh.ServiceDefaults.Hosting;

/// <summary>What every LabMesh service process sets up the same way (eShop's ServiceDefaults).</summary>
public static class ServiceDefaultsExtensions
{
    /// <summary>The log level key of ASP.NET Core's per-request lines, Warning unless configured otherwise.</summary>
    public const string QuietRequestLogKey = "Logging:LogLevel:Microsoft.AspNetCore";

    /// <summary>
    /// The log level key of ASP.NET Core's health check service, Critical unless configured otherwise: it logs
    /// every unhealthy result at Error, and NOT_SERVING while a host starts or drains is no error. A store that
    /// does not answer is logged by LabMesh's own check, as a warning.
    /// </summary>
    public const string QuietHealthLogKey = "Logging:LogLevel:Microsoft.Extensions.Diagnostics.HealthChecks";

    /// <summary>
    /// The log level key of grpc-dotnet (server and client), Warning unless configured otherwise: at Information it
    /// logs every call that ends with a status other than OK, with the status detail, so every NOT_FOUND and
    /// INVALID_ARGUMENT a caller earns became a log line. Errors (a handler that threw) still show.
    /// </summary>
    public const string QuietGrpcLogKey = "Logging:LogLevel:Grpc";

    /// <summary>
    /// h2c-only Kestrel endpoints (clients use HTTP/2 prior knowledge) and an HTTP/1.1 one for REST when
    /// <c>LabMesh:Rest:Url</c> names it (<see cref="RestEndpoints"/>), the gRPC runtime and its JSON transcoding with the
    /// domain-error interceptor, bearer-token identity and the access matrix (<c>LabMesh:Security</c>,
    /// SECURITY.md), the per-caller limits (<c>LabMesh:Limits</c>), the audit log of every mutation, health and
    /// reflection, storage options, and the event bus and
    /// status cache (Redis when <c>ConnectionStrings:Redis</c> is set, in-process otherwise).
    /// </summary>
    public static WebApplicationBuilder AddServiceDefaults(this WebApplicationBuilder builder)
    {
        // Below every other configuration source, so appsettings, the environment and the command line
        // still decide: ASP.NET Core's four Information lines per request (request starting, executing and
        // executed endpoint, request finished) are off unless asked for. At 1,000 calls/s they were 4,000 log
        // lines a second of nothing the gRPC layer does not say better.
        builder.Configuration.Sources.Insert(0, new MemoryConfigurationSource
        {
            InitialData = new Dictionary<string, string?>
            {
                [QuietRequestLogKey] = "Warning",
                [QuietHealthLogKey] = "Critical",
                [QuietGrpcLogKey] = "Warning",
            },
        });
        // REST's HTTP/1.1 endpoint when LabMesh:Rest:Url names one (RestEndpoints); every other endpoint is h2c.
        var restPort = RestEndpoints.AddRestListener(builder);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.ConfigureEndpointDefaults(listen => listen.Protocols = RestEndpoints.Protocols(listen, restPort));
            // Kestrel pings no one by default, so a client that vanished without closing its connection (a
            // killed pod, a dropped NAT entry) would hold its streams, such as Subscribe or a health Watch,
            // until TCP gives up; with a PING after 60 s of silence and 20 s for its ACK, their handlers end.
            kestrel.Limits.Http2.KeepAlivePingDelay = TimeSpan.FromSeconds(60);
            kestrel.Limits.Http2.KeepAlivePingTimeout = TimeSpan.FromSeconds(20);
        });
        // Traces, metrics and logs over OTLP when the standard OTEL_* variables name an endpoint (LabMeshOpenTelemetry).
        builder.AddLabMeshTelemetry();
        // The slim builder the services start with leaves out the EventSource log provider; it stays, so an operator's
        // `dotnet-trace` or `dotnet-monitor` can still collect a replica's logs without a restart (a no-op where
        // CreateBuilder already added it, as in the all-in-one host).
        builder.Logging.AddEventSourceLogger();
        var telemetry = LabMeshOpenTelemetry.IsEnabled(builder.Configuration);
        builder.Services.AddLabMeshLimits(builder.Configuration);
        builder.Services.AddSingleton<AuditInterceptor>();
        // Every interceptor added by type below is in the container, so grpc-dotnet never compiles a factory for one (GrpcActivation).
        builder.Services.AddSingleton<DomainExceptionInterceptor>();
        builder.Services.AddSingleton<RequestTextInterceptor>();
        // The interceptor's record commits with the call's first write: the audit log joins every store's write transactions.
        builder.Services.AddSingleton<IWriteParticipant, AuditWriteParticipant>();
        builder.Services.AddGrpc(options =>
        {
            if (telemetry)
            {
                // First: it times the whole call and sees the status the domain-error interceptor gives an exception.
                options.Interceptors.Add<RpcTelemetryInterceptor>();
            }

            options.Interceptors.Add<DomainExceptionInterceptor>();
            // Bearer token and the access matrix (SECURITY.md): everything after it sees an authenticated caller.
            options.Interceptors.Add<AuthorizationInterceptor>();
            // Authentication before this: the rate limit keys on the authenticated caller.
            options.Interceptors.Add<RateLimitInterceptor>();
            // No NUL in any string of a request (PostgreSQL's text cannot hold one).
            options.Interceptors.Add<RequestTextInterceptor>();
            // Last: only a call that was let in and ran is recorded (in the handler's own transaction).
            options.Interceptors.Add<AuditInterceptor>();
        })
            // REST: JSON over HTTP through the same interceptors (RestEndpoints), and its HTTP/1.1 listener.
            .AddLabMeshJsonTranscoding();
        // The service classes built per call without an expression tree (GrpcActivation).
        builder.Services.AddGrpcActivationWithoutExpressions();
        // Bytes that do not parse are INVALID_ARGUMENT, not grpc-dotnet's UNKNOWN (MalformedRequests).
        builder.Services.AddStrictRequestParsing();
        builder.Services.AddLabMeshSecurity(builder.Configuration);
        builder.Services.AddLabMeshHealth(builder.Configuration);
        // Reflection serves the google.rpc error details too, so grpcurl decodes them (GrpcReflectionDescriptors).
        builder.Services.AddGrpcReflectionWithErrorDetails();
        builder.Services.AddLabMeshStorageOptions(builder.Configuration);
        builder.Services.AddLabMeshEventsAndCache(builder.Configuration);
        // Memory the GC and glibc hold after a load goes back to the machine once the replica is quiet (IdleMemory).
        builder.Services.AddHostedService<IdleMemoryTrimmer>();
        return builder;
    }

    /// <summary>
    /// Checks the framing of every gRPC request (<see cref="MalformedRequests"/>), maps <c>grpc.health.v1.Health</c>, the audit log of the services hosted and, unless
    /// <c>LabMesh:Security:Reflection</c> is false, server reflection.
    /// </summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        // Broken framing is INVALID_ARGUMENT, not grpc-dotnet's INTERNAL (MalformedRequests); after routing,
        // which WebApplication runs first, so the endpoint says which method is called.
        app.UseStrictRequestFraming();
        app.MapGrpcHealthChecksService();
        app.MapGrpcService<AuditApi>();
        if (app.Services.GetRequiredService<IOptions<SecurityOptions>>().Value.Reflection)
        {
            app.MapGrpcReflectionService();
        }

        // Last: every service mapped so far answers health checks under its own name too.
        app.MapHealthOfEveryService();
        return app;
    }
}
