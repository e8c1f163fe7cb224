using System.Collections.Concurrent;
using System.Net;
using Grpc.Core;
using Grpc.Net.Client.Internal;
using Grpc.Net.Client.Internal.Balancing;
using Microsoft.Extensions.Logging.Abstractions;

namespace Grpc.Net.Client;

/// <summary>
/// A channel to a gRPC server over HTTP/2: h2c with prior knowledge for <c>http://</c>, TLS with ALPN
/// for <c>https://</c>, or round-robin over every address of a <c>dns:</c> name or an <c>ipv4:</c>/<c>ipv6:</c> list. Create one per target
/// and share it; it is thread-safe and pools its connections.
/// </summary>
public sealed class GrpcChannel : ChannelBase, IDisposable
{
    private readonly ConcurrentDictionary<string, Uri> _methodUris = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _shutdown = new();
    private readonly bool _disposeHandler;
    private readonly ChannelCallInvoker _callInvoker;
    private static readonly TimeSpan BalancedIdleTimeout = TimeSpan.FromMinutes(5);

    private GrpcChannel(string target, Uri address, GrpcChannelOptions options, BalancedTarget? dns)
        : base(target)
    {
        Address = address;
        Options = options;
        var handler = options.HttpHandler ?? CreateDefaultHandler(options, balanced: dns is not null);
        var disposeHandler = options.HttpHandler is null || options.DisposeHttpHandler;
        if (dns is null)
        {
            HttpInvoker = new HttpMessageInvoker(handler, disposeHandler);
        }
        else
        {
            var balancer = new RoundRobinBalancer(dns, address.Scheme, options.DnsResolver, options.DnsRefreshInterval,
                options.InitialReconnectBackoff, options.MaxReconnectBackoff, NullLogger.Instance);
            Balancer = balancer;
            HttpInvoker = new HttpMessageInvoker(
                new BalancingHandler(balancer, address.Authority, new HttpMessageInvoker(handler, disposeHandler)), disposeHandler: true);
        }
        _disposeHandler = true;
        _callInvoker = new ChannelCallInvoker(this);
    }

    /// <summary>
    /// The server's base address. For a <c>dns:</c> target, <c>http://host:port</c> or <c>https://host:port</c>
    /// (per <see cref="GrpcChannelOptions.Credentials"/>): the host is what calls carry as <c>:authority</c>
    /// and, with TLS, as SNI, while each call goes to one of the addresses the host resolves to.
    /// </summary>
    public Uri Address { get; }

    internal GrpcChannelOptions Options { get; }

    internal HttpMessageInvoker HttpInvoker { get; }

    internal CancellationToken ShutdownToken => _shutdown.Token;

    /// <summary>The round-robin balancer of a <c>dns:</c>, <c>ipv4:</c> or <c>ipv6:</c> target; null for an http(s) address.</summary>
    internal RoundRobinBalancer? Balancer { get; }

    /// <summary>
    /// Creates a channel for an address such as <c>http://127.0.0.1:5000</c>, <c>https://svc:5001</c>, or
    /// <c>dns:///svc-headless:5000</c> (also <c>dns:svc-headless:5000</c>): a name resolved to all its
    /// addresses, with calls spread round-robin over the reachable ones; or a fixed list of addresses,
    /// <c>ipv4:127.0.0.1:7101,127.0.0.1:7102</c> (<c>ipv6:[::1]:7101,[::1]:7102</c>), balanced the same way. Such a
    /// target needs <see cref="GrpcChannelOptions.Credentials"/> to say plaintext or TLS.
    /// </summary>
    public static GrpcChannel ForAddress(string address, GrpcChannelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        return BalancedTarget.IsBalancedTarget(address)
            ? ForDnsTarget(address, options ?? new GrpcChannelOptions())
            : ForAddress(new Uri(address, UriKind.Absolute), options);
    }

    /// <summary>Creates a channel for an address; see <see cref="ForAddress(string, GrpcChannelOptions?)"/>.</summary>
    public static GrpcChannel ForAddress(Uri address, GrpcChannelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        options ??= new GrpcChannelOptions();
        if (address.IsAbsoluteUri && BalancedTarget.IsBalancedTarget(address.OriginalString))
        {
            return ForDnsTarget(address.OriginalString, options);
        }
        if (!address.IsAbsoluteUri || (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps))
        {
            throw new ArgumentException($"Address '{address}' must use http:// (h2c), https:// (TLS), dns:, ipv4: or ipv6:.", nameof(address));
        }
        if (options.Credentials is { } credentials && credentials.IsSecure != (address.Scheme == Uri.UriSchemeHttps))
        {
            throw new ArgumentException(
                $"Address '{address}' and the channel's {(credentials.IsSecure ? "TLS" : "insecure")} credentials disagree; use {(credentials.IsSecure ? "https" : "http")}:// or leave Credentials null.",
                nameof(address));
        }
        return new GrpcChannel(address.Authority, address, options, dns: null);
    }

    private static GrpcChannel ForDnsTarget(string target, GrpcChannelOptions options)
    {
        var credentials = options.Credentials ?? throw new ArgumentException(
            $"Target '{target}' does not say whether to use TLS: set GrpcChannelOptions.Credentials to ChannelCredentials.Insecure or ChannelCredentials.SecureSsl.",
            nameof(options));
        var scheme = credentials.IsSecure ? Uri.UriSchemeHttps : Uri.UriSchemeHttp;
        var dns = BalancedTarget.Parse(target, credentials.IsSecure ? 443 : 80);
        var host = dns.Host.Contains(':', StringComparison.Ordinal) ? $"[{dns.Host}]" : dns.Host;
        var address = new Uri($"{scheme}://{host}:{dns.Port}/", UriKind.Absolute);
        return new GrpcChannel(target, address, options, dns);
    }

    /// <inheritdoc />
    public override CallInvoker CreateCallInvoker() => _callInvoker;

    internal Uri GetMethodUri(IMethod method) =>
        _methodUris.GetOrAdd(method.FullName, static (path, baseAddress) => new Uri(baseAddress, path), Address);

    /// <inheritdoc />
    protected override Task ShutdownAsyncCore()
    {
        Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Cancels calls in flight and closes the channel's connections.</summary>
    public void Dispose()
    {
        if (_shutdown.IsCancellationRequested)
        {
            return;
        }
        _shutdown.Cancel();
        if (_disposeHandler)
        {
            HttpInvoker.Dispose();
        }
        _shutdown.Dispose();
    }

    private static SocketsHttpHandler CreateDefaultHandler(GrpcChannelOptions options, bool balanced) => new()
    {
        // When one connection's MAX_CONCURRENT_STREAMS is used up, open another instead of queueing.
        EnableMultipleHttp2Connections = true,
        // A balanced channel's connections to addresses that left the resolved set only go idle; this closes them.
        PooledConnectionIdleTimeout = balanced ? BalancedIdleTimeout : Timeout.InfiniteTimeSpan,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        UseProxy = false,
        AllowAutoRedirect = false,
        ConnectTimeout = TimeSpan.FromSeconds(20),
        KeepAlivePingDelay = options.KeepAlivePingDelay,
        KeepAlivePingTimeout = options.KeepAlivePingTimeout,
        KeepAlivePingPolicy = options.KeepAlivePingPolicy,
    };
}
