using System.Net;
using System.Net.Sockets;
using System.Text;
using LabMesh.Notification.Webhooks;

namespace LabMesh.Notification.Tests.Webhooks;

public class WebhookTargetPolicyTests
{
    private const WebhookAddressKind Public = WebhookAddressKind.Public;
    private const WebhookAddressKind Loopback = WebhookAddressKind.Loopback;
    private const WebhookAddressKind Private = WebhookAddressKind.Private;
    private const WebhookAddressKind LinkLocal = WebhookAddressKind.LinkLocal;
    private const WebhookAddressKind Shared = WebhookAddressKind.SharedAddressSpace;
    private const WebhookAddressKind UniqueLocal = WebhookAddressKind.UniqueLocal;
    private const WebhookAddressKind Unspecified = WebhookAddressKind.Unspecified;
    private const WebhookAddressKind Multicast = WebhookAddressKind.Multicast;
    private const WebhookAddressKind Reserved = WebhookAddressKind.Reserved;

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private static WebhookTargetPolicy LoopbackAllowed(Func<string, CancellationToken, Task<IPAddress[]>>? resolve = null) =>
        new(new WebhookOptions { AllowedNetworks = ["127.0.0.0/8", "::1/128"] }, resolve);

    private static Func<string, CancellationToken, Task<IPAddress[]>> Resolving(params string[] addresses) =>
        (_, _) => Task.FromResult(addresses.Select(IPAddress.Parse).ToArray());

    // (address, kind)
    public static TheoryData<string, WebhookAddressKind> Addresses() => new()
    {
        { "8.8.8.8", Public },
        { "93.184.215.14", Public },
        { "203.0.113.10", Public },
        { "0.0.0.0", Unspecified },
        { "0.1.2.3", Unspecified },
        { "10.0.0.1", Private },
        { "10.255.255.255", Private },
        { "172.15.255.255", Public },
        { "172.16.0.1", Private },
        { "172.31.255.255", Private },
        { "172.32.0.0", Public },
        { "192.168.1.1", Private },
        { "192.169.0.1", Public },
        { "100.63.255.255", Public },
        { "100.64.0.1", Shared },
        { "100.100.100.200", Shared },
        { "100.127.255.255", Shared },
        { "100.128.0.0", Public },
        { "127.0.0.1", Loopback },
        { "127.255.255.254", Loopback },
        { "169.253.255.255", Public },
        { "169.254.0.1", LinkLocal },
        { "169.254.169.254", LinkLocal },
        { "192.0.0.1", Reserved },
        { "198.18.0.1", Reserved },
        { "198.19.255.255", Reserved },
        { "198.20.0.0", Public },
        { "224.0.0.1", Multicast },
        { "239.255.255.250", Multicast },
        { "240.0.0.1", Reserved },
        { "255.255.255.255", Reserved },
        { "2606:4700:4700::1111", Public },
        { "2001:4860:4860::8888", Public },
        { "::", Unspecified },
        { "::1", Loopback },
        { "::ffff:127.0.0.1", Loopback },
        { "::ffff:10.0.0.1", Private },
        { "::ffff:169.254.169.254", LinkLocal },
        { "::ffff:100.64.0.1", Shared },
        { "::ffff:8.8.8.8", Public },
        { "::127.0.0.1", Reserved },
        { "::8.8.8.8", Reserved },
        { "64:ff9b::7f00:1", Loopback },
        { "64:ff9b::a9fe:a9fe", LinkLocal },
        { "64:ff9b::808:808", Public },
        { "2002:7f00:1::1", Loopback },
        { "2002:c0a8:101::1", Private },
        { "2002:808:808::1", Public },
        { "fc00::1", UniqueLocal },
        { "fd12:3456:789a::1", UniqueLocal },
        { "fe80::1", LinkLocal },
        { "febf:ffff::1", LinkLocal },
        { "fec0::1", Private },
        { "ff02::1", Multicast },
        { "100::1", Reserved },
    };

