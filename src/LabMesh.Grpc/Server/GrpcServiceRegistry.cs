using Google.Protobuf.Reflection;

namespace Grpc.AspNetCore.Server;

/// <summary>A service mapped with <c>MapGrpcService</c>: its name and, for generated services, its descriptor.</summary>
/// <param name="Name">The fully qualified service name.</param>
/// <param name="ImplementationType">The handler type.</param>
/// <param name="Descriptor">The protobuf service descriptor, when the generated code exposes one.</param>
public sealed record RegisteredService(string Name, Type ImplementationType, ServiceDescriptor? Descriptor);

/// <summary>Every gRPC service mapped in this process (what reflection lists).</summary>
public sealed class GrpcServiceRegistry
{
    private readonly List<RegisteredService> _services = [];
    private readonly Lock _gate = new();

    /// <summary>The services mapped so far, in mapping order.</summary>
    public IReadOnlyList<RegisteredService> Services
    {
        get
        {
            lock (_gate)
            {
                return [.. _services];
            }
        }
    }

    private readonly HashSet<object> _fallbackOwners = [];

    /// <summary>True the first time for a route builder: the UNIMPLEMENTED fallback is mapped once per builder.</summary>
    internal bool TryClaimUnimplementedFallback(object routeBuilder)
    {
        lock (_gate)
        {
            return _fallbackOwners.Add(routeBuilder);
        }
    }

    internal void Add(RegisteredService service)
    {
        lock (_gate)
        {
            if (_services.Exists(s => s.Name == service.Name))
            {
                throw new InvalidOperationException($"gRPC service '{service.Name}' is mapped twice.");
            }
            _services.Add(service);
        }
    }
}
