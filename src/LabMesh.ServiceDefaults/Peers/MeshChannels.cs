using System.Net;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Balancer;
using Grpc.Net.Client.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LabMesh.ServiceDefaults.Peers;

/// <summary>
/// The one place LabMesh makes gRPC channels (services calling each other, the <c>labmesh</c> command,
/// tests and benchmarks): grpc-dotnet's <see cref="GrpcChannel"/> with the settings below.
/// </summary>
/// <remarks>
/// What this adds to grpc-dotnet's defaults, and why:
/// <list type="bullet">
/// <item><c>dns:///host:port</c> balances round-robin over every address of the name and resolves it again
/// every <see cref="DnsRefreshInterval"/> (grpc-dotnet's default resolves once, and its default policy is
/// pick_first): a Kubernetes headless Service gains and loses pods.</item>
/// <item><c>ipv4:a:p,b:p</c> and <c>ipv6:[a]:p,[b]:p</c> (gRPC's naming document) balance round-robin over a
/// fixed list, as deploy/local runs replicas; grpc-dotnet has no resolver for those schemes.</item>
/// <item>Reconnect backoff: after a failed connection attempt grpc-dotnet fails calls at once until the next
/// attempt, and by default that next attempt is 1 s and then up to 120 s away, so a peer that restarted
/// stayed unreachable long after it was back. Here the next attempt is always about 50 ms away, which the
/// retry policy of idempotent calls outlasts. The price: an address that is down is tried 20 times a second
/// per channel; a refused connection costs next to nothing, and DNS re-resolution drops a pod that is gone.</item>
/// <item>No connect timeout on the handler. grpc-dotnet 2.85 takes <c>SocketsHttpHandler.ConnectTimeout</c> as the bound
/// of a subchannel's whole reconnect loop (every attempt and back-off), not of one attempt: a peer that refuses for
/// longer ends the loop with the subchannel Idle ("Timeout connecting to subchannel."), round-robin asks it to
/// connect again at once, and the new loop can find the old one's connect context not yet disposed and return
/// without trying, leaving the subchannel Connecting for good (bench/README.md, "Peer calls stuck in grpc-dotnet's
/// balancer after replica kills"). Without the timeout the loop a peer's loss starts runs, every
/// <see cref="ReconnectBackoff"/>, until the peer is back. The price: a connect whose SYN is never answered (a host
/// gone from the network, not a process killed on a live one, which refuses) waits for the kernel's SYN retries
/// (about 2 min on Linux) before the next attempt; calls are bounded by their deadlines meanwhile.</item>
/// <item>HTTP/2 keepalive pings on every connection (a peer gone without closing its socket is found in
/// 80 s, not when TCP gives up), several HTTP/2 connections per peer when one's streams are all in use,
/// and 4 MiB message limits both ways.</item>
/// </list>
/// </remarks>
public static class MeshChannels
{
    /// <summary>How often a <c>dns:///</c> target is resolved again.</summary>
    public static readonly TimeSpan DnsRefreshInterval = TimeSpan.FromSeconds(15);

    /// <summary>The wait between reconnection attempts to an address that refused or dropped a connection (grpc-dotnet adds 20% jitter).</summary>
    public static readonly TimeSpan ReconnectBackoff = TimeSpan.FromMilliseconds(50);

    /// <summary>The largest message sent or received: gRPC's customary 4 MiB (RESOURCE_EXHAUSTED past it).</summary>
    public const int MaxMessageSize = 4 * 1024 * 1024;

    // One resolver set for every channel of the process: resolver factories are stateless.
    private static readonly IServiceProvider Resolvers = new ServiceCollection()
        .AddSingleton<ResolverFactory>(new DnsResolverFactory(DnsRefreshInterval))
        .AddSingleton<ResolverFactory>(new StaticAddressResolverFactory("ipv4"))
        .AddSingleton<ResolverFactory>(new StaticAddressResolverFactory("ipv6"))
        .BuildServiceProvider();

