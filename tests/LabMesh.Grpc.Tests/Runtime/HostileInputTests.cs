using System.Net;
using Google.Protobuf;
using Grpc.Core;
using LabMesh.Grpc.Tests.Echo;

namespace LabMesh.Grpc.Tests.Runtime;

/// <summary>Broken or hostile clients get a precise status, and the server keeps serving.</summary>
public sealed class HostileInputTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private const string UnaryPath = "/labmesh.test.v1.Echo/Unary";

    private static string Code(StatusCode code) => ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture);

    [Fact]
    public async Task TruncatedFrame_IsInvalidArgument()
    {
        await using var echo = await EchoServer.StartAsync();
        using var raw = new RawHttp2();
        var frame = RawHttp2.Frame(new EchoRequest { Text = "cut short" }.ToByteArray());
        var response = await raw.PostAsync(echo.Server.Address + UnaryPath, frame[..^3]);
        Assert.Equal(Code(StatusCode.InvalidArgument), response.GrpcStatus);
        Assert.Contains("Incomplete message", response.GrpcMessage, StringComparison.Ordinal);
        await AssertStillServesAsync(echo);
    }

    [Fact]
    public async Task TruncatedHeader_IsInvalidArgument()
    {
        await using var echo = await EchoServer.StartAsync();
        using var raw = new RawHttp2();
        var response = await raw.PostAsync(echo.Server.Address + UnaryPath, [0, 0, 0]);
        Assert.Equal(Code(StatusCode.InvalidArgument), response.GrpcStatus);
        await AssertStillServesAsync(echo);
    }

    [Fact]
    public async Task GarbagePayload_IsInvalidArgument()
    {
        await using var echo = await EchoServer.StartAsync();
        using var raw = new RawHttp2();
        var response = await raw.PostAsync(echo.Server.Address + UnaryPath, RawHttp2.Frame([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]));
        Assert.Equal(Code(StatusCode.InvalidArgument), response.GrpcStatus);
        await AssertStillServesAsync(echo);
    }

    [Fact]
    public async Task OversizeMessage_IsResourceExhausted_BeforeTheHandlerRuns()
    {
        await using var echo = await EchoServer.StartAsync();
        var request = new EchoRequest { Payload = ByteString.CopyFrom(new byte[(4 * 1024 * 1024) + 1]) };
        var ex = await Assert.ThrowsAsync<RpcException>(() => echo.Client.UnaryAsync(request).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
        Assert.False(echo.Probe.CallStarted.Task.IsCompleted);
        await AssertStillServesAsync(echo);
    }

    [Fact]
    public async Task OversizeLengthPrefix_WithoutTheBytes_IsResourceExhausted()
    {
        await using var echo = await EchoServer.StartAsync();
        using var raw = new RawHttp2();
        var response = await raw.PostAsync(echo.Server.Address + UnaryPath, [0, 0x7F, 0xFF, 0xFF, 0xFF]);
        Assert.Equal(Code(StatusCode.ResourceExhausted), response.GrpcStatus);
    }

    [Fact]
    public async Task OversizeResponse_OnTheClient_IsResourceExhausted()
    {
        await using var echo = await EchoServer.StartAsync();
        var ex = await Assert.ThrowsAsync<RpcException>(() =>
            echo.Client.UnaryAsync(new EchoRequest { ResponseSize = (4 * 1024 * 1024) + 10 }).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.ResourceExhausted, ex.StatusCode);
    }

    [Fact]
    public async Task MessageJustUnderTheLimit_IsAccepted()
    {
        await using var echo = await EchoServer.StartAsync();
        var request = new EchoRequest { Payload = ByteString.CopyFrom(new byte[(4 * 1024 * 1024) - 16]) };
        var response = await echo.Client.UnaryAsync(request).ResponseAsync.WaitAsync(Timeout);
        Assert.Equal(request.Payload.Length, response.Payload.Length);
    }

    [Theory]
    [InlineData("soon")]
    [InlineData("10")]
    [InlineData("123456789m")]
    [InlineData("-5S")]
    public async Task MalformedTimeout_IsInvalidArgument(string timeout)
    {
        await using var echo = await EchoServer.StartAsync();
        using var raw = new RawHttp2();
        var response = await raw.PostAsync(echo.Server.Address + UnaryPath, RawHttp2.Frame(new EchoRequest().ToByteArray()), headers: [("grpc-timeout", timeout)]);
        Assert.Equal(Code(StatusCode.InvalidArgument), response.GrpcStatus);
        Assert.Contains("grpc-timeout", response.GrpcMessage, StringComparison.Ordinal);
        Assert.False(echo.Probe.CallStarted.Task.IsCompleted);
    }

    [Theory]
    [InlineData("application/json")]
    [InlineData("text/plain")]
    [InlineData("application/grpcx")]
    [InlineData(null)]
    public async Task WrongContentType_Is415(string? contentType)
    {
        await using var echo = await EchoServer.StartAsync();
        using var raw = new RawHttp2();
        var response = await raw.PostAsync(echo.Server.Address + UnaryPath, RawHttp2.Frame(new EchoRequest().ToByteArray()), contentType);
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.NotEqual(Code(StatusCode.OK), response.GrpcStatus);
        Assert.False(echo.Probe.CallStarted.Task.IsCompleted);
    }

    [Fact]
    public async Task GrpcPlusProtoContentType_IsAccepted()
    {
        await using var echo = await EchoServer.StartAsync();
        using var raw = new RawHttp2();
        var response = await raw.PostAsync(echo.Server.Address + UnaryPath, RawHttp2.Frame(new EchoRequest { Text = "p" }.ToByteArray()), "application/grpc+proto");
        Assert.Equal(Code(StatusCode.OK), response.GrpcStatus);
    }

    [Fact]
    public async Task CompressedFlagWithoutEncoding_IsInvalidArgument()
    {
        await using var echo = await EchoServer.StartAsync();
        using var raw = new RawHttp2();
        var response = await raw.PostAsync(echo.Server.Address + UnaryPath, RawHttp2.Frame(new EchoRequest().ToByteArray(), compressed: true));
        Assert.Equal(Code(StatusCode.InvalidArgument), response.GrpcStatus);
        Assert.Contains("compressed flag", response.GrpcMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownEncoding_IsUnimplemented_WithTheAcceptedList()
    {
        await using var echo = await EchoServer.StartAsync();
        using var raw = new RawHttp2();
        var response = await raw.PostAsync(echo.Server.Address + UnaryPath, RawHttp2.Frame(new EchoRequest().ToByteArray()), headers: [("grpc-encoding", "snappy")]);
        Assert.Equal(Code(StatusCode.Unimplemented), response.GrpcStatus);
        Assert.Contains("gzip", response.Header("grpc-accept-encoding"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task TwoMessagesToAUnaryMethod_IsUnimplemented()
    {
        await using var echo = await EchoServer.StartAsync();
        using var raw = new RawHttp2();
        var one = RawHttp2.Frame(new EchoRequest().ToByteArray());
        var response = await raw.PostAsync(echo.Server.Address + UnaryPath, [.. one, .. one]);
        Assert.Equal(Code(StatusCode.Unimplemented), response.GrpcStatus);
    }

    [Fact]
    public async Task NoMessageToAUnaryMethod_IsUnimplemented()
    {
        await using var echo = await EchoServer.StartAsync();
        using var raw = new RawHttp2();
        var response = await raw.PostAsync(echo.Server.Address + UnaryPath, []);
        Assert.Equal(Code(StatusCode.Unimplemented), response.GrpcStatus);
    }

    [Theory]
    [InlineData("/labmesh.test.v1.Echo/NoSuchMethod", "Method is unimplemented")]
    [InlineData("/no.such.Service/Call", "Service is unimplemented")]
    public async Task UnknownServiceOrMethod_IsUnimplemented(string path, string message)
    {
        await using var echo = await EchoServer.StartAsync();
        using var raw = new RawHttp2();
        var response = await raw.PostAsync(echo.Server.Address + path, RawHttp2.Frame([]));
        Assert.Equal(Code(StatusCode.Unimplemented), response.GrpcStatus);
        Assert.StartsWith(message, response.GrpcMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClientVanishingMidStream_ServerKeepsServingWithoutErrors()
    {
        await using var echo = await EchoServer.StartAsync();
        for (var i = 0; i < 3; i++)
        {
            // A client process that dies: its connection closes under an open duplex call.
            using var channel = echo.Server.CreateChannel();
            var client = new Echo.Echo.EchoClient(channel);
            var call = client.Duplex();
            await call.RequestStream.WriteAsync(new EchoRequest { Text = "half" }).WaitAsync(Timeout);
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout));
            channel.Dispose();
        }
        await AssertStillServesAsync(echo);
        Assert.Empty(echo.Server.Logs.Errors);
    }

    private static async Task AssertStillServesAsync(EchoServer echo)
    {
        var response = await echo.Client.UnaryAsync(new EchoRequest { Text = "still here" }).ResponseAsync.WaitAsync(Timeout);
        Assert.Equal("still here", response.Text);
    }
}
