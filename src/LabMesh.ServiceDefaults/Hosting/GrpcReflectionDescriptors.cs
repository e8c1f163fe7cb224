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
/// <para>
/// The gateway's view (issue 23 item 7): reflection is per process, but a caller pointing grpcurl at the
/// gateway expects the whole API. nginx and Kubernetes' Gateway API can only route, not answer, so a call
/// carrying <see cref="ScopeHeader"/>: <see cref="ApiScope"/> (the gateway sets it on reflection it routes
/// without an <c>x-labmesh-service</c> header, and removes any the caller sent) is answered from
/// <see cref="ApiServices"/>: every service the gateway routes, wherever it runs, with its files. Any
/// replica can answer it, because every process carries every contract (LabMesh.Contracts); without the
/// header the answer is the process's own services, as before.
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

    /// <summary>The request header that asks for the gateway's view of the API rather than this process's.</summary>
    public const string ScopeHeader = "x-labmesh-reflection";

    /// <summary>The value of <see cref="ScopeHeader"/> that asks for the whole public API.</summary>
    public const string ApiScope = "api";

    /// <summary>
    /// Every file of LabMesh.Contracts (protos/labmesh/**), named rather than found by scanning the assembly's types, which a
    /// trimmed (Native AOT) executable cannot do. <c>GrpcReflectionTests</c> checks the list against the assembly's types.
    /// </summary>
    public static IReadOnlyList<FileDescriptor> ContractFiles { get; } =
    [
        LabMesh.Contracts.Audit.V1.AuditReflection.Descriptor,
        LabMesh.Contracts.Common.V1.CommonReflection.Descriptor,
        LabMesh.Contracts.Common.V1.EventsReflection.Descriptor,
        LabMesh.Contracts.Common.V1.PeerWorkReflection.Descriptor,
        LabMesh.Contracts.Notification.V1.NotificationReflection.Descriptor,
        LabMesh.Contracts.Requisition.V1.RequisitionReflection.Descriptor,
        LabMesh.Contracts.Results.V1.ResultsReflection.Descriptor,
        LabMesh.Contracts.ServiceRequest.V1.ServiceRequestReflection.Descriptor,
    ];

    /// <summary>
    /// The public API as the gateway serves it, the same list as the all-in-one host's: every LabMesh contract
    /// service (packages <c>labmesh.*</c> of LabMesh.Contracts; the gateway routes each by its path, and the
    /// per-process audit log to the process the <c>x-labmesh-service</c> header names), gRPC health and reflection.
    /// </summary>
    public static IReadOnlyList<ServiceDescriptor> ApiServices { get; } =
    [
        .. ContractFiles
            .SelectMany(file => file.Services)
            .Where(d => d.File.Package.StartsWith("labmesh.", StringComparison.Ordinal))
            .OrderBy(d => d.FullName, StringComparer.Ordinal),
        Grpc.Health.V1.Health.Descriptor,
        Grpc.Reflection.V1.ServerReflection.Descriptor,
        Grpc.Reflection.V1Alpha.ServerReflection.Descriptor,
    ];

    /// <summary>
    /// <c>AddGrpcReflection()</c> with <see cref="ExtraFiles"/> served too; map it with
    /// <c>MapGrpcReflectionService()</c> as usual.
    /// </summary>
    public static IServiceCollection AddGrpcReflectionWithErrorDetails(this IServiceCollection services)
    {
        // Built on first use, as upstream does: by then every service is mapped.
        services.AddSingleton(provider => ReflectedFiles.Of(provider.GetRequiredService<EndpointDataSource>()));
        services.AddSingleton<ReflectionServiceImpl>(provider =>
        {
            var files = provider.GetRequiredService<ReflectedFiles>();
            return new ScopedV1Alpha(files, ReflectedFiles.Api);
        });
        services.AddSingleton<ReflectionV1ServiceImpl>(provider =>
        {
            var files = provider.GetRequiredService<ReflectedFiles>();
            return new ScopedV1(files, ReflectedFiles.Api);
        });
        services.AddGrpcReflection();
        return services;
    }

    private static bool AsksForApi(ServerCallContext context) =>
        string.Equals(context.RequestHeaders.GetValue(ScopeHeader), ApiScope, StringComparison.Ordinal);

    /// <summary>v1: this process's services, or the API's when the call asks for them (<see cref="ScopeHeader"/>).</summary>
    private sealed class ScopedV1(ReflectedFiles process, ReflectedFiles api) : ReflectionV1ServiceImpl(process.Services, process.Registry)
    {
        private readonly ReflectionV1ServiceImpl _api = new(api.Services, api.Registry);

        public override Task ServerReflectionInfo(
            IAsyncStreamReader<Grpc.Reflection.V1.ServerReflectionRequest> requestStream,
            IServerStreamWriter<Grpc.Reflection.V1.ServerReflectionResponse> responseStream,
            ServerCallContext context) =>
            AsksForApi(context)
                ? _api.ServerReflectionInfo(requestStream, responseStream, context)
                : base.ServerReflectionInfo(requestStream, responseStream, context);
    }

    /// <summary>v1alpha, as <see cref="ScopedV1"/>.</summary>
    private sealed class ScopedV1Alpha(ReflectedFiles process, ReflectedFiles api) : ReflectionServiceImpl(process.Services, process.Registry)
    {
        private readonly ReflectionServiceImpl _api = new(api.Services, api.Registry);

        public override Task ServerReflectionInfo(
            IAsyncStreamReader<Grpc.Reflection.V1Alpha.ServerReflectionRequest> requestStream,
            IServerStreamWriter<Grpc.Reflection.V1Alpha.ServerReflectionResponse> responseStream,
            ServerCallContext context) =>
            AsksForApi(context)
                ? _api.ServerReflectionInfo(requestStream, responseStream, context)
                : base.ServerReflectionInfo(requestStream, responseStream, context);
    }

    /// <summary>The services reflection lists and the files it serves, shared by v1 and v1alpha.</summary>
    private sealed record ReflectedFiles(IReadOnlyList<string> Services, SymbolRegistry Registry)
    {
        /// <summary>The gateway's view: <see cref="ApiServices"/> and their files, with <see cref="ExtraFiles"/>.</summary>
        public static ReflectedFiles Api { get; } = new(
            [.. ApiServices.Select(d => d.FullName)],
            SymbolRegistry.FromFiles(ApiServices.Select(d => d.File).Concat(ExtraFiles)));

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