    [Theory]
    [MemberData(nameof(Addresses))]
    public void Classify_EachAddressClass(string address, WebhookAddressKind kind)
    {
        Assert.Equal(kind, WebhookTargetPolicy.Classify(IPAddress.Parse(address)));
        Assert.Equal(kind == Public, WebhookTargetPolicy.Default.IsAllowed("example.com", IPAddress.Parse(address), out _));
    }

    // (allowed networks, address, allowed)
    [Theory]
    [InlineData("127.0.0.0/8", "127.0.0.1", true)]
    [InlineData("127.0.0.0/8", "127.3.2.1", true)]
    [InlineData("127.0.0.0/8", "::ffff:127.0.0.1", true)]
    [InlineData("127.0.0.0/8", "::1", false)]
    [InlineData("::1/128", "::1", true)]
    [InlineData("10.20.0.0/16", "10.20.30.40", true)]
    [InlineData("10.20.0.0/16", "10.21.0.1", false)]
    [InlineData("10.20.30.40", "10.20.30.40", true)]
    [InlineData("10.20.30.40", "10.20.30.41", false)]
    [InlineData("fd00::/8", "fd12::1", true)]
    [InlineData("169.254.169.254/32", "169.254.169.253", false)]
    public void IsAllowed_AllowedNetwork(string network, string address, bool allowed)
    {
        var policy = new WebhookTargetPolicy(new WebhookOptions { AllowedNetworks = [network] });

        Assert.Equal(allowed, policy.IsAllowed("hooks.example.com", IPAddress.Parse(address), out _));
    }

    // (allowed host, URL host, allowed)
    [Theory]
    [InlineData("hooks.lab.internal", "hooks.lab.internal", true)]
    [InlineData("Hooks.Lab.Internal.", "hooks.lab.internal", true)]
    [InlineData("hooks.lab.internal", "HOOKS.lab.internal.", true)]
    [InlineData("hooks.lab.internal", "evil.hooks.lab.internal", false)]
    [InlineData("hooks.lab.internal", "hooks.lab.internal.evil.com", false)]
    [InlineData("[::1]", "[::1]", true)]
    [InlineData("bücher.example", "xn--bcher-kva.example", true)]
    public void IsAllowed_AllowedHost_AllowsAllItsAddresses(string allowedHost, string urlHost, bool allowed)
    {
        var policy = new WebhookTargetPolicy(new WebhookOptions { AllowedHosts = [allowedHost] });

        Assert.Equal(allowed, policy.IsAllowed(urlHost, IPAddress.Parse("10.1.2.3"), out var kind));
        Assert.Equal(Private, kind);
    }

    private const string LoopbackRefused = "a loopback address that is not allow-listed.";

