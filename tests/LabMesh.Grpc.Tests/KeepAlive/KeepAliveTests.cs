using System.Diagnostics;
using System.Net;
using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.Grpc.Tests.Echo;
using LabMesh.Grpc.Tests.Runtime;
using Microsoft.AspNetCore.Hosting;

namespace LabMesh.Grpc.Tests.KeepAlive;

public sealed class KeepAliveTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan PingDelay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan PingTimeout = TimeSpan.FromSeconds(1);
    // SocketsHttpHandler checks its connections on a 1-second timer here, so sending the PING and noticing
    // the missing acknowledgement can each lag by up to a tick.
    private static readonly TimeSpan DetectionSlack = TimeSpan.FromSeconds(3);

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var timer = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(timer.Elapsed < Timeout, $"Timed out waiting until {what}.");
            await Task.Delay(20);
        }
    }

    private static GrpcChannel ChannelThrough(FreezableTcpProxy proxy, HttpKeepAlivePingPolicy policy) =>
        GrpcChannel.ForAddress($"http://127.0.0.1:{proxy.Port}", new GrpcChannelOptions
        {
            KeepAlivePingDelay = PingDelay,
            KeepAlivePingTimeout = PingTimeout,
            KeepAlivePingPolicy = policy,
        });

    private static IPEndPoint EndPointOf(EchoServer echo) => new(IPAddress.Loopback, echo.Server.Port);

    [Fact]
    public void Defaults_PingIdleConnectionsEveryMinute()
    {
        var options = new GrpcChannelOptions();
        Assert.Equal(TimeSpan.FromSeconds(60), options.KeepAlivePingDelay);
        Assert.Equal(TimeSpan.FromSeconds(20), options.KeepAlivePingTimeout);
        Assert.Equal(HttpKeepAlivePingPolicy.Always, options.KeepAlivePingPolicy);
    }

    [Fact]
    public async Task KeepAlive_IdleConnection_IsPinged()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = new FreezableTcpProxy(EndPointOf(echo));
        using var channel = ChannelThrough(proxy, HttpKeepAlivePingPolicy.Always);
        var client = new Echo.Echo.EchoClient(channel);

        await client.UnaryAsync(new EchoRequest { Text = "hi" }).ResponseAsync.WaitAsync(Timeout);
        var afterCall = proxy.Connections.Single().PingsFromClient;
        await WaitUntilAsync(() => proxy.Connections.Single().PingsFromClient >= afterCall + 2, "the idle connection saw two more PINGs");

        // The pings were answered: the connection is still the one in use.
        await client.UnaryAsync(new EchoRequest { Text = "again" }).ResponseAsync.WaitAsync(Timeout);
        Assert.Single(proxy.Connections);
    }

    [Fact]
    public async Task KeepAlive_WithActiveRequestsPolicy_LeavesIdleConnectionsAlone()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = new FreezableTcpProxy(EndPointOf(echo));
        using var channel = ChannelThrough(proxy, HttpKeepAlivePingPolicy.WithActiveRequests);
        var client = new Echo.Echo.EchoClient(channel);

        await client.UnaryAsync(new EchoRequest()).ResponseAsync.WaitAsync(Timeout);
        var afterCall = proxy.Connections.Single().PingsFromClient;
        await Task.Delay(PingDelay * 3);
        Assert.Equal(afterCall, proxy.Connections.Single().PingsFromClient);

        // A call that stays quiet longer than the delay is pinged.
        await client.UnaryAsync(new EchoRequest { DelayMs = 2500 }).ResponseAsync.WaitAsync(Timeout);
        Assert.True(proxy.Connections.Single().PingsFromClient > afterCall);
    }

    [Fact]
    public async Task KeepAlive_DeadIdleConnection_IsDetectedAndReplaced()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = new FreezableTcpProxy(EndPointOf(echo));
        using var channel = ChannelThrough(proxy, HttpKeepAlivePingPolicy.Always);
        var client = new Echo.Echo.EchoClient(channel);
        await client.UnaryAsync(new EchoRequest()).ResponseAsync.WaitAsync(Timeout);
        var first = proxy.Connections.Single();

        proxy.FreezeExisting();
        var frozenAt = Stopwatch.GetTimestamp();
        var closedAt = await first.ClientClosed.Task.WaitAsync(Timeout);

        var detectedAfter = Stopwatch.GetElapsedTime(frozenAt, closedAt);
        Assert.True(detectedAfter <= PingDelay + PingTimeout + DetectionSlack, $"The dead connection was closed after {detectedAfter}.");
        var response = await client.UnaryAsync(new EchoRequest { Text = "fresh" }).ResponseAsync.WaitAsync(Timeout);
        Assert.Equal("fresh", response.Text);
        Assert.Equal(2, proxy.Connections.Count);
    }

    [Fact]
    public async Task KeepAlive_CallOnDeadConnection_FailsUnavailable_InsteadOfHanging()
    {
        await using var echo = await EchoServer.StartAsync();
        await using var proxy = new FreezableTcpProxy(EndPointOf(echo));
        using var channel = ChannelThrough(proxy, HttpKeepAlivePingPolicy.WithActiveRequests);
        var client = new Echo.Echo.EchoClient(channel);
        await client.UnaryAsync(new EchoRequest()).ResponseAsync.WaitAsync(Timeout);

        var call = client.UnaryAsync(new EchoRequest { DelayMs = 60_000 });
        await echo.Probe.CallStarted.Task.WaitAsync(Timeout);
        proxy.FreezeExisting();
        var timer = Stopwatch.StartNew();

        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.True(timer.Elapsed <= PingDelay + PingTimeout + DetectionSlack, $"The call failed after {timer.Elapsed}.");
        await client.UnaryAsync(new EchoRequest()).ResponseAsync.WaitAsync(Timeout);
    }

    [Fact]
    public async Task ConfigureGrpcKeepAlive_ServerPingsItsClients()
    {
        await using var echo = await EchoServer.StartAsync(configureKestrel: k => k.ConfigureGrpcKeepAlive(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5)));
        await using var proxy = new FreezableTcpProxy(EndPointOf(echo));
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{proxy.Port}", new GrpcChannelOptions { KeepAlivePingDelay = System.Threading.Timeout.InfiniteTimeSpan });
        var client = new Echo.Echo.EchoClient(channel);

        await client.UnaryAsync(new EchoRequest()).ResponseAsync.WaitAsync(Timeout);
        await WaitUntilAsync(() => proxy.Connections.Single().PingsFromServer >= 2, "the server pinged twice");
    }
}
