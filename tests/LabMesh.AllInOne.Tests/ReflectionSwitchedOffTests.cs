using Grpc.Core;
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
        var deadline = DateTime.UtcNow + ReflectionHost.Timeout;

        using var v1 = new V1.ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo(deadline: deadline);
        await v1.RequestStream.WriteAsync(new V1.ServerReflectionRequest { ListServices = "" }).WaitAsync(ReflectionHost.Timeout);
        var v1Error = await Assert.ThrowsAsync<RpcException>(() => v1.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(ReflectionHost.Timeout));
        using var v1Alpha = new V1Alpha.ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo(deadline: deadline);
        await v1Alpha.RequestStream.WriteAsync(new V1Alpha.ServerReflectionRequest { ListServices = "" }).WaitAsync(ReflectionHost.Timeout);
        var v1AlphaError = await Assert.ThrowsAsync<RpcException>(() => v1Alpha.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(ReflectionHost.Timeout));

        Assert.Equal(StatusCode.Unimplemented, v1Error.StatusCode);
        Assert.Equal(StatusCode.Unimplemented, v1AlphaError.StatusCode);
        mesh.Host.Logs.AssertNoErrors();
    }
}
