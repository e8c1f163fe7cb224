using Grpc.HealthCheck;
using Microsoft.AspNetCore.Routing;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the <c>grpc.health.v1.Health</c> service.</summary>
public static class GrpcHealthEndpointExtensions
{
    /// <summary>
    /// Maps <c>grpc.health.v1.Health</c> (Check and Watch), served by the <see cref="HealthServiceImpl"/>
    /// singleton that <c>services.AddGrpcHealthChecks()</c> registers.
    /// </summary>
    /// <param name="builder">The endpoint route builder.</param>
    /// <returns>A builder for conventions on the health endpoints.</returns>
    public static GrpcServiceEndpointConventionBuilder MapGrpcHealthChecksService(this IEndpointRouteBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (builder.ServiceProvider.GetService(typeof(HealthServiceImpl)) is null)
        {
            // Without the singleton every call would get a fresh, empty table: fail at startup instead.
            throw new InvalidOperationException("Call services.AddGrpcHealthChecks() before MapGrpcHealthChecksService().");
        }
        return builder.MapGrpcService<HealthServiceImpl>();
    }
}