    // (url, error or "" when valid) under the default policy
    public static TheoryData<string?, string> Urls() => new()
    {
        { "https://hooks.example.com/labmesh", "" },
        { "http://hooks.example.com:8080/x?y=1", "" },
        { "HTTPS://Hooks.Example.COM/", "" },
        { "https://8.8.8.8/hook", "" },
        { "https://[2606:4700:4700::1111]/hook", "" },
        { "https://bücher.example/hook", "" },
        { "https://hooks.example.com/" + new string('a', 2048 - 26), "" },
        { "https://hooks.example.com/" + new string('a', 2049 - 26), "the URL is longer than 2048 characters." },
        { null, "the URL is empty." },
        { "", "the URL is empty." },
        { " https://hooks.example.com/", "the URL starts or ends with whitespace." },
        { "https://hooks.example.com/\n", "the URL starts or ends with whitespace." },
        { "/relative/path", "the URL is not an absolute URL." },
        { "hooks.example.com/x", "the URL is not an absolute URL." },
        { @"\\server\share", "the URL is not an absolute URL." },
        { "https://", "the URL is not an absolute URL." },
        { "ftp://hooks.example.com/", "the URL's scheme is 'ftp'; only http and https are delivered to." },
        { "file:///etc/passwd", "the URL's scheme is 'file'; only http and https are delivered to." },
        { "mailto:lab@example.com", "the URL's scheme is 'mailto'; only http and https are delivered to." },
        { "https://user:pw@hooks.example.com/", "the URL carries a user name or password; put credentials elsewhere (the signature authenticates deliveries)." },
        { "https://token@hooks.example.com/", "the URL carries a user name or password; put credentials elsewhere (the signature authenticates deliveries)." },
        { "http://127.0.0.1:5000/", "Webhook target '127.0.0.1' is refused: it resolves to 127.0.0.1, " + LoopbackRefused },
        { "http://[::1]/", "Webhook target '::1' is refused: it resolves to ::1, " + LoopbackRefused },
        { "http://2130706433/", "Webhook target '127.0.0.1' is refused: it resolves to 127.0.0.1, " + LoopbackRefused },
        { "http://0x7f.1/", "Webhook target '127.0.0.1' is refused: it resolves to 127.0.0.1, " + LoopbackRefused },
        { "http://localhost:5000/", "Webhook target 'localhost' is refused: it resolves to 127.0.0.1, " + LoopbackRefused },
        { "http://api.LOCALHOST./", "Webhook target 'api.localhost' is refused: it resolves to 127.0.0.1, " + LoopbackRefused },
        { "http://169.254.169.254/latest/meta-data/", "Webhook target '169.254.169.254' is refused: it resolves to 169.254.169.254, a link-local address that is not allow-listed." },
        { "http://[::ffff:10.0.0.1]/", "Webhook target '::ffff:10.0.0.1' is refused: it resolves to ::ffff:10.0.0.1, a private address that is not allow-listed." },
        { "http://100.64.0.1/", "Webhook target '100.64.0.1' is refused: it resolves to 100.64.0.1, a shared (carrier-grade NAT) address that is not allow-listed." },
        { "http://[fd00::1]/", "Webhook target 'fd00::1' is refused: it resolves to fd00::1, a unique-local address that is not allow-listed." },
        { "http://0.0.0.0:80/", "Webhook target '0.0.0.0' is refused: it resolves to 0.0.0.0, an unspecified address that is not allow-listed." },
    };

    [Theory]
    [MemberData(nameof(Urls))]
    public void TryValidateUrl_DefaultPolicy(string? url, string error)
    {
        var valid = WebhookTargetPolicy.Default.TryValidateUrl(url, out var uri, out var actual);

        Assert.Equal(error, actual ?? "");
        Assert.Equal(error.Length == 0, valid);
        Assert.Equal(valid, uri is not null);
    }

    // (url, valid) with loopback allow-listed, as the tests run it
    [Theory]
    [InlineData("http://127.0.0.1:5000/hook", true)]
    [InlineData("http://localhost:5000/hook", true)]
    [InlineData("http://[::1]:5000/hook", true)]
    [InlineData("http://10.0.0.1/hook", false)]
    [InlineData("http://169.254.169.254/", false)]
    public void TryValidateUrl_LoopbackAllowListed(string url, bool valid)
    {
        Assert.Equal(valid, LoopbackAllowed().TryValidateUrl(url, out _, out _));
    }

