using System.Reflection;
using ServiceDescriptor = Google.Protobuf.Reflection.ServiceDescriptor;
using Grpc.AspNetCore.Server;
using Grpc.AspNetCore.Server.Internal;
using Grpc.Core;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Microsoft.AspNetCore.Builder;

/// <summary>Maps gRPC services onto ASP.NET Core endpoint routing.</summary>
public static class GrpcEndpointRouteBuilderExtensions
{
    /// <summary>
    /// Maps every method of a generated service (a class deriving from a generated <c>XxxBase</c>) at
    /// <c>/package.Service/Method</c>. Instances are resolved per call from dependency injection, or
    /// created per call when the type is not registered.
    /// </summary>
    public static GrpcServiceEndpointConventionBuilder MapGrpcService<TService>(this IEndpointRouteBuilder builder)
        where TService : class
    {
        ArgumentNullException.ThrowIfNull(builder);
        var services = builder.ServiceProvider;
        var registry = services.GetService<GrpcServiceRegistry>()
            ?? throw new InvalidOperationException("Call services.AddGrpc() before mapping gRPC services.");
        var options = services.GetRequiredService<IOptions<GrpcServiceOptions>>().Value;
        var logger = services.GetRequiredService<ILoggerFactory>().CreateLogger("LabMesh.Grpc.Server");

        var (bindMethod, descriptor) = FindBindMethod(typeof(TService));
        var conventions = new List<IEndpointConventionBuilder>();
        var binder = new ServiceMethodBinder<TService>(builder, options, logger, conventions);
        bindMethod.Invoke(null, [binder, null]);

        var serviceName = descriptor?.FullName ?? ServiceNameOf(bindMethod.DeclaringType!);
        registry.Add(new RegisteredService(serviceName, typeof(TService), descriptor));
        if (registry.TryClaimUnimplementedFallback(builder))
        {
            UnimplementedEndpoints.Map(builder, registry, logger);
        }
        return new GrpcServiceEndpointConventionBuilder(conventions);
    }

    private static (MethodInfo BindMethod, ServiceDescriptor? Descriptor) FindBindMethod(Type serviceType)
    {
        for (var type = serviceType; type is not null; type = type.BaseType)
        {
            var attribute = type.GetCustomAttribute<BindServiceMethodAttribute>(inherit: false);
            if (attribute is null)
            {
                continue;
            }
            var bindMethod = attribute.BindType
                .GetMethods(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static)
                .FirstOrDefault(m => m.Name == attribute.BindMethodName
                    && m.GetParameters() is { Length: 2 } p
                    && p[0].ParameterType == typeof(ServiceBinderBase)
                    && p[1].ParameterType.IsAssignableFrom(serviceType))
                ?? throw new InvalidOperationException($"{attribute.BindType} has no {attribute.BindMethodName}(ServiceBinderBase, {type.Name}) method.");
            var descriptor = attribute.BindType.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static)?.GetValue(null) as ServiceDescriptor;
            return (bindMethod, descriptor);
        }
        throw new InvalidOperationException(
            $"{serviceType} is not a gRPC service: it must derive from a generated service base class (one marked with [BindServiceMethod]).");
    }

    private static string ServiceNameOf(Type bindType) =>
        bindType.GetField("__ServiceName", BindingFlags.NonPublic | BindingFlags.Static)?.GetValue(null) as string ?? bindType.FullName!;
}

/// <summary>Applies endpoint conventions (authorization, metadata, ...) to every method of a service.</summary>
public sealed class GrpcServiceEndpointConventionBuilder : IEndpointConventionBuilder
{
    private readonly IReadOnlyList<IEndpointConventionBuilder> _builders;

    internal GrpcServiceEndpointConventionBuilder(IReadOnlyList<IEndpointConventionBuilder> builders) => _builders = builders;

    /// <inheritdoc />
    public void Add(Action<EndpointBuilder> convention)
    {
        foreach (var builder in _builders)
        {
            builder.Add(convention);
        }
    }

    /// <inheritdoc />
    public void Finally(Action<EndpointBuilder> finallyConvention)
    {
        foreach (var builder in _builders)
        {
            builder.Finally(finallyConvention);
        }
    }
}
