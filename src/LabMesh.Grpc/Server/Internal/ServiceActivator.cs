using Microsoft.Extensions.DependencyInjection;

namespace Grpc.AspNetCore.Server.Internal;

/// <summary>
/// Creates a service instance per call, as grpc-dotnet does: the instance registered in dependency
/// injection when there is one (its lifetime is DI's), otherwise a new one that is disposed after the call.
/// </summary>
internal sealed class ServiceActivator<TService>
    where TService : class
{
    // Built on first need only: a type registered in DI may have constructors ActivatorUtilities cannot choose between.
    private ObjectFactory? _factory;

    public (TService Service, bool Created) Create(IServiceProvider services)
    {
        var registered = services.GetService<TService>();
        if (registered is not null)
        {
            return (registered, false);
        }
        _factory ??= ActivatorUtilities.CreateFactory(typeof(TService), Type.EmptyTypes);
        return ((TService)_factory(services, null), true);
    }

    public static ValueTask ReleaseAsync(TService service, bool created)
    {
        if (!created)
        {
            return ValueTask.CompletedTask;
        }
        if (service is IAsyncDisposable asyncDisposable)
        {
            return asyncDisposable.DisposeAsync();
        }
        (service as IDisposable)?.Dispose();
        return ValueTask.CompletedTask;
    }
}
