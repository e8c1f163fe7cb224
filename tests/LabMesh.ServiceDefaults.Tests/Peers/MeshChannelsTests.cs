using System.Net;
using System.Net.Sockets;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.HealthCheck;
using Grpc.Net.Client;
using LabMesh.ServiceDefaults.Peers;
using LabMesh.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace LabMesh.ServiceDefaults.Tests.Peers;

/// <summary>
/// The channels LabMesh makes on grpc-dotnet (MeshChannels): address lists balanced round-robin, and a peer
/// that restarts reached again as soon as it is back. Each replica here is a bare grpc-dotnet server whose
/// health service answers a status of its own, so a reply says which replica served it.
/// </summary>
public sealed class MeshChannelsTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task Ipv4List_BalancesRoundRobinOverEveryAddress()
    {
        await using var a = await Replica.StartAsync("a");
        await using var b = await Replica.StartAsync("b");
        using var channel = MeshChannels.Create($"ipv4:127.0.0.1:{a.Port},127.0.0.1:{b.Port}");

        await AssertBothServeAsync(new Health.HealthClient(channel));
    }

    [Fact]
    public async Task PeerClient_IsOneClientWhoseChannelIsDisposedWithTheProvider()
    {
        await using var a = await Replica.StartAsync("a");
        var services = new ServiceCollection().AddLogging();
        services.Configure<PeerOptions>(o => o.ServiceRequest = $"http://127.0.0.1:{a.Port}");
        services.AddPeerClient<Health.HealthClient>(p => p.ServiceRequest, Health.Descriptor.FullName);
        var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<Health.HealthClient>();
        Assert.Same(client, provider.GetRequiredService<Health.HealthClient>());
        Assert.Equal("a", await Replica.WhoAsync(client));

        await provider.DisposeAsync();

        await Assert.ThrowsAsync<ObjectDisposedException>(() => Replica.WhoAsync(client));
    }

    [Fact]
    public async Task PeerClient_BalancesOverTheConfiguredList()
    {
        await using var a = await Replica.StartAsync("a");
        await using var b = await Replica.StartAsync("b");
        var services = new ServiceCollection().AddLogging();
        services.Configure<PeerOptions>(o => o.ServiceRequest = $"ipv4:127.0.0.1:{a.Port},127.0.0.1:{b.Port}");
        services.AddPeerClient<Health.HealthClient>(p => p.ServiceRequest, Health.Descriptor.FullName);
        services.AddPeerClient<Health.HealthClient>(p => p.Requisition, Health.Descriptor.FullName);
        await using var provider = services.BuildServiceProvider();

        // The second registration was a no-op: the list of the first is what the client calls.
        await AssertBothServeAsync(provider.GetRequiredService<Health.HealthClient>());
    }

    [Fact]
    public async Task DnsTarget_ReachesTheService()
    {
        await using var a = await Replica.StartAsync("a");
        using var channel = MeshChannels.Create($"dns:///localhost:{a.Port}");

        Assert.Equal("a", await Replica.WhoAsync(new Health.HealthClient(channel)));
    }

    [Theory]
    [InlineData("ipv4:127.0.0.1:7101,127.0.0.1:7102", "127.0.0.1:7101,127.0.0.1:7102")]
    [InlineData("ipv4:10.0.0.1", "10.0.0.1:443")]
    [InlineData("ipv6:[::1]:7101,[::1]:7102", "::1:7101,::1:7102")]
    public void AddressList_IsParsedAsGrpcNamingSays(string target, string expected) =>
        Assert.Equal(expected, string.Join(",", MeshChannels.ParseAddressList(new Uri(target)).Select(e => $"{e.Host}:{e.Port}")));

    [Theory]
    [InlineData("ipv4:127.0.0.1:7101,not-an-address:1")]
    [InlineData("ipv4:[::1]:7101")]
    [InlineData("ipv6:127.0.0.1:7101")]
    public void AddressList_WithAnEntryOfAnotherKind_IsRefused(string target) =>
        Assert.Throws<FormatException>(() => MeshChannels.ParseAddressList(new Uri(target)));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task PeerDown_IdempotentCall_IsUnavailableOnceItsRetriesAreSpent_NotAtItsDeadline(bool wasConnected)
    {
        // The peer's port is held by a socket that is bound but not listening: connections to it are refused, and
        // no server another test starts meanwhile (Redis, PostgreSQL) can take the port and answer in its place.
        using var hold = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        hold.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        var retry = MeshChannels.RetryIdempotent(Health.Descriptor.FullName);
        GrpcChannel channel;
        if (wasConnected)
        {
            // The peer served this channel, then stopped: its connection is gone, not merely never made.
            var replica = await Replica.StartAsync("a");
            channel = MeshChannels.Create($"http://127.0.0.1:{replica.Port}", retry);
            Assert.Equal("a", await Replica.WhoAsync(new Health.HealthClient(channel)));
            await replica.DisposeAsync();
            hold.Bind(new IPEndPoint(IPAddress.Loopback, replica.Port));
        }
        else
        {
            hold.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            channel = MeshChannels.Create($"http://127.0.0.1:{((IPEndPoint)hold.LocalEndPoint!).Port}", retry);
        }

        using var disposeChannel = channel;
        var client = new Health.HealthClient(channel);
        var watch = System.Diagnostics.Stopwatch.StartNew();

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            client.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(20)).ResponseAsync.WaitAsync(Timeout));

        // Five attempts with backoff below 50 + 100 + 200 + 400 ms, each refused at once on loopback.
        Assert.True(error.StatusCode == StatusCode.Unavailable, error.Status.ToString());
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2), $"took {watch.Elapsed}");
    }

    [Fact]
    public async Task PeerRestartedUnderLoad_NoCallFailsOnceItIsBack()
    {
        var port = FreePort.Next();
        var replica = await Replica.StartAsync("a", port);
        using var channel = MeshChannels.Create($"http://127.0.0.1:{port}", MeshChannels.RetryIdempotent(Health.Descriptor.FullName));
        var client = new Health.HealthClient(channel);
        var backTicks = long.MaxValue;
        var failedAfterBack = new List<string>();
        var failedWhileDown = 0;
        var succeeded = 0;
        using var stop = new CancellationTokenSource();

        async Task LoadAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                var started = DateTime.UtcNow.Ticks;
                try
                {
                    await client.CheckAsync(new HealthCheckRequest { Service = "who" }, deadline: DateTime.UtcNow.AddSeconds(5));
                    Interlocked.Increment(ref succeeded);
                }
                catch (RpcException e)
                {
                    if (started >= Interlocked.Read(ref backTicks))
                    {
                        lock (failedAfterBack)
                        {
                            failedAfterBack.Add($"{e.StatusCode} {e.Status.Detail}");
                        }
                    }
                    else
                    {
                        Interlocked.Increment(ref failedWhileDown);
                    }
                }
            }
        }

        var load = Enumerable.Range(0, 4).Select(_ => Task.Run(LoadAsync)).ToArray();
        await Task.Delay(300);
        await replica.DisposeAsync();
        // Down long enough for reconnect attempts to fail and back off.
        await Task.Delay(1500);
        replica = await Replica.StartAsync("a", port);
        Interlocked.Exchange(ref backTicks, DateTime.UtcNow.Ticks);
        var before = Volatile.Read(ref succeeded);
        await Eventually.HoldsAsync(() => Volatile.Read(ref succeeded) > before + 200, Timeout, "200 calls after the peer came back");
        await stop.CancelAsync();
        await Task.WhenAll(load).WaitAsync(Timeout);
        await replica.DisposeAsync();

        Assert.True(failedWhileDown > 0, "no call failed while the peer was down: the test did not take it down");
        Assert.True(failedAfterBack.Count == 0, $"{failedAfterBack.Count} calls started after the peer was back failed: {string.Join("; ", failedAfterBack.Take(5))}");
    }

    [Fact]
    public async Task PeerWhoseConnectsHang_IsReachedOnceItAnswersAgain_WithoutAConnectTimeout()
    {
        // A listener that never accepts, its accept queue full: the kernel drops further SYNs, so the channel's
        // connect hangs as to a host gone from the network (MeshChannels sets no connect timeout to end it).
        var port = FreePort.Next();
        var stuck = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        stuck.Bind(new IPEndPoint(IPAddress.Loopback, port));
        stuck.Listen(1);
        var fillers = new List<Socket>();
        for (var i = 0; i < 2; i++)
        {
            var filler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await filler.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)).WaitAsync(Timeout);
            fillers.Add(filler);
        }

        using var channel = MeshChannels.Create($"ipv4:127.0.0.1:{port}", MeshChannels.RetryIdempotent(Health.Descriptor.FullName));
        var client = new Health.HealthClient(channel);
        var hung = await Assert.ThrowsAsync<RpcException>(() =>
            client.CheckAsync(new HealthCheckRequest { Service = "who" }, deadline: DateTime.UtcNow.AddSeconds(2)).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.DeadlineExceeded, hung.StatusCode);

        // The peer answers again on its port: the hung connect's next SYN (the kernel resends after 1, 3, 7 s) gets through.
        fillers.ForEach(f => f.Dispose());
        stuck.Dispose();
        await using var replica = await Replica.StartAsync("a", port);
        await Eventually.HoldsAsync(
            async () =>
            {
                try
                {
                    return await Replica.WhoAsync(client, TimeSpan.FromSeconds(1)) == "a";
                }
                catch (RpcException)
                {
                    return false;
                }
            },
            TimeSpan.FromSeconds(20),
            "a call served once the peer answers");
    }

    /// <summary>Twenty calls: round-robin once both connections are up (the first calls may all go to the first one ready).</summary>
    private static async Task AssertBothServeAsync(Health.HealthClient client)
    {
        var served = new List<string>();
        for (var i = 0; i < 20; i++)
        {
            served.Add(await Replica.WhoAsync(client));
        }

        Assert.InRange(served.Count(s => s == "a"), 5, 15);
        Assert.InRange(served.Count(s => s == "b"), 5, 15);
    }

    /// <summary>A bare grpc-dotnet server whose health service says which replica it is (service "who").</summary>
    private sealed class Replica : IAsyncDisposable
    {
        private readonly WebApplication _app;

        private Replica(WebApplication app, int port)
        {
            _app = app;
            Port = port;
        }

        public int Port { get; }

        public static async Task<Replica> StartAsync(string name, int port = 0)
        {
            var builder = WebApplication.CreateBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, l => l.Protocols = HttpProtocols.Http2));
            var health = new HealthServiceImpl();
            // The replica's name as a status: "a" SERVING, "b" NOT_SERVING.
            health.SetStatus("who", name == "a" ? ServingStatus.Serving : ServingStatus.NotServing);
            builder.Services.AddGrpc();
            builder.Services.AddSingleton(health);
            var app = builder.Build();
            app.MapGrpcService<HealthServiceImpl>();
            await app.StartAsync().WaitAsync(Timeout);
            return new Replica(app, new Uri(app.Urls.Single()).Port);
        }

        public static Task<string> WhoAsync(Health.HealthClient client) => WhoAsync(client, Timeout);

        public static async Task<string> WhoAsync(Health.HealthClient client, TimeSpan deadline) =>
            (await client.CheckAsync(new HealthCheckRequest { Service = "who" }, deadline: DateTime.UtcNow + deadline)).Status == ServingStatus.Serving ? "a" : "b";

        public async ValueTask DisposeAsync()
        {
            await _app.StopAsync().WaitAsync(Timeout);
            await _app.DisposeAsync();
        }
    }
}
