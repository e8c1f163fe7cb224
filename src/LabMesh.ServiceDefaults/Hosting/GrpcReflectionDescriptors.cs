using System.Reflection;
using Google.Protobuf.Reflection;
using Google.Rpc;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Grpc.Reflection;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using ServiceDescriptor = Google.Protobuf.Reflection.ServiceDescriptor;

namespace LabMesh.ServiceDefaults.Hosting;

/// <summary>
/// Server reflection (<c>grpc.reflection.v1</c> and <c>v1alpha</c>) that serves, besides the services this
/// process maps, the <c>google.rpc</c> files of the error details LabMesh sends, so that grpcurl and
/// <c>buf curl</c> decode them with no proto files.
/// </summary>
/// <remarks>
/// Why: a LabMesh error carries a <c>google.rpc.Status</c> in <c>grpc-status-details-bin</c> whose details are
/// <c>Any</c>s (BadRequest, PreconditionFailure, ErrorInfo, ResourceInfo, RetryInfo). A client without the
/// proto files can decode an <c>Any</c> only if reflection serves its type, and upstream's
/// <c>AddGrpcReflection()</c> serves only the files of the mapped services and what they import. No LabMesh
/// contract imports <c>google/rpc/error_details.proto</c> (the details travel in a trailer, not in a message),
/// so grpcurl printed "google.rpc.BadRequest is not recognized; see @value for raw binary message data".
/// <para>
/// Upstream (Grpc.AspNetCore.Server.Reflection 2.85.0) has no option for more files. It registers
/// <see cref="ReflectionServiceImpl"/> (v1alpha) and <see cref="ReflectionV1ServiceImpl"/> (v1) with
/// <c>TryAddSingleton</c>, built from the mapped services' descriptors, and <c>MapGrpcReflectionService()</c>
/// maps both from DI. Both have a public constructor that takes the service names and any
/// <see cref="SymbolRegistry"/>. So this registers the two itself, before <c>AddGrpcReflection()</c>, with a
/// registry of the services' files plus <see cref="ExtraFiles"/>; mapping (and leaving it unmapped when
/// <c>LabMesh:Security:Reflection</c> is false) stays upstream's.
/// </para>
/// </remarks>
public static class GrpcReflectionDescriptors
{
    /// <summary>
    /// Files served besides the services' own: every error detail type (<c>google/rpc/error_details.proto</c>)
    /// and <c>google.rpc.Status</c> itself (<c>google/rpc/status.proto</c>). Their imports
    /// (<c>google/protobuf/duration.proto</c>, <c>any.proto</c>) are served with them.
    /// </summary>
    public static IReadOnlyList<FileDescriptor> ExtraFiles { get; } = [ErrorDetailsReflection.Descriptor, StatusReflection.Descriptor];

    /// <summary>
    /// <c>AddGrpcReflection()</c> with <see cref="ExtraFiles"/> served too; map it with
    /// <c>MapGrpcReflectionService()</c> as usual.
    /// </summary>
    public static IServiceCollection AddGrpcReflectionWithErrorDetails(this IServiceCollection services)
    {
        // Built on first use, as upstream does: by then every service is mapped.
        services.AddSingleton(provider => ReflectedFiles.Of(provider.GetRequiredService<EndpointDataSource>()));
        services.AddSingleton(provider =>
        {
            var files = provider.GetRequiredService<ReflectedFiles>();
            return new ReflectionServiceImpl(files.Services, files.Registry);
        });
        services.AddSingleton(provider =>
        {
            var files = provider.GetRequiredService<ReflectedFiles>();
            return new ReflectionV1ServiceImpl(files.Services, files.Registry);
        });
        services.AddGrpcReflection();
        return services;
    }

    /// <summary>The services reflection lists and the files it serves, shared by v1 and v1alpha.</summary>
    private sealed record ReflectedFiles(IReadOnlyList<string> Services, SymbolRegistry Registry)
    {
        public static ReflectedFiles Of(EndpointDataSource endpoints)
        {
            var descriptors = endpoints.Endpoints
                .Select(endpoint => endpoint.Metadata.GetMetadata<GrpcMethodMetadata>()?.ServiceType)
                .OfType<Type>()
                .Distinct()
                .Select(DescriptorOf)
                .OfType<ServiceDescriptor>()
                .ToList();
            return new ReflectedFiles(
                [.. descriptors.Select(d => d.FullName)],
                SymbolRegistry.FromFiles(descriptors.Select(d => d.File).Concat(ExtraFiles)));
        }

        /// <summary>
        /// A generated service base class names the class that holds its descriptor:
        /// <c>[BindServiceMethod(typeof(Foo), "BindService")]</c> on <c>Foo.FooBase</c>, and <c>Foo.Descriptor</c>.
        /// Null for a service without one (upstream leaves such a service out of reflection too).
        /// </summary>
        private static ServiceDescriptor? DescriptorOf(Type serviceType)
        {
            for (var type = serviceType; type is not null; type = type.BaseType)
            {
                if (type.GetCustomAttribute<BindServiceMethodAttribute>(inherit: false) is { } bind)
                {
                    return bind.BindType.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static)?.GetValue(null) as ServiceDescriptor;
                }
            }

            return null;
        }
    }
}
