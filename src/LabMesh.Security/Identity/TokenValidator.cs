using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace LabMesh.Security.Identity;

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

    private readonly string _issuer;
    private readonly OidcAuthority? _authority;
    private readonly ClaimNameOptions _authorityClaims;
    private static readonly ClaimNameOptions LabMeshClaims = new();
    private int _authorityRemovals;

    /// <summary>
    /// Trusts <paramref name="trusted"/> for tokens issued by <paramref name="issuer"/>, and, with an
    /// <paramref name="authority"/>, that OIDC issuer's keys for tokens it issued, whose claims are read by
    /// <paramref name="authorityClaims"/>' names. Either way the token's audience is <paramref name="audience"/>.
    /// </summary>
    public TokenValidator(
        IEnumerable<SigningKey> trusted, string issuer, string audience, TimeSpan clockSkew,
        OidcAuthority? authority = null, ClaimNameOptions? authorityClaims = null)
    {
        _issuer = issuer;
        _authority = authority;
        _authorityClaims = authorityClaims ?? LabMeshClaims;
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
            // The issuer is the one the signing key belongs to: LabMesh's own keys sign as Issuer, the OIDC
            // issuer's keys as the issuer its discovery document names (Resolve offers only those keys).
            IssuerValidator = (tokenIssuer, _, _) => tokenIssuer == issuer || (tokenIssuer is not null && tokenIssuer == _authority?.Current?.Issuer)
                ? tokenIssuer
                : throw new SecurityTokenInvalidIssuerException("The token's issuer is not trusted."),
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

        if (_authority is not null && _authority.Removals != Volatile.Read(ref _authorityRemovals))
        {
            // The issuer dropped a key: what it signed is checked again.
            Volatile.Write(ref _authorityRemovals, _authority.Removals);
            _checked.Clear();
        }

        if (_checked.TryGetValue(token, out var known))
        {
            if (known.Expires > DateTime.UtcNow)
            {
                return (known.Identity, null);
            }

            _checked.TryRemove(token, out _);
        }

        if (_authority is not null)
        {
            await _authority.KeysAsync();
        }

        var result = await ValidateSignedAsync(token);
        if (result is { IsValid: false, Exception: SecurityTokenSignatureKeyNotFoundException } && NamesUnknownAuthorityKey(token)
            && await _authority!.RefreshForUnknownKeyAsync())
        {
            // A kid the issuer's keys lacked: a rotation. The keys were read again; check once more.
            result = await ValidateSignedAsync(token);
        }

        if (result is null || !result.IsValid || result.SecurityToken is not JsonWebToken jwt)
        {
            return (null, result?.Exception?.GetType().Name ?? "invalid");
        }

        // LabMesh's own keys use LabMesh's claim names; the OIDC issuer's tokens use the names configured for it.
        var names = IsAuthorityKey(jwt) ? _authorityClaims : LabMeshClaims;
        var role = TokenIdentity.ParseRole(RoleClaim(jwt, names.Role));
        var subject = Claim(jwt, names.Subject);
        var team = Claim(jwt, names.Team);
        var partner = Claim(jwt, names.PartnerId);
        // A team claim that is there but unusable (not a string, blank, over 128 characters, or not printable
        // ASCII, which it must be to travel as x-labmesh-for-team) refuses the token: read as no team, it would
        // make an integration's team-bound service token look like the mesh's own, which acts for any team.
        if (jwt.TryGetPayloadValue<object>(names.Team, out _) && (team is null || !team.All(c => c is >= ' ' and <= '~')))
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

    private async Task<TokenValidationResult?> ValidateSignedAsync(string token)
    {
        try
        {
            return await _handler.ValidateTokenAsync(token, _parameters);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or SecurityTokenException)
        {
            return new TokenValidationResult { IsValid = false, Exception = ex };
        }
    }

    /// <summary>The key the token's <c>kid</c> names among those of the issuer it names, if the token's algorithm is that key's one.</summary>
    private IEnumerable<SecurityKey> Resolve(SecurityToken token, string? kid)
    {
        if (kid is null || token is not JsonWebToken jwt)
        {
            return [];
        }

        if (jwt.Issuer == _issuer && _keys.TryGetValue(kid, out var own) && jwt.Alg == own.Algorithm)
        {
            return [own.SecurityKey];
        }

        return _authority?.Current is { } issuer && jwt.Issuer == issuer.Issuer && issuer.Keys.TryGetValue(kid, out var theirs) && jwt.Alg == theirs.Algorithm
            ? [theirs.Key]
            : [];
    }

    /// <summary>Whether a token refused for want of a key names the OIDC issuer and a kid its keys lack (or they were never read).</summary>
    private bool NamesUnknownAuthorityKey(string token)
    {
        if (_authority is null)
        {
            return false;
        }

        try
        {
            // Only a token that does not claim LabMesh's own issuer can be the provider's.
            var jwt = _handler.ReadJsonWebToken(token);
            return jwt.Issuer != _issuer
                && (_authority.Current is not { } keys || (jwt.Issuer == keys.Issuer && !string.IsNullOrEmpty(jwt.Kid) && !keys.Keys.ContainsKey(jwt.Kid)));
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException or SecurityTokenException)
        {
            return false;
        }
    }

    private bool IsAuthorityKey(JsonWebToken jwt) =>
        _authority?.Current is { } keys && jwt.Issuer == keys.Issuer && keys.Keys.TryGetValue(jwt.Kid ?? "", out var key)
        && ReferenceEquals(key.Key, jwt.SigningKey);

    /// <summary>
    /// The role: a string claim, or (identity providers put roles in lists: Entra ID's <c>roles</c>) an array of
    /// strings naming exactly one LabMesh role among any others. Anything else is no role.
    /// </summary>
    private static string? RoleClaim(JsonWebToken jwt, string name)
    {
        if (!jwt.TryGetPayloadValue<object>(name, out var raw))
        {
            return null;
        }

        if (raw is string)
        {
            return Claim(jwt, name);
        }

        IEnumerable<string?>? words = raw switch
        {
            JsonElement { ValueKind: JsonValueKind.Array } array => array.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString() : null),
            IEnumerable<object> items => items.Select(item => item as string),
            _ => null,
        };
        var roles = words?.Where(word => TokenIdentity.ParseRole(word) is not null).Distinct(StringComparer.Ordinal).ToList();
        return roles is [var only] ? only : null;
    }

    /// <summary>A string claim of 1 to 128 printable characters, or null.</summary>
    // The claim's JSON type is checked, not only its text: asked for a string, IdentityModel turns a number, an
    // array, an object or a boolean into one ("5", "[\"teamb\",\"demo\"]", "True"), which passed for a team.
    private static string? Claim(JsonWebToken jwt, string name) =>
        jwt.TryGetPayloadValue<object>(name, out var raw) && raw is string value
        && !string.IsNullOrWhiteSpace(value) && value.Length <= 128 && !value.Any(char.IsControl)
            ? value
            : null;
}
