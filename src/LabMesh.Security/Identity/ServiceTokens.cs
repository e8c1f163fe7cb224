using System.Collections.Concurrent;

namespace LabMesh.Security.Identity;

/// <summary>
/// The tokens this process calls its peers with: role <c>service</c>, subject <c>service:{name}</c>, no
/// team (each call names the team it acts for), signed with this process's key, valid 10 minutes and
/// renewed 2 minutes before they end.
/// </summary>
public sealed class ServiceTokens(SecurityKeys keys)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(10);
    private static readonly TimeSpan Renewal = TimeSpan.FromMinutes(2);
    private readonly ConcurrentDictionary<string, (string Token, DateTime Expires)> _tokens = new(StringComparer.Ordinal);

    /// <summary>A valid token for the service <paramref name="service"/> (e.g. <c>requisition</c>).</summary>
    public string For(string service)
    {
        ArgumentException.ThrowIfNullOrEmpty(service);
        var now = DateTime.UtcNow;
        if (_tokens.TryGetValue(service, out var cached) && cached.Expires - now > Renewal)
        {
            return cached.Token;
        }

        var key = keys.Signing ?? throw new InvalidOperationException(
            $"This process has no signing key ({SecurityOptions.Section}:SigningKeyPem and SigningKeyId): it cannot call its peers.");
        var token = key.Mint(new TokenIdentity(null, CallerRole.Service, "service:" + service, null), keys.Issuer, keys.Audience, Lifetime, now);
        _tokens[service] = (token, now + Lifetime);
        return token;
    }
}
