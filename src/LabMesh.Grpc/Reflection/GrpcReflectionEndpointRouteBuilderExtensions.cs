using Grpc.Reflection;
using Microsoft.AspNetCore.Routing;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps the gRPC server reflection services.</summary>
public static class GrpcReflectionEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps <c>grpc.reflection.v1.ServerReflection</c> and the deprecated <c>grpc.reflection.v1alpha</c> one,
    /// so that tools such as grpcurl can list and describe the server's services and call them.
    /// </summary>
    /// <param name="builder">The endpoint route builder.</param>
    /// <returns>A builder for conventions on both services' endpoints.</returns>
    public static IEndpointConventionBuilder MapGrpcReflectionService(this IEndpointRouteBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (builder.ServiceProvider.GetService(typeof(ReflectionV1ServiceImpl)) is null)
        {
            throw new InvalidOperationException("Call services.AddGrpcReflection() before MapGrpcReflectionService().");
        }
        var v1 = builder.MapGrpcService<ReflectionV1ServiceImpl>();
        var v1Alpha = builder.MapGrpcService<ReflectionServiceImpl>();
        return new GrpcServiceEndpointConventionBuilder([v1, v1Alpha]);
    }
}
