using System.Globalization;
using System.Net;

namespace Grpc.Net.Client.Internal.Balancing;

/// <summary>
/// A target whose calls are spread round-robin over several addresses, written as gRPC's naming
/// document writes it: <c>dns:[//authority/]host[:port]</c> (every address the name resolves to), or
/// <c>ipv4:address[:port][,address[:port],...]</c> and <c>ipv6:address[:port][,...]</c> (a fixed list;
/// IPv6 addresses with a port in brackets). Resolving through a chosen DNS server (a non-empty
/// authority) is not supported.
/// </summary>
internal sealed record BalancedTarget(string Host, int Port, IReadOnlyList<IPEndPoint>? FixedEndPoints)
{
    /// <summary>How the target is named in logs and errors.</summary>
    public string Name => FixedEndPoints is null ? $"{Host}:{Port.ToString(CultureInfo.InvariantCulture)}" : string.Join(',', FixedEndPoints);

    public static bool IsBalancedTarget(string address) =>
        address.StartsWith("dns:", StringComparison.OrdinalIgnoreCase)
        || address.StartsWith("ipv4:", StringComparison.OrdinalIgnoreCase)
        || address.StartsWith("ipv6:", StringComparison.OrdinalIgnoreCase);

    public static BalancedTarget Parse(string target, int defaultPort)
    {
        if (target.StartsWith("dns:", StringComparison.OrdinalIgnoreCase))
        {
            return ParseDns(target, defaultPort);
        }
        var ipv6 = target.StartsWith("ipv6:", StringComparison.OrdinalIgnoreCase);
        if (!ipv6 && !target.StartsWith("ipv4:", StringComparison.OrdinalIgnoreCase))
        {
            throw Invalid(target, "expected dns:, ipv4: or ipv6:");
        }
        var endPoints = new List<IPEndPoint>();
        foreach (var part in target[5..].Split(','))
        {
            var (host, port) = SplitHostPort(target, part.Trim(), defaultPort);
            if (!IPAddress.TryParse(host, out var address)
                || address.AddressFamily != (ipv6 ? System.Net.Sockets.AddressFamily.InterNetworkV6 : System.Net.Sockets.AddressFamily.InterNetwork))
            {
                throw Invalid(target, $"'{host}' is not an {(ipv6 ? "IPv6" : "IPv4")} address");
            }
            endPoints.Add(new IPEndPoint(address, port));
        }
        return new BalancedTarget(endPoints[0].Address.ToString(), endPoints[0].Port, endPoints.Distinct().ToArray());
    }

    private static BalancedTarget ParseDns(string target, int defaultPort)
    {
        var rest = target["dns:".Length..];
        if (rest.StartsWith("//", StringComparison.Ordinal))
        {
            var slash = rest.IndexOf('/', 2);
            if (slash < 0)
            {
                throw Invalid(target, "expected dns:///host:port");
            }
            if (slash > 2)
            {
                throw Invalid(target, "choosing the DNS server (dns://server/host) is not supported");
            }
            rest = rest[(slash + 1)..];
        }
        var (host, port) = SplitHostPort(target, rest, defaultPort);
        if (host.AsSpan().IndexOfAny('/', '?', '#') >= 0)
        {
            throw Invalid(target, "malformed host");
        }
        return new BalancedTarget(host, port, FixedEndPoints: null);
    }

    private static (string Host, int Port) SplitHostPort(string target, string text, int defaultPort)
    {
        string host;
        string? port = null;
        if (text.StartsWith('['))
        {
            var close = text.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                throw Invalid(target, "unterminated IPv6 literal");
            }
            host = text[1..close];
            var after = text[(close + 1)..];
            if (after.Length > 0)
            {
                port = after[0] == ':' ? after[1..] : throw Invalid(target, "unexpected text after the IPv6 literal");
            }
        }
        else
        {
            var colon = text.LastIndexOf(':');
            if (colon >= 0 && text.IndexOf(':', StringComparison.Ordinal) != colon)
            {
                throw Invalid(target, "an IPv6 address must be written in brackets");
            }
            host = colon < 0 ? text : text[..colon];
            port = colon < 0 ? null : text[(colon + 1)..];
        }
        if (host.Length == 0)
        {
            throw Invalid(target, "missing host");
        }
        var number = defaultPort;
        if (port is not null && (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out number) || number is < 1 or > 65535))
        {
            throw Invalid(target, $"bad port '{port}'");
        }
        return (host, number);
    }

    private static ArgumentException Invalid(string target, string why) =>
        new($"Invalid target '{target}': {why}.", nameof(target));
}
