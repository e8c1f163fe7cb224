using System.Globalization;

namespace Grpc.Net.Client.Internal.Balancing;

/// <summary>
/// A <c>dns:</c> target as gRPC's naming document writes it: <c>dns:[//authority/]host[:port]</c>.
/// Resolving through a chosen DNS server (a non-empty authority) is not supported.
/// </summary>
internal sealed record DnsTarget(string Host, int Port)
{
    public static bool IsDnsTarget(string address) => address.StartsWith("dns:", StringComparison.OrdinalIgnoreCase);

    public static DnsTarget Parse(string target, int defaultPort)
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
        string host;
        string? port = null;
        if (rest.StartsWith('['))
        {
            var close = rest.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                throw Invalid(target, "unterminated IPv6 literal");
            }
            host = rest[1..close];
            var after = rest[(close + 1)..];
            if (after.Length > 0)
            {
                port = after[0] == ':' ? after[1..] : throw Invalid(target, "unexpected text after the IPv6 literal");
            }
        }
        else
        {
            var colon = rest.LastIndexOf(':');
            if (colon >= 0 && rest.IndexOf(':', StringComparison.Ordinal) != colon)
            {
                throw Invalid(target, "an IPv6 address must be written in brackets");
            }
            host = colon < 0 ? rest : rest[..colon];
            port = colon < 0 ? null : rest[(colon + 1)..];
        }
        if (host.Length == 0 || host.AsSpan().IndexOfAny('/', '?', '#') >= 0)
        {
            throw Invalid(target, "missing or malformed host");
        }
        var number = defaultPort;
        if (port is not null && (!int.TryParse(port, NumberStyles.None, CultureInfo.InvariantCulture, out number) || number is < 1 or > 65535))
        {
            throw Invalid(target, $"bad port '{port}'");
        }
        return new DnsTarget(host, number);
    }

    private static ArgumentException Invalid(string target, string why) =>
        new($"Invalid dns target '{target}': {why}.", nameof(target));
}
