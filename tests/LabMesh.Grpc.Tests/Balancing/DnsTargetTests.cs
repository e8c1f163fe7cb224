using Grpc.Core;
using Grpc.Net.Client;

namespace LabMesh.Grpc.Tests.Balancing;

public sealed class DnsTargetTests
{
    private static readonly GrpcChannelOptions Insecure = new() { Credentials = ChannelCredentials.Insecure };
    private static readonly GrpcChannelOptions Secure = new() { Credentials = ChannelCredentials.SecureSsl };

    [Theory]
    [InlineData("dns:///svc-headless:5000", "http://svc-headless:5000/")]
    [InlineData("dns:svc-headless:5000", "http://svc-headless:5000/")]
    [InlineData("DNS:///svc.ns.svc.cluster.local:5000", "http://svc.ns.svc.cluster.local:5000/")]
    [InlineData("dns:///svc", "http://svc/")]
    [InlineData("dns:///[::1]:5000", "http://[::1]:5000/")]
    [InlineData("dns:///10.0.0.7:5000", "http://10.0.0.7:5000/")]
    public void ForAddress_DnsTarget_Insecure(string target, string address)
    {
        using var channel = GrpcChannel.ForAddress(target, Insecure);
        Assert.Equal(new Uri(address), channel.Address);
        Assert.Equal(target, channel.Target);
        Assert.NotNull(channel.Balancer);
    }

    [Fact]
    public void ForAddress_DnsTarget_SecureSsl_IsHttpsWithPort443ByDefault()
    {
        using var channel = GrpcChannel.ForAddress("dns:///svc", Secure);
        Assert.Equal(new Uri("https://svc:443/"), channel.Address);
        using var withPort = GrpcChannel.ForAddress(new Uri("dns:///svc:5001"), Secure);
        Assert.Equal(new Uri("https://svc:5001/"), withPort.Address);
    }

    [Theory]
    [InlineData("dns://8.8.8.8/svc:5000")]
    [InlineData("dns:///svc:99999")]
    [InlineData("dns:///svc:port")]
    [InlineData("dns:///:5000")]
    [InlineData("dns:///::1:5000")]
    [InlineData("dns://svc:5000")]
    public void ForAddress_BadDnsTarget_Throws(string target) =>
        Assert.Throws<ArgumentException>(() => GrpcChannel.ForAddress(target, Insecure));

    [Theory]
    [InlineData("ipv4:127.0.0.1:7101,127.0.0.1:7102", "http://127.0.0.1:7101/", "127.0.0.1:7101", "127.0.0.1:7102")]
    [InlineData("ipv4:10.0.0.7", "http://10.0.0.7/", "10.0.0.7:80")]
    [InlineData("ipv4:127.0.0.1:7101, 127.0.0.1:7101", "http://127.0.0.1:7101/", "127.0.0.1:7101")]
    [InlineData("ipv6:[::1]:7101,[::1]:7102", "http://[::1]:7101/", "[::1]:7101", "[::1]:7102")]
    public async Task ForAddress_AddressListTarget_BalancesOverExactlyThoseAddresses(string target, string address, params string[] endPoints)
    {
        using var channel = GrpcChannel.ForAddress(target, Insecure);
        Assert.Equal(new Uri(address), channel.Address);
        Assert.NotNull(channel.Balancer);
        // The list is "resolved" by the first pick; nothing listens there, so the pick fails fast or returns an address.
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        await channel.Balancer.PickAsync(null, cts.Token);
        Assert.Equal(endPoints, channel.Balancer.ReadyEndPoints.Select(e => e.ToString()));
    }

    [Theory]
    [InlineData("ipv4:")]
    [InlineData("ipv4:localhost:7101")]
    [InlineData("ipv4:::1")]
    [InlineData("ipv4:[::1]:7101")]
    [InlineData("ipv6:127.0.0.1:7101")]
    [InlineData("ipv4:127.0.0.1:70000")]
    [InlineData("ipv4:127.0.0.1:7101,")]
    public void ForAddress_BadAddressListTarget_Throws(string target) =>
        Assert.Throws<ArgumentException>(() => GrpcChannel.ForAddress(target, Insecure));

    [Fact]
    public void ForAddress_DnsTargetWithoutCredentials_Throws()
    {
        var ex = Assert.Throws<ArgumentException>(() => GrpcChannel.ForAddress("dns:///svc:5000"));
        Assert.Contains("ChannelCredentials.Insecure", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ForAddress_Http_WorksAsBefore_AndCredentialsMustAgree()
    {
        using var plain = GrpcChannel.ForAddress("http://127.0.0.1:5000");
        Assert.Equal("127.0.0.1:5000", plain.Target);
        Assert.Null(plain.Balancer);
        using var agreeing = GrpcChannel.ForAddress("https://svc:5001", Secure);
        Assert.Null(agreeing.Balancer);
        Assert.Throws<ArgumentException>(() => GrpcChannel.ForAddress("http://127.0.0.1:5000", Secure));
        Assert.Throws<ArgumentException>(() => GrpcChannel.ForAddress("https://svc:5001", Insecure));
        Assert.Throws<ArgumentException>(() => GrpcChannel.ForAddress("ftp://svc:5001"));
    }
}
