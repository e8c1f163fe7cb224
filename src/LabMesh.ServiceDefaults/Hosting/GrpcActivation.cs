using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using Grpc.AspNetCore.Server;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace LabMesh.ServiceDefaults.Hosting;

/// <summary>
/// How grpc-dotnet gets the service class of each call and the interceptors, without System.Linq.Expressions.
/// </summary>
/// <remarks>
/// grpc-dotnet builds a service class that is not in the container, and an interceptor added by type that is not
/// in it, with <c>ActivatorUtilities.CreateFactory</c>, which compiles an expression tree: the first call loaded
/// System.Linq.Expressions (2.5 MB mapped, and the code of the expression compiler) into every replica for a
/// constructor call (bench/README.md, "Idle memory: the runtime's settings and the assemblies a replica loads").
/// Here the interceptors are singletons in the container (each is stateless) and a service class is built per call,
/// as grpc-dotnet does, by its public constructor invoked through reflection (the runtime's invoker, emitted
/// once the constructor is hot), its arguments from the call's scope.
/// </remarks>
internal static class GrpcActivation
{
    /// <summary>
    /// What grpc-dotnet asks the trimmer to keep of a service class (its <c>IGrpcServiceActivator&lt;T&gt;</c> and
    /// <c>IServiceMethodProvider&lt;T&gt;</c> carry it): the implementations registered for them carry the same.
    /// </summary>
    internal const DynamicallyAccessedMemberTypes ServiceAccessibility =
        DynamicallyAccessedMemberTypes.PublicConstructors | DynamicallyAccessedMemberTypes.PublicMethods | DynamicallyAccessedMemberTypes.NonPublicMethods;

    public static IServiceCollection AddGrpcActivationWithoutExpressions(this IServiceCollection services)
    {
        services.Replace(ServiceDescriptor.Singleton(typeof(IGrpcServiceActivator<>), typeof(ConstructorServiceActivator<>)));
        return services;
    }

    /// <summary>Builds <typeparamref name="TService"/> per call (unless the container holds one) and disposes what it built.</summary>
    private sealed class ConstructorServiceActivator<[DynamicallyAccessedMembers(ServiceAccessibility)] TService>
        : IGrpcServiceActivator<TService>
        where TService : class
    {
        public GrpcActivatorHandle<TService> Create(IServiceProvider serviceProvider)
        {
            if (serviceProvider.GetService<TService>() is { } registered)
            {
                return new GrpcActivatorHandle<TService>(registered, created: false, state: null);
            }

            return new GrpcActivatorHandle<TService>(Factory.Create(serviceProvider), created: true, state: null);
        }

        /// <summary>The constructor, found on the first call of a service class that is not in the container.</summary>
        private static class Factory
        {
            private static readonly ConstructorInfo? Constructor = typeof(TService).GetConstructors() is [var only] ? only : null;

            // How each argument is found, as ActivatorUtilities finds it: [FromKeyedServices(key)] from the keyed
            // registration, a parameter with a default value from the container if it is there, any other required.
            private static readonly Func<IServiceProvider, object?>[] Arguments = Constructor is null ? [] : [.. Constructor.GetParameters().Select(Argument)];

            public static TService Create(IServiceProvider serviceProvider)
            {
                if (Constructor is null)
                {
                    // Several public constructors: ActivatorUtilities picks one, by reflection (not CreateFactory).
                    return ActivatorUtilities.CreateInstance<TService>(serviceProvider);
                }

                var arguments = new object?[Arguments.Length];
                for (var i = 0; i < arguments.Length; i++)
                {
                    arguments[i] = Arguments[i](serviceProvider);
                }

                return (TService)Constructor.Invoke(arguments);
            }

            private static Func<IServiceProvider, object?> Argument(ParameterInfo parameter)
            {
                var type = parameter.ParameterType;
                if (parameter.GetCustomAttribute<FromKeyedServicesAttribute>() is { } keyed)
                {
                    return parameter.HasDefaultValue
                        ? provider => provider.GetKeyedService(type, keyed.Key) ?? parameter.DefaultValue
                        : provider => provider.GetRequiredKeyedService(type, keyed.Key);
                }

                return parameter.HasDefaultValue
                    ? provider => provider.GetService(type) ?? parameter.DefaultValue
                    : provider => provider.GetRequiredService(type);
            }
        }

        public ValueTask ReleaseAsync(GrpcActivatorHandle<TService> service)
        {
            if (service.Created)
            {
                if (service.Instance is IAsyncDisposable asyncDisposable)
                {
                    return asyncDisposable.DisposeAsync();
                }

                (service.Instance as IDisposable)?.Dispose();
            }

            return ValueTask.CompletedTask;
        }
    }
}