    [Fact]
    public async Task ResolveAsync_PublicName_IsItsAddresses()
    {
        var policy = new WebhookTargetPolicy(new WebhookOptions(), Resolving("8.8.8.8", "::ffff:8.8.4.4", "8.8.8.8", "2606:4700:4700::1111"));

        var addresses = await policy.ResolveAsync("hooks.example.com", CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(["8.8.8.8", "8.8.4.4", "2606:4700:4700::1111"], addresses.Select(a => a.ToString()));
    }

    // DNS rebinding: a name answering with a public address and an internal one is refused outright.
    [Theory]
    [InlineData("127.0.0.1", Loopback)]
    [InlineData("169.254.169.254", LinkLocal)]
    [InlineData("::ffff:192.168.0.10", Private)]
    [InlineData("fd00::10", UniqueLocal)]
    public async Task ResolveAsync_AnyInternalAddress_RefusesTheTarget(string internalAddress, WebhookAddressKind kind)
    {
        var policy = new WebhookTargetPolicy(new WebhookOptions(), Resolving("8.8.8.8", internalAddress));

        var refused = await Assert.ThrowsAsync<WebhookTargetRefusedException>(
            () => policy.ResolveAsync("rebind.example.com", CancellationToken.None).WaitAsync(Timeout));

        Assert.Equal("rebind.example.com", refused.Host);
        Assert.Equal(IPAddress.Parse(internalAddress), refused.Address);
        Assert.Equal(kind, refused.Kind);
    }

    [Fact]
    public async Task ResolveAsync_AllowedHost_AcceptsItsPrivateAddresses()
    {
        var policy = new WebhookTargetPolicy(new WebhookOptions { AllowedHosts = ["hooks.lab.internal"] }, Resolving("10.20.30.40"));

        var addresses = await policy.ResolveAsync("hooks.lab.internal", CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal([IPAddress.Parse("10.20.30.40")], addresses);
    }

    [Fact]
    public async Task ResolveAsync_NoAddress_IsHostNotFound()
    {
        var policy = new WebhookTargetPolicy(new WebhookOptions(), Resolving());

        var error = await Assert.ThrowsAsync<SocketException>(
            () => policy.ResolveAsync("nowhere.example.com", CancellationToken.None).WaitAsync(Timeout));

        Assert.Equal(SocketError.HostNotFound, error.SocketErrorCode);
    }

    [Fact]
    public async Task ConnectCallback_LoopbackByDefault_IsRefusedWithoutConnecting()
    {
        await using var receiver = new LoopbackReceiver(IPAddress.Loopback);
        using var client = new HttpClient(WebhookTargetPolicy.Default.CreateHandler()) { Timeout = Timeout };

        var error = await Assert.ThrowsAsync<HttpRequestException>(
            () => client.GetAsync(new Uri($"http://127.0.0.1:{receiver.Port}/hook")));

        var refused = WebhookTargetRefusedException.Find(error);
        Assert.NotNull(refused);
        Assert.Equal(IPAddress.Loopback, refused.Address);
        Assert.Equal(Loopback, refused.Kind);
        Assert.Equal(WebhookOutcomeKind.TargetRefused, WebhookAttemptOutcome.FromException(error).Kind);
        Assert.False(receiver.HasPendingConnection);
    }

    [Fact]
    public void TryValidateUrl_RequireHttps_RefusesHttp_AcceptsHttps()
    {
        var policy = new WebhookTargetPolicy(new WebhookOptions { RequireHttps = true });

        Assert.False(policy.TryValidateUrl("http://hooks.example.com/labmesh", out _, out var error));
        Assert.Contains("https only", error, StringComparison.Ordinal);
        Assert.True(policy.TryValidateUrl("https://hooks.example.com/labmesh", out var uri, out _));
        Assert.Equal("https", uri.Scheme);
        Assert.True(WebhookTargetPolicy.Default.TryValidateUrl("http://hooks.example.com/labmesh", out _, out _));
    }

    [Fact]
    public async Task ConnectCallback_RequireHttps_RefusesAnHttpTargetWithoutConnecting()
    {
        await using var receiver = new LoopbackReceiver(IPAddress.Loopback);
        var policy = new WebhookTargetPolicy(new WebhookOptions { RequireHttps = true, AllowedNetworks = ["127.0.0.0/8"] });
        using var client = new HttpClient(policy.CreateHandler()) { Timeout = Timeout };

        var error = await Assert.ThrowsAsync<HttpRequestException>(
            () => client.GetAsync(new Uri($"http://127.0.0.1:{receiver.Port}/hook")));

        Assert.NotNull(WebhookTargetRefusedException.Find(error));
        Assert.Equal(WebhookOutcomeKind.TargetRefused, WebhookAttemptOutcome.FromException(error).Kind);
        Assert.False(receiver.HasPendingConnection);
    }

    [Fact]
    public async Task ConnectCallback_NameResolvingToLoopback_IsRefusedWithoutConnecting()
    {
        await using var receiver = new LoopbackReceiver(IPAddress.Loopback);
        var policy = new WebhookTargetPolicy(new WebhookOptions(), Resolving("127.0.0.1"));
        using var client = new HttpClient(policy.CreateHandler()) { Timeout = Timeout };

        var error = await Assert.ThrowsAsync<HttpRequestException>(
            () => client.GetAsync(new Uri($"http://rebind.example.com:{receiver.Port}/hook")));

        Assert.Equal("rebind.example.com", WebhookTargetRefusedException.Find(error)?.Host);
        Assert.False(receiver.HasPendingConnection);
    }

    [Fact]
    public async Task ConnectCallback_LoopbackAllowListed_DeliversASignedWebhookTheReceiverVerifies()
    {
        await using var receiver = new LoopbackReceiver(IPAddress.Loopback);
        using var client = new HttpClient(LoopbackAllowed().CreateHandler()) { Timeout = Timeout };
        var secret = WebhookSecret.Generate();
        var body = Encoding.UTF8.GetBytes("{\"type\":\"order.placed\",\"data\":{\"requisition\":\"req_1\"}}");
        var sentAt = DateTimeOffset.UtcNow;
        using var request = new HttpRequestMessage(HttpMethod.Post, new Uri($"http://127.0.0.1:{receiver.Port}/hook"))
        {
            Content = new ByteArrayContent(body),
        };
        foreach (var (name, value) in WebhookSigner.Headers("evt_01JH8Z", sentAt, body, [secret]))
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        var received = receiver.ReceiveAsync();
        using var response = await client.SendAsync(request).WaitAsync(Timeout);
        var delivered = await received.WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal("POST /hook HTTP/1.1", delivered.RequestLine);
        Assert.Equal(body, delivered.Body);
        Assert.Equal("evt_01JH8Z", delivered.Headers["webhook-id"]);
        Assert.True(WebhookSigner.Verify(delivered.Headers, delivered.Body, secret, DateTimeOffset.UtcNow));
        Assert.False(WebhookSigner.Verify(delivered.Headers, delivered.Body, WebhookSecret.Generate(), DateTimeOffset.UtcNow));
    }

    [Fact]
    public async Task ConnectCallback_AllowedHostResolvingToLoopback_Connects()
    {
        await using var receiver = new LoopbackReceiver(IPAddress.Loopback);
        var policy = new WebhookTargetPolicy(new WebhookOptions { AllowedHosts = ["receiver.test"] }, Resolving("127.0.0.1"));
        using var client = new HttpClient(policy.CreateHandler()) { Timeout = Timeout };

        var received = receiver.ReceiveAsync();
        using var response = await client.GetAsync(new Uri($"http://receiver.test:{receiver.Port}/hook")).WaitAsync(Timeout);
        var delivered = await received.WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Equal($"receiver.test:{receiver.Port}", delivered.Headers.Host);
    }

    [Fact]
    public async Task ConnectCallback_Ipv6LoopbackAllowListed_Connects()
    {
        if (!Socket.OSSupportsIPv6)
        {
            return;
        }
        await using var receiver = new LoopbackReceiver(IPAddress.IPv6Loopback);
        using var client = new HttpClient(LoopbackAllowed().CreateHandler()) { Timeout = Timeout };

        var received = receiver.ReceiveAsync();
        using var response = await client.GetAsync(new Uri($"http://[::1]:{receiver.Port}/hook")).WaitAsync(Timeout);
        await received.WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
    }

    [Fact]
    public async Task CreateHandler_Redirect_IsNotFollowed()
    {
        await using var receiver = new LoopbackReceiver(IPAddress.Loopback, status: 307);
        using var client = new HttpClient(LoopbackAllowed().CreateHandler()) { Timeout = Timeout };

        var received = receiver.ReceiveAsync();
        using var response = await client.GetAsync(new Uri($"http://127.0.0.1:{receiver.Port}/hook")).WaitAsync(Timeout);
        await received.WaitAsync(Timeout);

        Assert.Equal(HttpStatusCode.TemporaryRedirect, response.StatusCode);
        Assert.Equal(1, receiver.Accepted);
    }

    [Fact]
    public async Task ConnectCallback_NothingListening_IsAConnectionFailure()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        using var client = new HttpClient(LoopbackAllowed().CreateHandler()) { Timeout = Timeout };

        var error = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync(new Uri($"http://127.0.0.1:{port}/hook")));

        Assert.Equal(WebhookOutcomeKind.ConnectionFailed, WebhookAttemptOutcome.FromException(error).Kind);
    }
}
