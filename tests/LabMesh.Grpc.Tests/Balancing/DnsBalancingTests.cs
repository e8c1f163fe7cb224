using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.Grpc.Tests.Echo;

namespace LabMesh.Grpc.Tests.Balancing;

public sealed class DnsBalancingTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan LongTimeout = TimeSpan.FromSeconds(60);

    private static IPAddress Ip(int last) => IPAddress.Parse($"127.0.0.{last}");

    private static GrpcChannel Channel(Backends backends, TestResolver resolver, Action<GrpcChannelOptions>? configure = null)
    {
        var options = new GrpcChannelOptions { Credentials = ChannelCredentials.Insecure, DnsResolver = resolver.ResolveAsync };
        configure?.Invoke(options);
        return GrpcChannel.ForAddress($"dns:///backends.test:{backends.Port}", options);
    }

    private static async Task<string> WhoAsync(Echo.Echo.EchoClient client, int delayMs = 0)
    {
        var call = client.UnaryAsync(new EchoRequest { DelayMs = delayMs }, deadline: DateTime.UtcNow.Add(Timeout));
        return (await call.ResponseAsync.WaitAsync(Timeout)).Text;
    }

    private static async Task<Dictionary<string, int>> CallManyAsync(Echo.Echo.EchoClient client, int count, int parallelism = 1)
    {
        var answers = new ConcurrentQueue<string>();
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = parallelism },
            async (_, _) =>
            {
                try
                {
                    answers.Enqueue(await WhoAsync(client));
                }
                catch (RpcException ex)
                {
                    // Recorded rather than thrown, so a failed assertion shows what went wrong.
                    answers.Enqueue($"{ex.StatusCode}: {ex.Status.Detail}");
                }
            }).WaitAsync(LongTimeout);
        return answers.GroupBy(a => a).ToDictionary(g => g.Key, g => g.Count());
    }

    private static List<string> ReadyAddresses(GrpcChannel channel) =>
        [.. channel.Balancer!.ReadyEndPoints.Select(e => e.Address.ToString()).Order()];

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var timer = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(timer.Elapsed < Timeout, $"Timed out waiting until {what}.");
            await Task.Delay(20);
        }
    }

    [Fact]
    public async Task DnsTarget_SpreadsCallsEvenlyOverEveryAddress()
    {
        await using var backends = await Backends.StartAsync([Ip(2), Ip(3), Ip(4)]);
        var resolver = new TestResolver(Ip(2), Ip(3), Ip(4));
        using var channel = Channel(backends, resolver);

        var counts = await CallManyAsync(new Echo.Echo.EchoClient(channel), 300, parallelism: 6);

        Assert.Equal(["127.0.0.2", "127.0.0.3", "127.0.0.4"], counts.Keys.Order());
        Assert.All(counts.Values, count => Assert.Equal(100, count));
        // Every call carried the name, not the address, as :authority.
        Assert.All(backends.Probes.Values.SelectMany(p => p.Authorities), authority => Assert.Equal($"backends.test:{backends.Port}", authority));
        Assert.Equal(["backends.test"], resolver.Hosts.Distinct());
        Assert.Empty(backends.Errors);
    }

    [Fact]
    public async Task DnsTarget_ServerStoppedMidRun_OnlyItsInFlightCallsFail_ThenItIsSkipped()
    {
        await using var backends = await Backends.StartAsync([Ip(2), Ip(3), Ip(4)]);
        using var channel = Channel(backends, new TestResolver(Ip(2), Ip(3), Ip(4)));
        var client = new Echo.Echo.EchoClient(channel);
        const int Workers = 4;
        var results = new ConcurrentQueue<(string? Who, StatusCode Code, long StartedAt)>();
        var completed = 0;
        var afterStop = 0;
        long stoppedAt = long.MaxValue;

        async Task WorkAsync()
        {
            while (Volatile.Read(ref afterStop) < 150)
            {
                var startedAt = Stopwatch.GetTimestamp();
                try
                {
                    var who = await WhoAsync(client, delayMs: 5);
                    results.Enqueue((who, StatusCode.OK, startedAt));
                }
                catch (RpcException ex)
                {
                    results.Enqueue((null, ex.StatusCode, startedAt));
                }
                Interlocked.Increment(ref completed);
                if (startedAt > Interlocked.Read(ref stoppedAt))
                {
                    Interlocked.Increment(ref afterStop);
                }
            }
        }

        async Task StopOneAsync()
        {
            await WaitUntilAsync(() => Volatile.Read(ref completed) >= 90, "90 calls completed");
            await backends.StopAsync(Ip(3));
            Interlocked.Exchange(ref stoppedAt, Stopwatch.GetTimestamp());
        }

        await Task.WhenAll(Enumerable.Range(0, Workers).Select(_ => Task.Run(WorkAsync)).Append(StopOneAsync())).WaitAsync(LongTimeout);

        var all = results.ToList();
        var failures = all.Where(r => r.Code != StatusCode.OK).ToList();
        Assert.All(failures, f => Assert.Equal(StatusCode.Unavailable, f.Code));
        Assert.True(failures.Count <= Workers, $"{failures.Count} calls failed; at most the {Workers} in flight may.");
        var later = all.Where(r => r.StartedAt > stoppedAt).ToList();
        Assert.True(later.Count >= 150);
        Assert.All(later, r => Assert.Equal(StatusCode.OK, r.Code));
        Assert.DoesNotContain(later, r => r.Who == "127.0.0.3");
        var laterCounts = later.GroupBy(r => r.Who!).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal(["127.0.0.2", "127.0.0.4"], laterCounts.Keys.Order());
        Assert.All(laterCounts.Values, count => Assert.InRange(count, later.Count * 4 / 10, later.Count * 6 / 10));
        Assert.Equal(["127.0.0.2", "127.0.0.4"], ReadyAddresses(channel));
        Assert.Empty(backends.Errors);
    }

    [Fact]
    public async Task DnsTarget_ResolverReturnsNewAddressSet_TrafficMoves()
    {
        await using var backends = await Backends.StartAsync([Ip(2), Ip(3), Ip(4)]);
        var resolver = new TestResolver(Ip(2), Ip(3));
        using var channel = Channel(backends, resolver, o => o.DnsRefreshInterval = TimeSpan.FromMilliseconds(200));
        var client = new Echo.Echo.EchoClient(channel);

        var before = await CallManyAsync(client, 60);
        Assert.Equal(new Dictionary<string, int> { ["127.0.0.2"] = 30, ["127.0.0.3"] = 30 }, before);

        resolver.Set(Ip(3), Ip(4));
        await WaitUntilAsync(() => ReadyAddresses(channel).SequenceEqual(["127.0.0.3", "127.0.0.4"]), "the new set is in use");

        var after = await CallManyAsync(client, 60);
        Assert.Equal(new Dictionary<string, int> { ["127.0.0.3"] = 30, ["127.0.0.4"] = 30 }, after);
    }

    [Fact]
    public async Task DnsTarget_PeriodicResolution_PicksUpAnAddedAddress()
    {
        await using var backends = await Backends.StartAsync([Ip(2), Ip(3)]);
        var resolver = new TestResolver(Ip(2));
        using var channel = Channel(backends, resolver, o => o.DnsRefreshInterval = TimeSpan.FromMilliseconds(300));
        var client = new Echo.Echo.EchoClient(channel);
        Assert.Equal("127.0.0.2", await WhoAsync(client));

        resolver.Set(Ip(2), Ip(3));
        var timer = Stopwatch.StartNew();
        while (await WhoAsync(client) != "127.0.0.3")
        {
            Assert.True(timer.Elapsed < Timeout, "The added address never got a call.");
            await Task.Delay(20);
        }
        Assert.True(resolver.Lookups >= 2);

        var counts = await CallManyAsync(client, 100);
        Assert.Equal(50, counts["127.0.0.2"]);
        Assert.Equal(50, counts["127.0.0.3"]);
    }

    [Fact]
    public async Task Ipv4Target_SpreadsOverAddressesOnTheirOwnPorts_AndSkipsOneThatStops()
    {
        // Two replicas on their own ports (as deploy/local runs them), named by a fixed address list.
        await using var first = await Backends.StartAsync([Ip(2)]);
        await using var second = await Backends.StartAsync([Ip(3)]);
        Assert.NotEqual(first.Port, second.Port);
        using var channel = GrpcChannel.ForAddress($"ipv4:127.0.0.2:{first.Port},127.0.0.3:{second.Port}",
            new GrpcChannelOptions { Credentials = ChannelCredentials.Insecure });
        var client = new Echo.Echo.EchoClient(channel);

        Assert.Equal(new Dictionary<string, int> { ["127.0.0.2"] = 20, ["127.0.0.3"] = 20 }, await CallManyAsync(client, 40));
        Assert.Equal([new IPEndPoint(Ip(2), first.Port), new IPEndPoint(Ip(3), second.Port)],
            channel.Balancer!.ReadyEndPoints.OrderBy(e => e.Address.ToString()));

        await second.StopAsync(Ip(3));
        var afterStop = await CallManyAsync(client, 40);
        // Only a call that raced the stop may fail; then the stopped replica is out of the rotation.
        Assert.True(afterStop.GetValueOrDefault("127.0.0.2") >= 39, string.Join(", ", afterStop));
        Assert.Equal([new IPEndPoint(Ip(2), first.Port)], channel.Balancer.ReadyEndPoints);

        await second.StartAsync(Ip(3));
        var timer = Stopwatch.StartNew();
        while (await WhoAsync(client) != "127.0.0.3")
        {
            Assert.True(timer.Elapsed < LongTimeout, "The restarted replica never got a call back.");
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task DnsTarget_AddressRefusingConnections_IsSkippedWithoutFailingCalls()
    {
        await using var backends = await Backends.StartAsync([Ip(2)]);
        // Nothing listens on 127.0.0.9: connecting there is refused.
        var resolver = new TestResolver(Ip(9), Ip(2));
        using var channel = Channel(backends, resolver);

        var counts = await CallManyAsync(new Echo.Echo.EchoClient(channel), 40, parallelism: 4);

        Assert.Equal(new Dictionary<string, int> { ["127.0.0.2"] = 40 }, counts);
        Assert.Equal([new IPEndPoint(Ip(2), backends.Port)], channel.Balancer!.ReadyEndPoints);
        // The failure also made the channel look the name up again.
        await WaitUntilAsync(() => resolver.Lookups >= 2, "the name was resolved again");
        Assert.Empty(backends.Errors);
    }

    [Fact]
    public async Task DnsTarget_EveryAddressDown_IsUnavailable_UntilOneAcceptsConnectionsAgain()
    {
        await using var backends = await Backends.StartAsync([Ip(2)]);
        var resolver = new TestResolver(Ip(5));
        using var channel = Channel(backends, resolver, o =>
        {
            o.InitialReconnectBackoff = TimeSpan.FromMilliseconds(100);
            o.MaxReconnectBackoff = TimeSpan.FromMilliseconds(500);
        });
        var client = new Echo.Echo.EchoClient(channel);

        var first = await Assert.ThrowsAsync<RpcException>(() => WhoAsync(client));
        Assert.Equal(StatusCode.Unavailable, first.StatusCode);
        var second = await Assert.ThrowsAsync<RpcException>(() => WhoAsync(client));
        Assert.Equal(StatusCode.Unavailable, second.StatusCode);
        Assert.Contains("No reachable address for 'backends.test", second.Status.Detail, StringComparison.Ordinal);

        await backends.StartAsync(Ip(5));
        await WaitUntilAsync(() => channel.Balancer!.ReadyEndPoints.Count == 1, "the probe found the address up");
        Assert.Equal("127.0.0.5", await WhoAsync(client));
        Assert.Empty(backends.Errors);
    }

    [Fact]
    public async Task DnsTarget_NameDoesNotResolve_IsUnavailable_ThenRecovers()
    {
        await using var backends = await Backends.StartAsync([Ip(2)]);
        var fail = true;
        var resolver = new TestResolver(Ip(2));
        var options = new GrpcChannelOptions
        {
            Credentials = ChannelCredentials.Insecure,
            DnsResolver = (host, token) => Volatile.Read(ref fail)
                ? Task.FromException<IPAddress[]>(new SocketException((int)SocketError.HostNotFound))
                : resolver.ResolveAsync(host, token),
        };
        using var channel = GrpcChannel.ForAddress($"dns:///backends.test:{backends.Port}", options);
        var client = new Echo.Echo.EchoClient(channel);

        var ex = await Assert.ThrowsAsync<RpcException>(() => WhoAsync(client));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Contains($"Resolving 'backends.test:{backends.Port}' gave no address", ex.Status.Detail, StringComparison.Ordinal);

        Volatile.Write(ref fail, false);
        var timer = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                Assert.Equal("127.0.0.2", await WhoAsync(client));
                break;
            }
            catch (RpcException retry) when (retry.StatusCode == StatusCode.Unavailable && timer.Elapsed < Timeout)
            {
                await Task.Delay(50);
            }
        }
    }

    [Fact]
    public async Task DnsTarget_Tls_UsesTheNameForSniCertificateCheckAndAuthority()
    {
        using var certificate = CreateCertificate("backends.test");
        await using var backends = await Backends.StartAsync([Ip(2), Ip(3)], certificate);
        var seen = new ConcurrentQueue<(string TargetHost, SslPolicyErrors Errors)>();
        var handler = new SocketsHttpHandler { UseProxy = false };
        handler.SslOptions.RemoteCertificateValidationCallback = (sender, cert, _, errors) =>
        {
            seen.Enqueue((((SslStream)sender).TargetHostName, errors));
            // Self-signed, so the chain is untrusted; the name must match all the same.
            return cert is not null && cert.GetCertHashString() == certificate.GetCertHashString() && (errors & SslPolicyErrors.RemoteCertificateNameMismatch) == 0;
        };
        var options = new GrpcChannelOptions
        {
            Credentials = ChannelCredentials.SecureSsl,
            DnsResolver = new TestResolver(Ip(2), Ip(3)).ResolveAsync,
            HttpHandler = handler,
            DisposeHttpHandler = true,
        };
        using var channel = GrpcChannel.ForAddress($"dns:///backends.test:{backends.Port}", options);

        var counts = await CallManyAsync(new Echo.Echo.EchoClient(channel), 10);

        Assert.Equal(new Dictionary<string, int> { ["127.0.0.2"] = 5, ["127.0.0.3"] = 5 }, counts);
        Assert.Equal(2, seen.Count);
        Assert.All(seen, s => Assert.Equal("backends.test", s.TargetHost));
        Assert.Empty(backends.Errors);
        Assert.All(backends.Probes.Values.SelectMany(p => p.Authorities), authority => Assert.Equal($"backends.test:{backends.Port}", authority));
    }

    [Fact]
    public async Task DnsTarget_DefaultResolver_ResolvesLocalhost()
    {
        await using var backends = await Backends.StartAsync([IPAddress.Loopback]);
        // localhost may also resolve to ::1, where nothing listens: that address is skipped.
        using var channel = GrpcChannel.ForAddress($"dns:localhost:{backends.Port}", new GrpcChannelOptions { Credentials = ChannelCredentials.Insecure });
        var client = new Echo.Echo.EchoClient(channel);
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal("127.0.0.1", await WhoAsync(client));
        }
    }

    private static X509Certificate2 CreateCertificate(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(name);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(certificate.Export(X509ContentType.Pfx), null);
    }
}
