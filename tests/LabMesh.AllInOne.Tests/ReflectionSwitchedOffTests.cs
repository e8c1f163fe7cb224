using Grpc.Core;
using LabMesh.Testing;
using V1 = Grpc.Reflection.V1;
using V1Alpha = Grpc.Reflection.V1Alpha;

namespace LabMesh.AllInOne.Tests;

/// <summary><c>LabMesh:Security:Reflection=false</c> still maps neither reflection service.</summary>
public sealed class ReflectionSwitchedOffTests(ReflectionOffHost mesh) : IClassFixture<ReflectionOffHost>
{
    [Fact]
    public async Task ReflectionSwitchedOff_V1AndV1Alpha_AreUnimplemented()
    {
        using var channel = mesh.Host.CreateChannel();

        var v1Error = await Assert.ThrowsAsync<RpcException>(() =>
            ListServicesAsync(new V1.ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo(deadline: Deadline()), new V1.ServerReflectionRequest { ListServices = "" }));
        var v1AlphaError = await Assert.ThrowsAsync<RpcException>(() =>
            ListServicesAsync(new V1Alpha.ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo(deadline: Deadline()), new V1Alpha.ServerReflectionRequest { ListServices = "" }));

        Assert.Equal(StatusCode.Unimplemented, v1Error.StatusCode);
        Assert.Equal(StatusCode.Unimplemented, v1AlphaError.StatusCode);
        mesh.Host.Logs.AssertNoErrors();
    }

    private static DateTime Deadline() => DateTime.UtcNow + HostFixture.Timeout;

    /// <summary>
    /// One request and a read. The server may answer UNIMPLEMENTED before the request is written, and then the
    /// write is what fails, with the same status.
    /// </summary>
    private static async Task ListServicesAsync<TRequest, TResponse>(AsyncDuplexStreamingCall<TRequest, TResponse> call, TRequest request)
    {
        using (call)
        {
            await call.RequestStream.WriteAsync(request).WaitAsync(HostFixture.Timeout);
            await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(HostFixture.Timeout);
        }
    }
}
