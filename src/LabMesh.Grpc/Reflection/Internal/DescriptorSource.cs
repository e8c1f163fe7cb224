using Google.Protobuf.Reflection;
using Grpc.AspNetCore.Server;

namespace Grpc.Reflection.Internal;

/// <summary>Where a reflection service gets its <see cref="DescriptorIndex"/>: the live registry or a fixed list.</summary>
internal sealed class DescriptorSource
{
    private readonly GrpcServiceRegistry? _registry;
    private readonly Lock _gate = new();
    private DescriptorIndex? _index;
    private int _indexedServiceCount = -1;

    public DescriptorSource(GrpcServiceRegistry registry) => _registry = registry;

    public DescriptorSource(IEnumerable<ServiceDescriptor> services)
    {
        var list = services.ToList();
        _index = DescriptorIndex.Build(list.Select(s => s.FullName), list);
    }

    public DescriptorIndex GetIndex()
    {
        if (_registry is null)
        {
            return _index!;
        }
        // Services are mapped while the app is built, so this is normally built once; rebuilding when the
        // count changes keeps a late MapGrpcService visible without rebuilding on every stream.
        var services = _registry.Services;
        lock (_gate)
        {
            if (_index is null || _indexedServiceCount != services.Count)
            {
                _index = DescriptorIndex.Build(
                    services.Select(s => s.Name),
                    services.Where(s => s.Descriptor is not null).Select(s => s.Descriptor!));
                _indexedServiceCount = services.Count;
            }
            return _index;
        }
    }
}
