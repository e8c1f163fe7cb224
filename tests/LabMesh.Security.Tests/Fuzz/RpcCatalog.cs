using System.Reflection;
using Google.Protobuf.Reflection;
using Grpc.Core;
using LabMesh.Contracts.Requisition.V1;

namespace LabMesh.Security.Tests.Fuzz;

/// <summary>One RPC of a LabMesh service, as its generated descriptor describes it.</summary>
public sealed record Rpc(ServiceDescriptor Service, MethodDescriptor Method)
{
    private static readonly Marshaller<byte[]> Raw = Marshallers.Create(static (byte[] bytes) => bytes, static bytes => bytes);

    public string Name => $"{Service.FullName}/{Method.Name}";

    public MessageDescriptor Input => Method.InputType;

    public bool IsServerStreaming => Method.IsServerStreaming;

    /// <summary>The method with its request and response left as bytes, so any payload can be sent.</summary>
    public Method<byte[], byte[]> RawMethod => new(
        Method.IsServerStreaming ? Method.IsClientStreaming ? MethodType.DuplexStreaming : MethodType.ServerStreaming
        : Method.IsClientStreaming ? MethodType.ClientStreaming : MethodType.Unary,
        Service.FullName, Method.Name, Raw, Raw);

    public override string ToString() => Name;
}

/// <summary>
/// Every RPC of every <c>labmesh.*</c> service compiled into LabMesh.Contracts, found from the
/// generated service descriptors: an RPC added to a proto is fuzzed without touching the tests.
/// </summary>
public static class RpcCatalog
{
    public static IReadOnlyList<Rpc> All { get; } = Load();

    private static List<Rpc> Load() =>
        [.. typeof(RequisitionService).Assembly.GetTypes()
            .Select(t => t.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static))
            .Where(p => p?.PropertyType == typeof(ServiceDescriptor))
            .Select(p => (ServiceDescriptor)p!.GetValue(null)!)
            .Where(s => s.FullName.StartsWith("labmesh.", StringComparison.Ordinal))
            .SelectMany(s => s.Methods.Select(m => new Rpc(s, m)))
            .OrderBy(r => r.Name, StringComparer.Ordinal)];
}
