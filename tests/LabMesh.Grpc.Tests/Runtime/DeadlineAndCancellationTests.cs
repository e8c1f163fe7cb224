using System.Diagnostics;
using Google.Protobuf;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Grpc.Core.Internal;
using Grpc.Net.Client;
using LabMesh.Grpc.Tests.Echo;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http.Features;

namespace LabMesh.Grpc.Tests.Runtime;

public sealed class DeadlineAndCancellationTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData("1H", 36_000_000_000L)]
    [InlineData("2M", 1_200_000_000L)]
    [InlineData("3S", 30_000_000L)]
    [InlineData("250m", 2_500_000L)]
    [InlineData("1500u", 15_000L)]
    [InlineData("100n", 1L)]
    [InlineData("150n", 2L)]
    [InlineData("99999999S", 999_999_990_000_000L)]
    public void TryParseTimeout_EveryUnit(string header, long expectedTicks)
    {
        Assert.True(GrpcProtocol.TryParseTimeout(header, out var timeout));
        Assert.Equal(expectedTicks, timeout.Ticks);
    }

    [Theory]
    [InlineData("")]
    [InlineData("S")]
    [InlineData("10")]
    [InlineData("10s")]
    [InlineData("-1S")]
    [InlineData("1.5S")]
    [InlineData("123456789S")]
    [InlineData(" 1S")]
    public void TryParseTimeout_Malformed_IsRejected(string header) =>
        Assert.False(GrpcProtocol.TryParseTimeout(header, out _));

    [Theory]
    [InlineData(0.0001)]
    [InlineData(1)]
    [InlineData(250)]
    [InlineData(90_000)]
    [InlineData(86_400_000)]
    [InlineData(1e12)]
    public void FormatTimeout_AtMostEightDigits_NeverShorter(double milliseconds)
    {
        var timeout = TimeSpan.FromMilliseconds(milliseconds);
        var header = GrpcProtocol.FormatTimeout(timeout);
        Assert.InRange(header.Length - 1, 1, 8);
        Assert.True(GrpcProtocol.TryParseTimeout(header, out var parsed));
        Assert.True(parsed >= timeout, $"{header} parses to {parsed}, shorter than {timeout}");
    }

    [Fact]
    public async Task ClientDeadline_SlowServer_IsDeadlineExceededOnTime()
    {
        await using var echo = await EchoServer.StartAsync();
        var stopwatch = Stopwatch.StartNew();
        var ex = await Assert.ThrowsAsync<RpcException>(() =>
            echo.Client.UnaryAsync(new EchoRequest { DelayMs = 10_000 }, deadline: DateTime.UtcNow.AddSeconds(1)).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        // One second, not less: on a loaded CI machine a shorter deadline can pass before the server
        // has even started the handler, and then there is no server-side cancellation to observe.
        Assert.InRange(stopwatch.Elapsed, TimeSpan.FromMilliseconds(950), TimeSpan.FromSeconds(4));
        // The server saw the deadline and its handler was cancelled.
        Assert.True(await echo.Probe.CallCancelled.Task.WaitAsync(Timeout));
        Assert.NotEqual(DateTime.MaxValue, echo.Probe.LastDeadline);
    }

    [Fact]
    public async Task ClientDeadline_AlreadyPassed_FailsWithoutCallingTheServer()
    {
        await using var echo = await EchoServer.StartAsync();
        var ex = await Assert.ThrowsAsync<RpcException>(() =>
            echo.Client.UnaryAsync(new EchoRequest(), deadline: DateTime.UtcNow.AddSeconds(-1)).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.False(echo.Probe.CallStarted.Task.IsCompleted);
    }

    [Fact]
    public async Task ServerDeadline_EnforcedEvenWhenTheClientWaits()
    {
        // A raw client that sends grpc-timeout but never cancels: the server must answer on its own.
        await using var echo = await EchoServer.StartAsync();
        using var raw = new RawHttp2();
        var stopwatch = Stopwatch.StartNew();
        var response = await raw.PostAsync(echo.Server.Address + "/labmesh.test.v1.Echo/Unary",
            RawHttp2.Frame(new EchoRequest { DelayMs = 10_000 }.ToByteArray()), headers: [("grpc-timeout", "200m")]);
        Assert.Equal(((int)StatusCode.DeadlineExceeded).ToString(System.Globalization.CultureInfo.InvariantCulture), response.GrpcStatus);
        Assert.InRange(stopwatch.Elapsed, TimeSpan.FromMilliseconds(150), TimeSpan.FromSeconds(5));
        Assert.True(await echo.Probe.CallCancelled.Task.WaitAsync(Timeout));
    }

    [Fact]
    public async Task ServerDeadline_StreamingHandlerStillWriting_GetsDeadlineAndNothingMoreIsSent()
    {
        await using var echo = await EchoServer.StartAsync();
        using var call = echo.Client.ServerStream(new EchoRequest { Count = 1000, DelayMs = 20 }, deadline: DateTime.UtcNow.AddMilliseconds(300));
        var received = 0;
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout))
            {
                received++;
            }
        });
        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.InRange(received, 1, 999);
    }

    [Fact]
    public async Task ClientCancellation_CancelsTheServerHandler()
    {
        await using var echo = await EchoServer.StartAsync();
        using var cts = new CancellationTokenSource();
        var call = echo.Client.UnaryAsync(new EchoRequest { DelayMs = 10_000 }, cancellationToken: cts.Token);
        await echo.Probe.CallStarted.Task.WaitAsync(Timeout);
        cts.Cancel();
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.Cancelled, ex.StatusCode);
        Assert.True(await echo.Probe.CallCancelled.Task.WaitAsync(Timeout));
        Assert.Empty(echo.Server.Logs.Errors);
    }

    [Fact]
    public async Task DisposingAStreamingCall_CancelsTheServerHandler()
    {
        await using var echo = await EchoServer.StartAsync();
        var call = echo.Client.Duplex();
        await call.RequestStream.WriteAsync(new EchoRequest { Text = "x" }).WaitAsync(Timeout);
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout));
        call.Dispose();
        Assert.True(await echo.Probe.CallCancelled.Task.WaitAsync(Timeout));
        Assert.Equal(StatusCode.Cancelled, call.GetStatus().StatusCode);
    }

    [Fact]
    public async Task ServerReset_ClientSeesCancelled()
    {
        await using var server = await TestGrpcServer.StartAsync(null, app => app.MapGrpcService<ResettingService>());
        using var channel = server.CreateChannel();
        var client = new Echo.Echo.EchoClient(channel);
        using var call = client.ServerStream(new EchoRequest());
        // The reset may overtake the first message, which the client then discards with the stream.
        var ex = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout))
            {
            }
        });
        Assert.Equal(StatusCode.Cancelled, ex.StatusCode);
    }

    [Fact]
    public async Task PropagatedDeadline_BoundsTheDownstreamCall()
    {
        // A -> B: A's handler calls B with a propagation token; the caller's deadline bounds B's call.
        await using var downstream = await EchoServer.StartAsync();
        var relay = new RelayProbe(downstream.Server.Address);
        await using var upstream = await TestGrpcServer.StartAsync(
            services => Microsoft.Extensions.DependencyInjection.ServiceCollectionServiceExtensions.AddSingleton(services, relay),
            app => app.MapGrpcService<RelayService>());
        using var channel = upstream.CreateChannel();
        var client = new Echo.Echo.EchoClient(channel);
        var ex = await Assert.ThrowsAsync<RpcException>(() =>
            client.UnaryAsync(new EchoRequest { DelayMs = 10_000 }, deadline: DateTime.UtcNow.AddMilliseconds(400)).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.DeadlineExceeded, ex.StatusCode);
        Assert.True(await downstream.Probe.CallCancelled.Task.WaitAsync(Timeout));
        Assert.InRange(downstream.Probe.LastDeadline, DateTime.UtcNow.AddSeconds(-5), DateTime.UtcNow.AddSeconds(1));
    }

    public sealed class RelayProbe(string downstream)
    {
        public GrpcChannel Channel { get; } = GrpcChannel.ForAddress(downstream);
    }

    /// <summary>Service A of a two-hop chain: relays each call to B, passing its deadline and cancellation on.</summary>
    public sealed class RelayService(RelayProbe relay) : Echo.Echo.EchoBase
    {
        public override Task<EchoResponse> Unary(EchoRequest request, ServerCallContext context) =>
            new Echo.Echo.EchoClient(relay.Channel).UnaryAsync(request, new CallOptions(propagationToken: context.CreatePropagationToken())).ResponseAsync;
    }

    private sealed class ResettingService : Echo.Echo.EchoBase
    {
        public override async Task ServerStream(EchoRequest request, IServerStreamWriter<EchoResponse> responseStream, ServerCallContext context)
        {
            await responseStream.WriteAsync(new EchoResponse { Text = "first" });
            // RST_STREAM with CANCEL (0x8), as a server that gives up on a call sends it.
            context.GetHttpContext().Features.Get<IHttpResetFeature>()!.Reset(8);
        }
    }
}
