using System.Buffers.Binary;
using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;
using System.Runtime.ExceptionServices;

namespace LabMesh.Notification.Webhooks;

/// <summary>What kind of network an address belongs to, as far as webhook targets are concerned.</summary>
public enum WebhookAddressKind
{
    /// <summary>Reachable on the internet: always allowed.</summary>
    Public,

    /// <summary>127.0.0.0/8, ::1.</summary>
    Loopback,

    /// <summary>10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, and the deprecated IPv6 site-local fec0::/10.</summary>
    Private,

    /// <summary>169.254.0.0/16 (with the cloud metadata service 169.254.169.254), fe80::/10.</summary>
    LinkLocal,

    /// <summary>100.64.0.0/10, carrier-grade NAT (some clouds' metadata services live there too).</summary>
    SharedAddressSpace,

    /// <summary>fc00::/7.</summary>
    UniqueLocal,

    /// <summary>0.0.0.0/8 and ::; connecting to 0.0.0.0 reaches the local host on Linux.</summary>
    Unspecified,

    /// <summary>224.0.0.0/4, ff00::/8.</summary>
    Multicast,

    /// <summary>240.0.0.0/4 (with 255.255.255.255), 192.0.0.0/24, 198.18.0.0/15, IPv4-compatible ::/96, 100::/64.</summary>
    Reserved,
}

/// <summary>
/// Which webhook targets may be called, so an endpoint URL cannot reach into the networks LabMesh
/// runs in (server-side request forgery): checked once when an endpoint is created
/// (<see cref="TryValidateUrl"/>) and again on every connection (<see cref="ConnectAsync"/>).
/// </summary>
/// <remarks>
/// <code>
/// when an endpoint is created (TryValidateUrl)
///   absolute http or https URL, at most 2048 characters, no whitespace at either end   else refused
///   no user name or password (user:pw@host)                                            else refused
///   an IP-literal host (127.0.0.1, [::1], 2130706433) is checked as an address below    here already
///   localhost and *.localhost are checked as 127.0.0.1 and ::1 (either allowed is enough)
///   any other name is not resolved here: its addresses may change, they are checked per connection
///
/// on every connection (ConnectAsync, a SocketsHttpHandler.ConnectCallback)
///   the host is resolved once; EVERY address is checked; one refused address refuses the target
///   (a name that resolves into an internal network is misconfigured or an attack, and filtering
///   would make delivery depend on which record comes first); then the socket connects to a checked
///   address itself, so no second lookup can answer differently (DNS rebinding).
///
/// an address is allowed when
///   the URL's host is in AllowedHosts (then all of its addresses are), or
///   the address is in one of AllowedNetworks, or
///   it is Public (Classify); an IPv4-mapped IPv6 address (::ffff:a.b.c.d) counts as its IPv4
///   address, NAT64 (64:ff9b::/96) and 6to4 (2002::/16) as the IPv4 address they embed
/// </code>
/// <para>A refusal throws <see cref="WebhookTargetRefusedException"/>: the delivery is dead-lettered, not
/// retried. The handler must not use a proxy (it would be checked instead of the target):
/// <see cref="CreateHandler"/> sets that up.</para>
/// </remarks>
public sealed class WebhookTargetPolicy
{
    /// <summary>The longest endpoint URL accepted.</summary>
    public const int MaxUrlLength = 2048;

    private readonly HashSet<string> _hosts;
    private readonly IPNetwork[] _networks;
    private readonly Func<string, CancellationToken, Task<IPAddress[]>> _resolve;
    private readonly bool _requireHttps;

