using System.Collections.Concurrent;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace LabMesh.ServiceDefaults.Identity;

/// <summary>
/// Checks a bearer token: signature with the trusted key its <c>kid</c> names and that key's one
/// algorithm (so <c>alg: none</c>, HS256 signed with a public key, or an unknown <c>kid</c> fail),
/// issuer, audience, expiry and not-before with a small skew, and LabMesh's claims.
/// </summary>
public sealed class TokenValidator
{
    /// <summary>Longer tokens are refused unread.</summary>
    public const int MaxTokenLength = 8 * 1024;

    private readonly Dictionary<string, SigningKey> _keys;
    private readonly JsonWebTokenHandler _handler = new() { MaximumTokenSizeInBytes = MaxTokenLength };
    private readonly TokenValidationParameters _parameters;

    // Tokens already checked, until they expire: a service's token is sent on every peer call for minutes,
    // and a client's for as long as it lives. Bounded: emptied when full.
    private const int CacheCapacity = 10_000;
    private readonly ConcurrentDictionary<string, (TokenIdentity Identity, DateTime Expires)> _checked = new(StringComparer.Ordinal);

    public TokenValidator(IEnumerable<SigningKey> trusted, string issuer, string audience, TimeSpan clockSkew)
    {
        ArgumentNullException.ThrowIfNull(trusted);
        _keys = new Dictionary<string, SigningKey>(StringComparer.Ordinal);
        foreach (var key in trusted)
        {
            if (!_keys.TryAdd(key.KeyId, key))
            {
                throw new ArgumentException($"{SecurityOptions.Section}: two keys have the id '{key.KeyId}'.");
            }
        }

        _parameters = new TokenValidationParameters
        {
            ValidIssuer = issuer,
            ValidAudience = audience,
            ValidateIssuer = true,
            ValidateAudience = true,
            ValidateLifetime = true,
            RequireExpirationTime = true,
            RequireSignedTokens = true,
            ClockSkew = clockSkew < TimeSpan.Zero || clockSkew > TimeSpan.FromMinutes(5) ? TimeSpan.FromSeconds(30) : clockSkew,
            ValidAlgorithms = [SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.RsaSha256],
            TryAllIssuerSigningKeys = false,
            IssuerSigningKeyResolver = (_, token, kid, _) => Resolve(token, kid),
        };
    }

    /// <summary>The ids of the trusted keys.</summary>
    public IReadOnlyCollection<string> KeyIds => _keys.Keys;

    /// <summary>What the token says, or null when it is not one to trust (the reason is never told to the caller).</summary>
    public async Task<TokenIdentity?> ValidateAsync(string token) => (await CheckAsync(token)).Identity;

    /// <summary>
    /// What the token says, or null and why not: the name of the check that failed (e.g.
    /// <c>SecurityTokenExpiredException</c>), for a debug log line, never for the caller.
    /// </summary>
    public async Task<(TokenIdentity? Identity, string? Failure)> CheckAsync(string token)
    {
        if (string.IsNullOrEmpty(token) || token.Length > MaxTokenLength)
        {
            return (null, "empty or oversize");
        }

        if (_checked.TryGetValue(token, out var known))
        {
            if (known.Expires > DateTime.UtcNow)
            {
                return (known.Identity, null);
            }

            _checked.TryRemove(token, out _);
        }

        TokenValidationResult result;
        try
        {
            result = await _handler.ValidateTokenAsync(token, _parameters);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or SecurityTokenException)
        {
            return (null, ex.GetType().Name);
        }

        if (!result.IsValid || result.SecurityToken is not JsonWebToken jwt)
        {
            return (null, result.Exception?.GetType().Name ?? "invalid");
        }

        var role = TokenIdentity.ParseRole(Claim(jwt, TokenClaims.Role));
        var subject = Claim(jwt, TokenClaims.Subject);
        var team = Claim(jwt, TokenClaims.Team);
        var partner = Claim(jwt, TokenClaims.PartnerId);
        // A team claim that is there but unusable (not a string, blank, over 128 characters, or not printable
        // ASCII, which it must be to travel as x-labmesh-for-team) refuses the token: read as no team, it would
        // make an integration's team-bound service token look like the mesh's own, which acts for any team.
        if (jwt.TryGetPayloadValue<object>(TokenClaims.Team, out _) && (team is null || !team.All(c => c is >= ' ' and <= '~')))
        {
            return (null, "unusable team claim");
        }

        if (role is null || subject is null || (team is null && role != CallerRole.Service) || (role == CallerRole.Partner && partner is null))
        {
            return (null, "missing or unknown claims");
        }

        var identity = new TokenIdentity(team, role.Value, subject, role == CallerRole.Partner ? partner : null);
        if (_checked.Count >= CacheCapacity)
        {
            _checked.Clear();
        }

        _checked[token] = (identity, jwt.ValidTo);
        return (identity, null);
    }

    private IEnumerable<SecurityKey> Resolve(SecurityToken token, string? kid) =>
        kid is not null && _keys.TryGetValue(kid, out var key) && token is JsonWebToken jwt && jwt.Alg == key.Algorithm
            ? [key.SecurityKey]
            : [];

    /// <summary>A string claim of 1 to 128 printable characters, or null.</summary>
    // The claim's JSON type is checked, not only its text: asked for a string, IdentityModel turns a number, an
    // array, an object or a boolean into one ("5", "[\"teamb\",\"demo\"]", "True"), which passed for a team.
    private static string? Claim(JsonWebToken jwt, string name) =>
        jwt.TryGetPayloadValue<object>(name, out var raw) && raw is string value
        && !string.IsNullOrWhiteSpace(value) && value.Length <= 128 && !value.Any(char.IsControl)
            ? value
            : null;
}
