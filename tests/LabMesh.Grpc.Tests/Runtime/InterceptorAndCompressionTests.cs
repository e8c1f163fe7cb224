using System.Collections.Concurrent;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using LabMesh.Grpc.Tests.Echo;

namespace LabMesh.Grpc.Tests.Runtime;

public sealed class InterceptorAndCompressionTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task ServerInterceptors_WrapEveryCallKind_OutermostFirst()
    {
        await using var echo = await EchoServer.StartAsync(o =>
        {
            o.Interceptors.Add<RecordingServerInterceptor>("outer");
            o.Interceptors.Add<RecordingServerInterceptor>("inner");
        });
        await RunAllKindsAsync(echo.Client);
        var log = RecordingServerInterceptor.Drain();
        foreach (var kind in new[] { "unary", "server-streaming", "client-streaming", "duplex" })
        {
            Assert.Equal([$"outer>{kind}", $"inner>{kind}", $"inner<{kind}", $"outer<{kind}"], log.Where(l => l.EndsWith(kind, StringComparison.Ordinal)));
        }
    }

    [Fact]
    public async Task ServerInterceptor_CanRejectWithAStatus()
    {
        await using var echo = await EchoServer.StartAsync(o => o.Interceptors.Add<RejectingServerInterceptor>());
        var ex = await Assert.ThrowsAsync<RpcException>(() => echo.Client.UnaryAsync(new EchoRequest()).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.PermissionDenied, ex.StatusCode);
        Assert.False(echo.Probe.CallStarted.Task.IsCompleted);
    }

    [Fact]
    public async Task ClientInterceptors_WrapEveryCallKind_AndCanAddHeaders()
    {
        await using var echo = await EchoServer.StartAsync();
        var seen = new ConcurrentQueue<string>();
        var invoker = echo.Channel.Intercept(new RecordingClientInterceptor("outer", seen), new RecordingClientInterceptor("inner", seen))
            .Intercept(headers =>
            {
                headers.Add("x-intercepted", "yes");
                return headers;
            });
        var client = new Echo.Echo.EchoClient(invoker);
        await RunAllKindsAsync(client);
        Assert.Equal("yes", echo.Probe.LastRequestHeaders!.GetValue("x-intercepted"));
        Assert.Equal(
            ["outer:Unary", "inner:Unary", "outer:ServerStream", "inner:ServerStream", "outer:ClientStream", "inner:ClientStream", "outer:Duplex", "inner:Duplex"],
            seen);
    }

    [Fact]
    public async Task Gzip_BothWays_PerChannelAndServer()
    {
        await using var echo = await EchoServer.StartAsync(o => o.ResponseCompressionAlgorithm = "gzip");
        using var channel = GrpcChannel.ForAddress(echo.Server.Address, new GrpcChannelOptions { CompressionAlgorithm = "gzip" });
        var client = new Echo.Echo.EchoClient(channel);
        var payload = ByteString.CopyFrom(new byte[64 * 1024]);
        var call = client.UnaryAsync(new EchoRequest { Payload = payload });
        var response = await call.ResponseAsync.WaitAsync(Timeout);
        Assert.Equal(payload, response.Payload);
        Assert.Equal("gzip", echo.Probe.LastRequestEncoding);

        using var raw = new RawHttp2();
        var wire = await raw.PostAsync(echo.Server.Address + "/labmesh.test.v1.Echo/Unary",
            RawHttp2.Frame(new EchoRequest { ResponseSize = 10_000 }.ToByteArray()), headers: [("grpc-accept-encoding", "gzip")]);
        Assert.Equal("gzip", wire.Header("grpc-encoding"));
        Assert.Equal(1, wire.Body[0]);
        Assert.True(wire.Body.Length < 1000, $"a compressed 10 kB run of zeros is {wire.Body.Length} bytes");
    }

    [Fact]
    public async Task EmptyMessage_UnderCompression_GoesUncompressed()
    {
        // A zero-length "gzip" frame is not a gzip stream; peers such as grpc-js reject it.
        await using var echo = await EchoServer.StartAsync(o => o.ResponseCompressionAlgorithm = "gzip");
        using var raw = new RawHttp2();
        var wire = await raw.PostAsync(echo.Server.Address + "/labmesh.test.v1.Echo/Unary",
            RawHttp2.Frame(new EchoRequest().ToByteArray()), headers: [("grpc-accept-encoding", "gzip")]);
        Assert.Equal("gzip", wire.Header("grpc-encoding"));
        Assert.Equal(new byte[] { 0, 0, 0, 0, 0 }, wire.Body);
    }

    [Fact]
    public async Task ServerCompression_OnlyForClientsThatAcceptIt()
    {
        await using var echo = await EchoServer.StartAsync(o => o.ResponseCompressionAlgorithm = "gzip");
        using var raw = new RawHttp2();
        var wire = await raw.PostAsync(echo.Server.Address + "/labmesh.test.v1.Echo/Unary",
            RawHttp2.Frame(new EchoRequest { ResponseSize = 10_000 }.ToByteArray()), headers: [("grpc-accept-encoding", "identity")]);
        Assert.Null(wire.Header("grpc-encoding"));
        Assert.Equal(0, wire.Body[0]);
    }

    [Fact]
    public async Task PerCallNoCompress_SendsThatMessageUncompressed()
    {
        await using var echo = await EchoServer.StartAsync();
        using var channel = GrpcChannel.ForAddress(echo.Server.Address, new GrpcChannelOptions { CompressionAlgorithm = "gzip" });
        var client = new Echo.Echo.EchoClient(channel);
        using var call = client.ClientStream();
        call.RequestStream.WriteOptions = new WriteOptions(WriteFlags.NoCompress);
        await call.RequestStream.WriteAsync(new EchoRequest { Text = "plain" }).WaitAsync(Timeout);
        call.RequestStream.WriteOptions = null;
        await call.RequestStream.WriteAsync(new EchoRequest { Text = "zipped" }).WaitAsync(Timeout);
        await call.RequestStream.CompleteAsync().WaitAsync(Timeout);
        Assert.Equal("plain,zipped", (await call.ResponseAsync.WaitAsync(Timeout)).Text);
    }

    [Fact]
    public async Task CorruptGzipPayload_IsInternalOnTheServer()
    {
        await using var echo = await EchoServer.StartAsync();
        using var raw = new RawHttp2();
        var wire = await raw.PostAsync(echo.Server.Address + "/labmesh.test.v1.Echo/Unary",
            RawHttp2.Frame([1, 2, 3, 4, 5, 6, 7, 8], compressed: true), headers: [("grpc-encoding", "gzip")]);
        // statuscodes.md: could not decompress with a supported algorithm is INTERNAL.
        Assert.Equal("13", wire.GrpcStatus);
        await echo.Client.UnaryAsync(new EchoRequest()).ResponseAsync.WaitAsync(Timeout);
    }

    private static async Task RunAllKindsAsync(Echo.Echo.EchoClient client)
    {
        await client.UnaryAsync(new EchoRequest { Text = "u" }).ResponseAsync.WaitAsync(Timeout);
        using (var stream = client.ServerStream(new EchoRequest { Count = 2 }))
        {
            while (await stream.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout))
            {
            }
        }
        using (var upload = client.ClientStream())
        {
            await upload.RequestStream.WriteAsync(new EchoRequest { Text = "c" }).WaitAsync(Timeout);
            await upload.RequestStream.CompleteAsync().WaitAsync(Timeout);
            await upload.ResponseAsync.WaitAsync(Timeout);
        }
        using var duplex = client.Duplex();
        await duplex.RequestStream.WriteAsync(new EchoRequest { Text = "d" }).WaitAsync(Timeout);
        await duplex.RequestStream.CompleteAsync().WaitAsync(Timeout);
        while (await duplex.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout))
        {
        }
    }

    private sealed class RecordingServerInterceptor(string name, EchoProbe probe) : Interceptor
    {
        private static readonly ConcurrentQueue<string> Log = new();

        public static List<string> Drain()
        {
            var items = new List<string>();
            while (Log.TryDequeue(out var item))
            {
                items.Add(item);
            }
            return items;
        }

        public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
        {
            Assert.NotNull(probe);
            Log.Enqueue($"{name}>unary");
            var response = await continuation(request, context);
            Log.Enqueue($"{name}<unary");
            return response;
        }

        public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
        {
            Log.Enqueue($"{name}>server-streaming");
            await continuation(request, responseStream, context);
            Log.Enqueue($"{name}<server-streaming");
        }

        public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
        {
            Log.Enqueue($"{name}>client-streaming");
            var response = await continuation(requestStream, context);
            Log.Enqueue($"{name}<client-streaming");
            return response;
        }

        public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
        {
            Log.Enqueue($"{name}>duplex");
            await continuation(requestStream, responseStream, context);
            Log.Enqueue($"{name}<duplex");
        }
    }

    private sealed class RejectingServerInterceptor : Interceptor
    {
        public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation) =>
            throw new RpcException(new Status(StatusCode.PermissionDenied, "not for you"));
    }

    private sealed class RecordingClientInterceptor(string name, ConcurrentQueue<string> seen) : Interceptor
    {
        public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
        {
            seen.Enqueue($"{name}:{context.Method.Name}");
            return continuation(request, context);
        }

        public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context, AsyncServerStreamingCallContinuation<TRequest, TResponse> continuation)
        {
            seen.Enqueue($"{name}:{context.Method.Name}");
            return continuation(request, context);
        }

        public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context, AsyncClientStreamingCallContinuation<TRequest, TResponse> continuation)
        {
            seen.Enqueue($"{name}:{context.Method.Name}");
            return continuation(context);
        }

        public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context, AsyncDuplexStreamingCallContinuation<TRequest, TResponse> continuation)
        {
            seen.Enqueue($"{name}:{context.Method.Name}");
            return continuation(context);
        }
    }
}