    /// <param name="options">The allow-lists (<see cref="WebhookOptions.AllowedHosts"/>, <see cref="WebhookOptions.AllowedNetworks"/>).</param>
    /// <param name="resolve">Resolves a host name to its addresses; <see cref="Dns.GetHostAddressesAsync(string, CancellationToken)"/> when null.</param>
    /// <exception cref="ArgumentException">an allowed host is not a host name or address, or an allowed network is not CIDR.</exception>
    public WebhookTargetPolicy(WebhookOptions options, Func<string, CancellationToken, Task<IPAddress[]>>? resolve = null)
    {
        var section = WebhookOptions.SectionName;
        _hosts = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < options.AllowedHosts.Count; i++)
        {
            var host = NormalizeAllowedHost(options.AllowedHosts[i])
                ?? throw new ArgumentException(
                    $"{section}:AllowedHosts:{i}: '{options.AllowedHosts[i]}' is not a host name or address.", nameof(options));
            _hosts.Add(host);
        }
        var networks = new List<IPNetwork>();
        for (var i = 0; i < options.AllowedNetworks.Count; i++)
        {
            var text = options.AllowedNetworks[i]?.Trim() ?? "";
            if (IPNetwork.TryParse(text, out var network))
            {
                networks.Add(network);
            }
            else if (!text.Contains('/', StringComparison.Ordinal) && IPAddress.TryParse(text, out var single))
            {
                networks.Add(new IPNetwork(single, single.AddressFamily == AddressFamily.InterNetwork ? 32 : 128));
            }
            else
            {
                throw new ArgumentException(
                    $"{section}:AllowedNetworks:{i}: '{text}' is not a network in CIDR form such as 10.20.0.0/16 or ::1/128.", nameof(options));
            }
        }
        _networks = [.. networks];
        _resolve = resolve ?? Dns.GetHostAddressesAsync;
        _requireHttps = options.RequireHttps;
    }

    /// <summary>The policy with no allow-list: only public addresses.</summary>
    public static WebhookTargetPolicy Default { get; } = new(new WebhookOptions());

    /// <summary>The allowed host names, normalized (lower-case ASCII, no trailing dot, IPv6 without brackets).</summary>
    public IReadOnlyCollection<string> AllowedHosts => _hosts;

    /// <summary>The allowed networks.</summary>
    public IReadOnlyList<IPNetwork> AllowedNetworks => _networks;

    /// <summary>Whether <paramref name="url"/> may be an endpoint's URL (see the table above); <paramref name="error"/> says why not.</summary>
    public bool TryValidateUrl(string? url, [NotNullWhen(true)] out Uri? uri, [NotNullWhen(false)] out string? error)
    {
        uri = null;
        if (string.IsNullOrEmpty(url))
        {
            error = "the URL is empty.";
            return false;
        }
        if (url.Length > MaxUrlLength)
        {
            error = $"the URL is longer than {MaxUrlLength} characters.";
            return false;
        }
        if (char.IsWhiteSpace(url[0]) || char.IsWhiteSpace(url[^1]))
        {
            error = "the URL starts or ends with whitespace.";
            return false;
        }
        // On Linux "/path" parses as an absolute file URI: an absolute URL here starts with its scheme.
        if (!Uri.TryCreate(url, UriKind.Absolute, out var parsed)
            || !url.StartsWith(parsed.Scheme + ":", StringComparison.OrdinalIgnoreCase))
        {
            error = "the URL is not an absolute URL.";
            return false;
        }
        if (parsed.Scheme != Uri.UriSchemeHttp && parsed.Scheme != Uri.UriSchemeHttps)
        {
            error = $"the URL's scheme is '{parsed.Scheme}'; only http and https are delivered to.";
            return false;
        }
        if (_requireHttps && parsed.Scheme != Uri.UriSchemeHttps)
        {
            error = $"the URL is http; this deployment delivers to https only ({WebhookOptions.SectionName}:RequireHttps).";
            return false;
        }
        if (parsed.UserInfo.Length > 0)
        {
            error = "the URL carries a user name or password; put credentials elsewhere (the signature authenticates deliveries).";
            return false;
        }
        var host = NormalizeHost(parsed.IdnHost);
        if (host.Length == 0)
        {
            error = "the URL has no host.";
            return false;
        }
        if (parsed.HostNameType is UriHostNameType.IPv4 or UriHostNameType.IPv6
            && IPAddress.TryParse(NormalizeHost(parsed.Host), out var literal)
            && !IsAllowed(host, literal, out var kind))
        {
            error = new WebhookTargetRefusedException(host, literal, kind).Message;
            return false;
        }
        if ((host == "localhost" || host.EndsWith(".localhost", StringComparison.Ordinal))
            && !IsAllowed(host, IPAddress.Loopback, out _) && !IsAllowed(host, IPAddress.IPv6Loopback, out _))
        {
            error = new WebhookTargetRefusedException(host, IPAddress.Loopback, WebhookAddressKind.Loopback).Message;
            return false;
        }
        uri = parsed;
        error = null;
        return true;
    }

    /// <summary>Whether a connection to <paramref name="address"/>, reached through the URL host <paramref name="host"/>, is allowed.</summary>
    public bool IsAllowed(string host, IPAddress address, out WebhookAddressKind kind)
    {
        kind = Classify(address);
        if (_hosts.Contains(NormalizeHost(host)) || kind == WebhookAddressKind.Public)
        {
            return true;
        }
        var plain = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        foreach (var network in _networks)
        {
            if (network.Contains(plain) || network.Contains(address))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// The addresses of <paramref name="host"/> (an IP literal is its own address), every one of them
    /// allowed; IPv4-mapped addresses come back as IPv4.
    /// </summary>
    /// <exception cref="WebhookTargetRefusedException">an address is not allowed.</exception>
    /// <exception cref="SocketException">the name does not resolve.</exception>
    public async Task<IReadOnlyList<IPAddress>> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        var name = NormalizeHost(host);
        var addresses = IPAddress.TryParse(name, out var literal)
            ? [literal]
            : await _resolve(name, cancellationToken);
        if (addresses.Length == 0)
        {
            throw new SocketException((int)SocketError.HostNotFound);
        }
        var checkedAddresses = new List<IPAddress>(addresses.Length);
        foreach (var address in addresses)
        {
            if (!IsAllowed(name, address, out var kind))
            {
                throw new WebhookTargetRefusedException(name, address, kind);
            }
            var plain = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
            if (!checkedAddresses.Contains(plain))
            {
                checkedAddresses.Add(plain);
            }
        }
        return checkedAddresses;
    }

    /// <summary>
    /// A <see cref="SocketsHttpHandler.ConnectCallback"/>: resolves the target's host, checks every
    /// address (<see cref="ResolveAsync"/>) and connects to the first that accepts, in the order resolved.
    /// </summary>
    /// <exception cref="WebhookTargetRefusedException">an address of the host is not allowed (nothing was connected to).</exception>
    /// <exception cref="SocketException">the name does not resolve, or no address accepted (the last error).</exception>
    public async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        if (_requireHttps && context.InitialRequestMessage.RequestUri?.Scheme != Uri.UriSchemeHttps)
        {
            // An endpoint made before RequireHttps was set: nothing is sent in the clear.
            throw new WebhookTargetRefusedException(
                $"Webhook target {context.DnsEndPoint.Host} is http; this deployment delivers to https only ({WebhookOptions.SectionName}:RequireHttps).");
        }

        var addresses = await ResolveAsync(context.DnsEndPoint.Host, cancellationToken);
        ExceptionDispatchInfo? last = null;
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(new IPEndPoint(address, context.DnsEndPoint.Port), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                last = ExceptionDispatchInfo.Capture(e);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
        last!.Throw();
        throw new UnreachableException();
    }

    /// <summary>
    /// A handler for webhook deliveries: connects through <see cref="ConnectAsync"/>, never through a proxy
    /// (the proxy's address would be checked instead of the target's), follows no redirect (3xx is a
    /// failure, as Standard Webhooks says), keeps no cookies, and re-resolves at least every 5 minutes.
    /// </summary>
    public SocketsHttpHandler CreateHandler() => new()
    {
        ConnectCallback = ConnectAsync,
        UseProxy = false,
        AllowAutoRedirect = false,
        UseCookies = false,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
    };

    /// <summary>What kind of network <paramref name="address"/> belongs to (see <see cref="WebhookAddressKind"/>).</summary>
    public static WebhookAddressKind Classify(IPAddress address)
    {
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            Span<byte> v4 = stackalloc byte[4];
            address.TryWriteBytes(v4, out _);
            return ClassifyV4(v4);
        }
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
        {
            return WebhookAddressKind.Reserved;
        }
        Span<byte> b = stackalloc byte[16];
        address.TryWriteBytes(b, out _);
        if (address.IsIPv4MappedToIPv6)
        {
            return ClassifyV4(b[12..]);
        }
        if (b[..12].IndexOfAnyExcept((byte)0) < 0)
        {
            // ::, ::1 and the deprecated IPv4-compatible ::a.b.c.d
            return BinaryPrimitives.ReadUInt32BigEndian(b[12..]) switch
            {
                0 => WebhookAddressKind.Unspecified,
                1 => WebhookAddressKind.Loopback,
                _ => WebhookAddressKind.Reserved,
            };
        }
        if (b[..12].SequenceEqual(Nat64Prefix))
        {
            return ClassifyV4(b[12..]);
        }
        if (b[0] == 0x20 && b[1] == 0x02)
        {
            return ClassifyV4(b[2..6]);
        }
        if (b[0] == 0x01 && b[1] == 0x00 && b[2..8].IndexOfAnyExcept((byte)0) < 0)
        {
            return WebhookAddressKind.Reserved;
        }
        return b[0] switch
        {
            0xff => WebhookAddressKind.Multicast,
            0xfc or 0xfd => WebhookAddressKind.UniqueLocal,
            0xfe when (b[1] & 0xc0) == 0x80 => WebhookAddressKind.LinkLocal,
            0xfe when (b[1] & 0xc0) == 0xc0 => WebhookAddressKind.Private,
            _ => WebhookAddressKind.Public,
        };
    }

    private static ReadOnlySpan<byte> Nat64Prefix => [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0];

    private static WebhookAddressKind ClassifyV4(ReadOnlySpan<byte> a) => a[0] switch
    {
        0 => WebhookAddressKind.Unspecified,
        10 => WebhookAddressKind.Private,
        100 when (a[1] & 0xc0) == 64 => WebhookAddressKind.SharedAddressSpace,
        127 => WebhookAddressKind.Loopback,
        169 when a[1] == 254 => WebhookAddressKind.LinkLocal,
        172 when (a[1] & 0xf0) == 16 => WebhookAddressKind.Private,
        192 when a[1] == 168 => WebhookAddressKind.Private,
        192 when a[1] == 0 && a[2] == 0 => WebhookAddressKind.Reserved,
        198 when (a[1] & 0xfe) == 18 => WebhookAddressKind.Reserved,
        >= 224 and <= 239 => WebhookAddressKind.Multicast,
        >= 240 => WebhookAddressKind.Reserved,
        _ => WebhookAddressKind.Public,
    };

    // Lower-case, no IPv6 brackets, no trailing dot: how a URL's host and an allowed host are compared.
    private static string NormalizeHost(string host)
    {
        var h = host.Trim();
        if (h.StartsWith('[') && h.EndsWith(']'))
        {
            h = h[1..^1];
        }
        return h.TrimEnd('.').ToLowerInvariant();
    }

    private static string? NormalizeAllowedHost(string? host)
    {
        var h = NormalizeHost(host ?? "");
        if (h.Length == 0)
        {
            return null;
        }
        if (IPAddress.TryParse(h, out var address))
        {
            return address.ToString();
        }
        // An internationalized name is compared in its ASCII (punycode) form, as the handler sends it.
        return Uri.CheckHostName(h) == UriHostNameType.Dns && Uri.TryCreate($"http://{h}/", UriKind.Absolute, out var uri)
            ? NormalizeHost(uri.IdnHost)
            : null;
    }
}
