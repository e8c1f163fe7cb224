using Google.Protobuf;
using Grpc.Core;
using LabMesh.Grpc.Tests.Echo;

namespace LabMesh.Grpc.Tests.Runtime;

public sealed class UnaryAndStreamingTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Unary_RoundTrip_ReturnsResponseAndOkStatus()
    {
        await using var echo = await EchoServer.StartAsync();
        var call = echo.Client.UnaryAsync(new EchoRequest { Text = "hello", Payload = ByteString.CopyFromUtf8("abc") });
        var response = await call.ResponseAsync.WaitAsync(Timeout);
        Assert.Equal("hello", response.Text);
        Assert.Equal("abc", response.Payload.ToStringUtf8());
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
        Assert.Empty(echo.Server.Logs.Errors);
    }

    [Fact]
    public async Task BlockingUnary_RoundTrip_ReturnsResponse()
    {
        await using var echo = await EchoServer.StartAsync();
        var response = await Task.Run(() => echo.Client.Unary(new EchoRequest { Text = "blocking" }, deadline: DateTime.UtcNow.Add(Timeout))).WaitAsync(Timeout);
        Assert.Equal("blocking", response.Text);
    }

    [Fact]
    public async Task ServerStreaming_SendsEveryMessageInOrder()
    {
        await using var echo = await EchoServer.StartAsync();
        using var call = echo.Client.ServerStream(new EchoRequest { Text = "s", Count = 50 });
        var indexes = new List<int>();
        await foreach (var response in call.ResponseStream.ReadAllAsync().WithCancellation(new CancellationTokenSource(Timeout).Token))
        {
            indexes.Add(response.Index);
        }
        Assert.Equal(Enumerable.Range(0, 50), indexes);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task ServerStreaming_ZeroMessages_EndsOk()
    {
        await using var echo = await EchoServer.StartAsync();
        using var call = echo.Client.ServerStream(new EchoRequest { Count = 0 });
        Assert.False(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task ClientStreaming_ServerSeesEveryMessage()
    {
        await using var echo = await EchoServer.StartAsync();
        using var call = echo.Client.ClientStream();
        foreach (var text in new[] { "a", "b", "c" })
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Text = text }).WaitAsync(Timeout);
        }
        await call.RequestStream.CompleteAsync().WaitAsync(Timeout);
        var response = await call.ResponseAsync.WaitAsync(Timeout);
        Assert.Equal("a,b,c", response.Text);
        Assert.Equal(3, response.Index);
    }

    [Fact]
    public async Task ClientStreaming_NoMessages_ServerSeesEmptyStream()
    {
        await using var echo = await EchoServer.StartAsync();
        using var call = echo.Client.ClientStream();
        await call.RequestStream.CompleteAsync().WaitAsync(Timeout);
        var response = await call.ResponseAsync.WaitAsync(Timeout);
        Assert.Equal(0, response.Index);
    }

    [Fact]
    public async Task Duplex_PingPong_AnswersEachMessageBeforeTheNext()
    {
        await using var echo = await EchoServer.StartAsync();
        using var call = echo.Client.Duplex();
        for (var i = 0; i < 20; i++)
        {
            await call.RequestStream.WriteAsync(new EchoRequest { Text = $"ping{i}" }).WaitAsync(Timeout);
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout));
            Assert.Equal($"ping{i}", call.ResponseStream.Current.Text);
            Assert.Equal(i, call.ResponseStream.Current.Index);
        }
        await call.RequestStream.CompleteAsync().WaitAsync(Timeout);
        Assert.False(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task Duplex_ServerFailsMidStream_ClientSeesStatusAfterEarlierMessages()
    {
        await using var echo = await EchoServer.StartAsync();
        using var call = echo.Client.Duplex();
        await call.RequestStream.WriteAsync(new EchoRequest { Text = "ok" }).WaitAsync(Timeout);
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout));
        await call.RequestStream.WriteAsync(new EchoRequest { FailWithCode = (int)StatusCode.FailedPrecondition, FailWithMessage = "no" }).WaitAsync(Timeout);
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        Assert.Equal("no", ex.Status.Detail);
    }

    [Fact]
    public async Task ManyConcurrentCalls_AllSucceed()
    {
        await using var echo = await EchoServer.StartAsync();
        var calls = Enumerable.Range(0, 200).Select(i => echo.Client.UnaryAsync(new EchoRequest { Text = i.ToString(System.Globalization.CultureInfo.InvariantCulture) }).ResponseAsync);
        var responses = await Task.WhenAll(calls).WaitAsync(Timeout);
        Assert.Equal(Enumerable.Range(0, 200).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), responses.Select(r => r.Text));
    }
}
