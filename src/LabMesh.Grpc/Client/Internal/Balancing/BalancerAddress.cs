using System.Collections.Concurrent;
using System.Net;

namespace Grpc.Net.Client.Internal.Balancing;

/// <summary>
/// One address of a balanced (<c>dns:</c>, <c>ipv4:</c>, <c>ipv6:</c>) target. SocketsHttpHandler pools connections per URI authority,
/// so sending to <c>scheme://ip:port</c> gives each address its own connections inside one handler.
/// </summary>
internal sealed class BalancerAddress(IPEndPoint endPoint, string scheme)
{
    private readonly ConcurrentDictionary<string, Uri> _uris = new(StringComparer.Ordinal);

    public IPEndPoint EndPoint { get; } = endPoint;

    public Uri BaseUri { get; } = new($"{scheme}://{endPoint}/", UriKind.Absolute);

    /// <summary>False from a refused connection until a probe connects again. Guarded by the balancer's lock.</summary>
    public bool IsHealthy { get; set; } = true;

    /// <summary>No longer in the resolved set: never picked again, its probe stops.</summary>
    public bool IsRemoved { get; set; }

    /// <summary>Connection failures since the last call that got an answer; sets the backoff.</summary>
    public int Failures;

    public string? LastError { get; set; }

    /// <summary>A call got an answer: the next failure starts the backoff afresh.</summary>
    public void ReportSuccess()
    {
        if (Volatile.Read(ref Failures) != 0)
        {
            Volatile.Write(ref Failures, 0);
        }
    }

    public Uri GetUri(string pathAndQuery) =>
        _uris.GetOrAdd(pathAndQuery, static (path, baseUri) => new Uri(baseUri, path), BaseUri);

    public override string ToString() => EndPoint.ToString();
}
