using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using Grpc.Core;
using LabMesh.Security.Identity;
using Microsoft.AspNetCore.Http;

namespace LabMesh.Security.Audit;

/// <summary>What a mutating RPC changes: a <see cref="Type"/>, and where the target's id is.</summary>
/// <param name="Type">The audit record's target type, e.g. <c>Requisition</c>.</param>
/// <param name="IdPath">The id's field path, e.g. <c>id</c> or <c>requisition.id</c>.</param>
/// <param name="InResponse">True for a create: the id is in the response, given by the service.</param>
public sealed record AuditTarget(string Type, string IdPath, bool InResponse);

/// <summary>How the audit log treats one RPC.</summary>
/// <param name="Method">The full gRPC method, <c>/package.Service/Method</c>.</param>
/// <param name="Store">The store (keyed <c>Database</c>) of the service, which keeps its audit records.</param>
/// <param name="Target">What a mutation changes; null for a read, which is not recorded.</param>
public sealed record AuditedMethod(string Method, string? Store, AuditTarget? Target)
{
    public bool Mutates => Target is not null;
}

/// <summary>
/// How the audit log treats the RPC a method answers, written on the method that overrides the generated
/// base class's: <see cref="ReadsAttribute"/>, <see cref="ChangesAttribute"/> or <see cref="CreatesAttribute"/>.
/// </summary>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
public abstract class AuditedAttribute : Attribute
{
    /// <summary>What a mutation changes; null for a read.</summary>
    public abstract AuditTarget? Target { get; }
}

/// <summary>A read: not recorded.</summary>
public sealed class ReadsAttribute : AuditedAttribute
{
    public override AuditTarget? Target => null;
}

/// <summary>A mutation of an existing target, whose id is the request's field <paramref name="idPath"/>.</summary>
/// <param name="type">The target type, e.g. <c>Requisition</c>.</param>
/// <param name="idPath">The id's field path in the request, e.g. <c>id</c>.</param>
public sealed class ChangesAttribute(string type, string idPath) : AuditedAttribute
{
    public override AuditTarget? Target { get; } = new(type, idPath, InResponse: false);
}

/// <summary>A create: the new target's id is the response's field <paramref name="idPath"/>, given by the service.</summary>
/// <param name="type">The target type, e.g. <c>Requisition</c>.</param>
/// <param name="idPath">The id's field path in the response, e.g. <c>requisition.id</c>.</param>
public sealed class CreatesAttribute(string type, string idPath) : AuditedAttribute
{
    public override AuditTarget? Target { get; } = new(type, idPath, InResponse: true);
}

/// <summary>The store (keyed <c>Database</c>) that keeps the audit records of a gRPC service class's mutations.</summary>
/// <param name="store">The store's name.</param>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class AuditStoreAttribute(string store) : Attribute
{
    public string Store { get; } = store;
}

/// <summary>
/// How each RPC of LabMesh's services is audited: the <see cref="AuditedAttribute"/> on its method (a
/// mutation, recorded with its target, or a read, not recorded) and the <see cref="AuditStoreAttribute"/>
/// of its service class. Explicit on purpose: a test enumerates every method of the generated descriptors
/// and fails on one not classified, and at run time a LabMesh method without a classification is refused
/// (fail closed) rather than run unaudited.
/// </summary>
public static class AuditCatalog
{
    /// <summary>
    /// What the method <paramref name="context"/> calls changes, and the store that records it, from its
    /// endpoint's metadata; null for a read and for a method outside LabMesh's contracts (gRPC health,
    /// reflection). UNIMPLEMENTED for a LabMesh method nobody classified, and for a mutation of a service
    /// class that names no store.
    /// </summary>
    public static (AuditTarget Target, string Store)? MutationOf(ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        var metadata = context.GetHttpContext().GetEndpoint()?.Metadata;
        if (metadata?.GetMetadata<AuditedAttribute>() is { } audited)
        {
            if (audited.Target is not { } target)
            {
                return null;
            }

            if (metadata.GetMetadata<AuditStoreAttribute>()?.Store is { } store)
            {
                return (target, store);
            }
        }

        return context.Method.StartsWith("/labmesh.", StringComparison.Ordinal)
            ? throw new RpcException(new Status(StatusCode.Unimplemented, "This method is not classified for the audit log, so it is not served."))
            : null;
    }

    /// <summary>
    /// The classification of each RPC of the gRPC service class <paramref name="implementation"/>, in the
    /// order of its proto. A method without an <see cref="AuditedAttribute"/> is left out (and refused when called).
    /// </summary>
    public static IEnumerable<AuditedMethod> Methods([DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicMethods)] Type implementation)
    {
        var store = implementation.GetCustomAttribute<AuditStoreAttribute>(inherit: false)?.Store;
        return from rpc in RpcHandlers.Of(implementation)
               let audited = rpc.Handler.GetCustomAttribute<AuditedAttribute>()
               where audited is not null
               select new AuditedMethod(rpc.FullName, store, audited.Target);
    }
}