    /// <summary>
    /// A channel to <paramref name="address"/>: <c>http://host:port</c> (h2c), <c>https://host:port</c> (TLS),
    /// <c>dns:///host:port</c> or <c>ipv4:</c>/<c>ipv6:</c> lists (h2c, balanced round-robin).
    /// </summary>
    /// <param name="address">The target.</param>
    /// <param name="retry">A retry policy for the methods it names (only methods safe to repeat), or null for none.</param>
    /// <param name="loggerFactory">Where grpc-dotnet's client logs go (connectivity, picks, retries at Debug), or null for nowhere.</param>
    /// <remarks>
    /// An https:// target is verified against the machine's trusted roots; there is no parameter to adjust TLS (none was
    /// used). Without it a process that makes a channel no longer loads System.Net.Security at start-up, but its first
    /// call does (SocketsHttpHandler's connection pool names it), so this saves memory only until then (bench/README.md,
    /// idle memory, session 12).
    /// </remarks>
    public static GrpcChannel Create(string address, MethodConfig? retry = null, ILoggerFactory? loggerFactory = null) =>
        CreateWithConnectTimeout(address, retry, loggerFactory, Timeout.InfiniteTimeSpan);

    /// <summary>
    /// <see cref="Create"/> with <paramref name="connectTimeout"/> on the handler (infinite in <see cref="Create"/>): for
    /// the tests that show what a connect timeout does to grpc-dotnet's reconnect loop.
    /// </summary>
    internal static GrpcChannel CreateWithConnectTimeout(string address, MethodConfig? retry, ILoggerFactory? loggerFactory, TimeSpan connectTimeout)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(address);
        var handler = CreateHandler();
        handler.ConnectTimeout = connectTimeout;
        var options = new GrpcChannelOptions { HttpHandler = handler, DisposeHttpClient = true };
        Configure(options, address, retry, loggerFactory);
        return GrpcChannel.ForAddress(address, options);
    }

    /// <summary>
    /// The HTTP/2 handler under every LabMesh channel: keepalive pings (PING after 60 s without a frame, the
    /// connection closed when no ACK comes in 20 s), several connections per peer when one's streams are all
    /// in use, pooled connections kept, no connect timeout (see the remarks of <see cref="MeshChannels"/>).
    /// </summary>
    private static SocketsHttpHandler CreateHandler() => new()
    {
        EnableMultipleHttp2Connections = true,
        KeepAlivePingDelay = TimeSpan.FromSeconds(60),
        KeepAlivePingTimeout = TimeSpan.FromSeconds(20),
        KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
        PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        ConnectTimeout = Timeout.InfiniteTimeSpan,
    };

    /// <summary>Sets <paramref name="options"/> for <paramref name="address"/> as <see cref="Create"/> describes, except the HTTP handler.</summary>
    private static void Configure(GrpcChannelOptions options, string address, MethodConfig? retry, ILoggerFactory? loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(address);
        var serviceConfig = new ServiceConfig();
        if (retry is not null)
        {
            serviceConfig.MethodConfigs.Add(retry);
        }

        if (IsBalanced(address))
        {
            serviceConfig.LoadBalancingConfigs.Add(new RoundRobinConfig());
        }

        options.ServiceConfig = serviceConfig;
        options.ServiceProvider = Resolvers;
        options.LoggerFactory = loggerFactory;
        // A balanced target does not say whether it is TLS; inside the mesh it is h2c. http:// agrees.
        options.Credentials = address.StartsWith("https://", StringComparison.OrdinalIgnoreCase) ? null : ChannelCredentials.Insecure;
        options.InitialReconnectBackoff = ReconnectBackoff;
        options.MaxReconnectBackoff = ReconnectBackoff;
        options.MaxReceiveMessageSize = MaxMessageSize;
        options.MaxSendMessageSize = MaxMessageSize;
    }

    /// <summary>
    /// Retries on UNAVAILABLE (and INTERNAL, see below) for every method of <paramref name="grpcService"/> (so only for a service whose
    /// methods called through the channel are idempotent): five attempts, random backoff below 50, 100, 200 and
    /// 400 ms (gRFC A6), so a peer that is down is answered UNAVAILABLE within 750 ms (375 ms on average), and
    /// a call made while a restarted peer's address waits out its <see cref="ReconnectBackoff"/> reaches it
    /// once it is back (the retries outlast the backoff but in about 1 call in 4,000).
    /// </summary>
    public static MethodConfig RetryIdempotent(string grpcService) => new()
    {
        Names = { new MethodName { Service = grpcService } },
        RetryPolicy = new RetryPolicy
        {
            MaxAttempts = 5,
            InitialBackoff = TimeSpan.FromMilliseconds(50),
            MaxBackoff = TimeSpan.FromMilliseconds(400),
            BackoffMultiplier = 2,
            // INTERNAL too, for one case: a call sent on a connection the peer was closing gracefully (GOAWAY
            // NO_ERROR, a peer stopping) fails with "The HTTP/2 server closed the connection ... NO_ERROR", which
            // grpc-dotnet reports as INTERNAL. The methods on these channels are idempotent, so any retry is safe.
            RetryableStatusCodes = { StatusCode.Unavailable, StatusCode.Internal },
        },
    };

    /// <summary>A target balanced over several addresses (<c>dns:</c>, <c>ipv4:</c>, <c>ipv6:</c>).</summary>
    public static bool IsBalanced(string address) =>
        address.StartsWith("dns:", StringComparison.OrdinalIgnoreCase)
        || address.StartsWith("ipv4:", StringComparison.OrdinalIgnoreCase)
        || address.StartsWith("ipv6:", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// The addresses of an <c>ipv4:</c> or <c>ipv6:</c> target (gRPC's naming document:
    /// <c>ipv4:address[:port][,address[:port],...]</c>, <c>ipv6:[address]:port,...</c>; port 443 when absent).
    /// </summary>
    /// <exception cref="FormatException">An entry is not an IP address of the scheme's family with an optional port.</exception>
    public static IReadOnlyList<DnsEndPoint> ParseAddressList(Uri target)
    {
        ArgumentNullException.ThrowIfNull(target);
        var family = target.Scheme switch
        {
            "ipv4" => System.Net.Sockets.AddressFamily.InterNetwork,
            "ipv6" => System.Net.Sockets.AddressFamily.InterNetworkV6,
            _ => throw new FormatException($"'{target.Scheme}:' is not an address list scheme (ipv4:, ipv6:)."),
        };
        var list = Uri.UnescapeDataString(target.AbsolutePath).TrimStart('/');
        var endpoints = new List<DnsEndPoint>();
        foreach (var entry in list.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!IPEndPoint.TryParse(entry, out var endpoint) || endpoint.AddressFamily != family)
            {
                throw new FormatException($"'{entry}' in the {target.Scheme}: target is not an {target.Scheme} address with an optional port.");
            }

            endpoints.Add(new DnsEndPoint(endpoint.Address.ToString(), endpoint.Port == 0 ? 443 : endpoint.Port));
        }

        if (endpoints.Count == 0)
        {
            throw new FormatException($"The {target.Scheme}: target names no address.");
        }

        return endpoints;
    }

    /// <summary>
    /// Resolves <c>ipv4:</c>/<c>ipv6:</c> targets to their fixed list of addresses: grpc-dotnet's static
    /// resolver, registered under the naming document's scheme names (grpc-dotnet's own is named <c>static</c>).
    /// </summary>
    private sealed class StaticAddressResolverFactory(string scheme) : ResolverFactory
    {
        private static readonly StaticResolverFactory Static = new(target => ParseAddressList(target).Select(e => new BalancerAddress(e.Host, e.Port)));

        public override string Name => scheme;

        public override Resolver Create(ResolverOptions options) => Static.Create(options);
    }
}
