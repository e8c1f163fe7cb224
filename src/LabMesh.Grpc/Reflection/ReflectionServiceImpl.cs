using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Grpc.Reflection.Internal;
using Grpc.Reflection.V1Alpha;

namespace Grpc.Reflection;

/// <summary>
/// The deprecated <c>grpc.reflection.v1alpha.ServerReflection</c> service, still asked for by many tools;
/// it answers exactly as <see cref="ReflectionV1ServiceImpl"/> does.
/// </summary>
public class ReflectionServiceImpl : ServerReflection.ServerReflectionBase
{
    private readonly DescriptorSource _source;

    /// <summary>Serves every service in the registry (what <c>MapGrpcService</c> mapped), including later ones.</summary>
    /// <param name="registry">The server's registry of mapped services.</param>
    [Microsoft.Extensions.DependencyInjection.ActivatorUtilitiesConstructor]
    public ReflectionServiceImpl(GrpcServiceRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        _source = new DescriptorSource(registry);
    }

    /// <summary>Serves exactly these services (outside of ASP.NET Core hosting, or for tests).</summary>
    /// <param name="services">The service descriptors, e.g. <c>Greeter.Descriptor</c>.</param>
    public ReflectionServiceImpl(IEnumerable<ServiceDescriptor> services)
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
            // v1 renamed the v1alpha package and changed nothing else: the messages are identical on the
            // wire, so one implementation answers both through a byte-level round trip.
            var request = V1.ServerReflectionRequest.Parser.ParseFrom(requestStream.Current.ToByteString());
            var answer = ReflectionResponder.Answer(index, request);
            await responseStream.WriteAsync(ServerReflectionResponse.Parser.ParseFrom(answer.ToByteString()));
        }
    }
}
