using Grpc.Core;
using LabMesh.Security.Identity;
using LabMesh.Testing;

namespace LabMesh.Identity.Tests;

/// <summary>
/// Every cell of the access matrix through a real call on a real host: each role against each RPC. A
/// denying cell is PERMISSION_DENIED before the handler runs (the request is empty, which any handler
/// that writes would refuse as INVALID_ARGUMENT, so nothing can be written); an allowing cell is never
/// refused by the interceptor (the handler answers whatever it answers to an empty request).
/// </summary>
[Collection(MeshCollection.Name)]
public sealed class MatrixEnforcementTests(Mesh mesh)
{
    private static readonly Marshaller<byte[]> Raw = Marshallers.Create<byte[]>(bytes => bytes, bytes => bytes);

    public static TheoryData<string, CallerRole> DenyingCells()
    {
        var data = new TheoryData<string, CallerRole>();
        foreach (var rule in LabMeshApis.AccessRules)
        {
            foreach (var role in Enum.GetValues<CallerRole>().Where(role => !rule.Allows(role)))
            {
                data.Add(rule.Method, role);
            }
        }

        return data;
    }

    public static TheoryData<string, CallerRole> AllowingCells()
    {
        var data = new TheoryData<string, CallerRole>();
        foreach (var rule in LabMeshApis.AccessRules)
        {
            foreach (var role in Enum.GetValues<CallerRole>().Where(rule.Allows))
            {
                data.Add(rule.Method, role);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(DenyingCells))]
    public async Task DenyingCell_IsPermissionDenied(string method, CallerRole role)
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => CallAsync(method, role));

        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        Assert.Contains(TokenIdentity.RoleName(role), error.Status.Detail, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(AllowingCells))]
    public async Task AllowingCell_IsNotRefusedByTheInterceptor(string method, CallerRole role)
    {
        try
        {
            await CallAsync(method, role);
        }
        catch (RpcException e)
        {
            Assert.DoesNotContain(e.StatusCode, new[] { StatusCode.PermissionDenied, StatusCode.Unauthenticated, StatusCode.Internal, StatusCode.Unknown });
        }
    }

    public static TheoryData<string> Methods() => [.. LabMeshApis.AccessRules.Select(r => r.Method)];

    [Theory]
    [MemberData(nameof(Methods))]
    public async Task EveryRpc_WithoutAToken_IsUnauthenticated(string method)
    {
        var invoker = mesh.WithHeaders();
        var error = await Assert.ThrowsAsync<RpcException>(() => CallAsync(invoker, method));

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Equal(AuthorizationInterceptor.UnauthenticatedMessage, error.Status.Detail);
    }

    private Task CallAsync(string method, CallerRole role) =>
        CallAsync(mesh.As("matrix-team", role, "matrix-" + TokenIdentity.RoleName(role)), method);

    /// <summary>One call with an empty request; a server stream is read until its first message or the short deadline.</summary>
    private static async Task CallAsync(CallInvoker invoker, string fullName)
    {
        var service = fullName[1..fullName.LastIndexOf('/')];
        var name = fullName[(fullName.LastIndexOf('/') + 1)..];
        var descriptor = LabMeshApis.All.Select(RpcHandlers.Service).Single(s => s.FullName == service).FindMethodByName(name);
        var deadline = DateTime.UtcNow.AddSeconds(descriptor.IsServerStreaming ? 1 : 30);
        if (descriptor.IsServerStreaming)
        {
            var method = new Method<byte[], byte[]>(MethodType.ServerStreaming, service, name, Raw, Raw);
            using var call = invoker.AsyncServerStreamingCall(method, null, new CallOptions(deadline: deadline), []);
            try
            {
                await call.ResponseStream.MoveNext(CancellationToken.None);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.DeadlineExceeded)
            {
                // Streaming until the deadline: the call was let through.
            }

            return;
        }

        var unary = new Method<byte[], byte[]>(MethodType.Unary, service, name, Raw, Raw);
        await invoker.AsyncUnaryCall(unary, null, new CallOptions(deadline: deadline), []);
    }
}
