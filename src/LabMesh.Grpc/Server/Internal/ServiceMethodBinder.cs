using System.Reflection;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Grpc.AspNetCore.Server.Internal;

/// <summary>
/// Receives a service's methods from its generated <c>BindService(ServiceBinderBase, TBase)</c> and
/// maps each as a POST endpoint at <c>/package.Service/Method</c>.
/// </summary>
internal sealed class ServiceMethodBinder<TService>(
    IEndpointRouteBuilder endpoints,
    GrpcServiceOptions options,
    ILogger logger,
    List<IEndpointConventionBuilder> conventions) : ServiceBinderBase
    where TService : class
{
    private readonly ServerOptionsSnapshot _snapshot = ServerOptionsResolver.Resolve(options);

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, UnaryServerMethod<TRequest, TResponse>? handler) =>
        Map(method, typeof(Func<TService, TRequest, ServerCallContext, Task<TResponse>>), typeof(TRequest), typeof(ServerCallContext));

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ClientStreamingServerMethod<TRequest, TResponse>? handler) =>
        Map(method, typeof(Func<TService, IAsyncStreamReader<TRequest>, ServerCallContext, Task<TResponse>>), typeof(IAsyncStreamReader<TRequest>), typeof(ServerCallContext));

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, ServerStreamingServerMethod<TRequest, TResponse>? handler) =>
        Map(method, typeof(Func<TService, TRequest, IServerStreamWriter<TResponse>, ServerCallContext, Task>), typeof(TRequest), typeof(IServerStreamWriter<TResponse>), typeof(ServerCallContext));

    public override void AddMethod<TRequest, TResponse>(Method<TRequest, TResponse> method, DuplexStreamingServerMethod<TRequest, TResponse>? handler) =>
        Map(method, typeof(Func<TService, IAsyncStreamReader<TRequest>, IServerStreamWriter<TResponse>, ServerCallContext, Task>), typeof(IAsyncStreamReader<TRequest>), typeof(IServerStreamWriter<TResponse>), typeof(ServerCallContext));

    private void Map<TRequest, TResponse>(Method<TRequest, TResponse> method, Type delegateType, params Type[] parameterTypes)
        where TRequest : class
        where TResponse : class
    {
        // The most derived public method with the generated signature: the service's override, or the
        // generated base method that answers UNIMPLEMENTED.
        var methodInfo = typeof(TService).GetMethod(method.Name, BindingFlags.Public | BindingFlags.Instance, parameterTypes)
            ?? throw new InvalidOperationException($"{typeof(TService)} has no method {method.Name} matching {method.FullName}.");
        var invoker = methodInfo.CreateDelegate(delegateType);
        var handler = new ServerMethodHandler<TService, TRequest, TResponse>(method, invoker, _snapshot, options.Interceptors, logger);
        conventions.Add(endpoints.MapMethods(method.FullName, [HttpMethods.Post], handler.HandleCallAsync));
    }
}

/// <summary>Answers calls to paths no service maps with UNIMPLEMENTED.</summary>
internal static class UnimplementedEndpoints
{
    public static void Map(IEndpointRouteBuilder endpoints, GrpcServiceRegistry registry, ILogger logger)
    {
        var builder = endpoints.MapMethods("{unimplementedService}/{unimplementedMethod}", [HttpMethods.Post], http =>
        {
            if (!Grpc.Core.Internal.GrpcProtocol.IsGrpcContentType(http.Request.ContentType))
            {
                http.Response.StatusCode = StatusCodes.Status404NotFound;
                return Task.CompletedTask;
            }
            var service = (string?)http.Request.RouteValues["unimplementedService"] ?? "";
            var known = registry.Services.Any(s => s.Name == service);
            var method = (string?)http.Request.RouteValues["unimplementedMethod"] ?? "";
            Log.Unimplemented(logger, known ? "method" : "service", service, method);
            http.Response.ContentType = Grpc.Core.Internal.GrpcProtocol.ContentType;
            http.Response.Headers[Grpc.Core.Internal.GrpcProtocol.StatusHeader] = "12";
            http.Response.Headers[Grpc.Core.Internal.GrpcProtocol.MessageHeader] = Grpc.Core.Internal.GrpcProtocol.PercentEncode(
                known ? $"Method is unimplemented: {service}/{method}" : $"Service is unimplemented: {service}");
            return Task.CompletedTask;
        });
        // After every real endpoint, whatever its pattern.
        builder.Add(b => ((RouteEndpointBuilder)b).Order = int.MaxValue);
    }
}
