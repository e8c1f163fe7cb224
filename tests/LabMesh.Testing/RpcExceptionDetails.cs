using Google.Protobuf;
using Grpc.Core;

namespace LabMesh.Testing;

/// <summary>Reads the details of an error a LabMesh server sent, through Grpc.StatusProto.</summary>
public static class RpcExceptionDetails
{
    /// <summary>The first <c>google.rpc.Status</c> detail of type <typeparamref name="T"/> (e.g. <c>BadRequest</c>), or null.</summary>
    public static T? GetDetail<T>(this RpcException exception)
        where T : class, IMessage<T>, new()
    {
        ArgumentNullException.ThrowIfNull(exception);
        return exception.GetRpcStatus()?.GetDetail<T>();
    }
}
