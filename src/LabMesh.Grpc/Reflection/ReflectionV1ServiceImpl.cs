using Google.Protobuf.Reflection;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Grpc.Reflection.Internal;
using Grpc.Reflection.V1;

namespace Grpc.Reflection;

/// <summary>
/// The <c>grpc.reflection.v1.ServerReflection</c> service: lists the server's services and hands out their
/// proto files (with every transitive import) so that tools such as grpcurl can call them without the
/// <c>.proto</c> sources. Errors are answered in <c>error_response</c>; the stream stays usable.
/// </summary>
public class ReflectionV1ServiceImpl : ServerReflection.ServerReflectionBase
{
    private readonly DescriptorSource _source;

    /// <summary>Serves every service in the registry (what <c>MapGrpcService</c> mapped), including later ones.</summary>
    /// <param name="registry">The server's registry of mapped services.</param>
    [Microsoft.Extensions.DependencyInjection.ActivatorUtilitiesConstructor]
    public ReflectionV1ServiceImpl(GrpcServiceRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        _source = new DescriptorSource(registry);
    }

    /// <summary>Serves exactly these services (outside of ASP.NET Core hosting, or for tests).</summary>
    /// <param name="services">The service descriptors, e.g. <c>Greeter.Descriptor</c>.</param>
    public ReflectionV1ServiceImpl(IEnumerable<ServiceDescriptor> services)
    {
        ArgumentNullException.ThrowIfNull(services);
        _source = new DescriptorSource(services);
    }

    /// <summary>Answers each request on the stream, in order, until the client half-closes.</summary>
    public override async Task ServerReflectionInfo(
        IAsyncStreamReader<ServerReflectionRequest> requestStream,
        IServerStreamWriter<ServerReflectionResponse> responseStream,
        ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(requestStream);
        ArgumentNullException.ThrowIfNull(responseStream);
        ArgumentNullException.ThrowIfNull(context);
        var index = _source.GetIndex();
        while (await requestStream.MoveNext(context.CancellationToken))
        {
            await responseStream.WriteAsync(ReflectionResponder.Answer(index, requestStream.Current));
        }
    }
}
