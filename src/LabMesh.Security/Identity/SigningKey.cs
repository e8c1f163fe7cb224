using System.Security.Cryptography;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace LabMesh.Security.Identity;

/// <summary>The claims LabMesh reads from a token, besides <c>iss</c>, <c>aud</c>, <c>exp</c>, <c>nbf</c>.</summary>
public static class TokenClaims
{
    /// <summary>Who: a user id, <c>service:{name}</c>, <c>partner-user</c>... (kept for history and audit).</summary>
    public const string Subject = "sub";

    /// <summary>The team (tenant) every read and write is scoped to. Optional for services, which name the team per call.</summary>
    public const string Team = "team";

    /// <summary>One of <c>partner</c>, <c>clinician</c>, <c>service</c>, <c>admin</c>.</summary>
    public const string Role = "role";

    /// <summary>The partner (lab) id; required with role <c>partner</c>.</summary>
    public const string PartnerId = "partner_id";
}

/// <summary>What a token says about its bearer.</summary>
/// <param name="Team">The team; null only for a service token, whose calls name the team they act for.</param>
/// <param name="Role">The role.</param>
/// <param name="Subject">Who (<c>sub</c>).</param>
/// <param name="PartnerId">The partner id, for role partner only.</param>
public sealed record TokenIdentity(string? Team, CallerRole Role, string Subject, string? PartnerId)
{
    /// <summary>The role's word in tokens and in SECURITY.md.</summary>
    public static string RoleName(CallerRole role) => role switch
    {
        CallerRole.Partner => "partner",
        CallerRole.Clinician => "clinician",
        CallerRole.Admin => "admin",
        _ => "service",
    };

    /// <summary>The role a token's word names; null for anything else (the token is refused).</summary>
    public static CallerRole? ParseRole(string? word) => word switch
    {
        "partner" => CallerRole.Partner,
        "clinician" => CallerRole.Clinician,
        "admin" => CallerRole.Admin,
        "service" => CallerRole.Service,
        _ => null,
    };
}

/// <summary>
/// An asymmetric key with its <c>kid</c>: EC P-256 (ES256) or RSA of at least 2048 bits (RS256).
/// Holds a private key to sign tokens, or only a public one to check them.
/// </summary>
public sealed class SigningKey : IDisposable
{
    private readonly AsymmetricAlgorithm _key;

    private SigningKey(string keyId, AsymmetricAlgorithm key, bool hasPrivateKey)
    {
        KeyId = keyId;
        _key = key;
        HasPrivateKey = hasPrivateKey;
        (Algorithm, SecurityKey) = key switch
        {
            ECDsa ec => (SecurityAlgorithms.EcdsaSha256, (SecurityKey)new ECDsaSecurityKey(ec) { KeyId = keyId }),
            RSA rsa => (SecurityAlgorithms.RsaSha256, new RsaSecurityKey(rsa) { KeyId = keyId }),
            _ => throw new ArgumentException("Only EC P-256 and RSA keys are supported.", nameof(key)),
        };
    }

    public string KeyId { get; }

    /// <summary><c>ES256</c> or <c>RS256</c>: the only algorithm a token checked with this key may name.</summary>
    public string Algorithm { get; }

    public bool HasPrivateKey { get; }

    /// <summary>The key as IdentityModel uses it.</summary>
    public SecurityKey SecurityKey { get; }

    /// <summary>A new EC P-256 key (the development key, test keys).</summary>
    public static SigningKey Generate(string keyId) => new(keyId, ECDsa.Create(ECCurve.NamedCurves.nistP256), hasPrivateKey: true);

    /// <summary>
    /// A key from PEM: a public key (<c>PUBLIC KEY</c>) or a private one (<c>PRIVATE KEY</c>,
    /// <c>EC PRIVATE KEY</c>, <c>RSA PRIVATE KEY</c>). Throws <see cref="ArgumentException"/> naming
    /// <paramref name="setting"/> for anything else, a curve other than P-256, or RSA under 2048 bits.
    /// </summary>
    public static SigningKey FromPem(string keyId, string pem, string setting)
    {
        if (string.IsNullOrWhiteSpace(keyId))
        {
            throw new ArgumentException($"{setting}: the key has no id (kid).");
        }

        if (string.IsNullOrWhiteSpace(pem) || !PemEncoding.TryFind(pem, out var fields))
        {
            throw new ArgumentException($"{setting}: not a PEM key.");
        }

        var label = pem[fields.Label];
        var isPrivate = label.Contains("PRIVATE", StringComparison.Ordinal);
        if (TryImport(ECDsa.Create(), pem) is { } ec)
        {
            if (ec.KeySize != 256)
            {
                ec.Dispose();
                throw new ArgumentException($"{setting}: an EC key must be on curve P-256 (ES256).");
            }

            return new SigningKey(keyId, ec, isPrivate);
        }

        var rsa = TryImport(RSA.Create(), pem) ?? throw new ArgumentException($"{setting}: not an EC P-256 or RSA key in PEM.");
        if (rsa.KeySize < 2048)
        {
            rsa.Dispose();
            throw new ArgumentException($"{setting}: an RSA key must have at least 2048 bits.");
        }

        return new SigningKey(keyId, rsa, isPrivate);
    }

    private static T? TryImport<T>(T key, string pem)
        where T : AsymmetricAlgorithm
    {
        try
        {
            key.ImportFromPem(pem);
            return key;
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            key.Dispose();
            return null;
        }
    }

    /// <summary>The private key as PKCS#8 PEM.</summary>
    public string ExportPrivateKeyPem() => HasPrivateKey
        ? _key.ExportPkcs8PrivateKeyPem()
        : throw new InvalidOperationException($"Key {KeyId} has no private key.");

    /// <summary>The public key as SubjectPublicKeyInfo PEM (<c>-----BEGIN PUBLIC KEY-----</c>).</summary>
    public string ExportPublicKeyPem() => _key.ExportSubjectPublicKeyInfoPem();

    /// <summary>A signed token for <paramref name="identity"/>, valid from now (less a little skew) for <paramref name="lifetime"/>.</summary>
    public string Mint(TokenIdentity identity, string issuer, string audience, TimeSpan lifetime, DateTime? now = null)
    {
        ArgumentNullException.ThrowIfNull(identity);
        if (!HasPrivateKey)
        {
            throw new InvalidOperationException($"Key {KeyId} has no private key: it cannot sign.");
        }

        var at = now ?? DateTime.UtcNow;
        var claims = new Dictionary<string, object>
        {
            [TokenClaims.Subject] = identity.Subject,
            [TokenClaims.Role] = TokenIdentity.RoleName(identity.Role),
        };
        if (identity.Team is not null)
        {
            claims[TokenClaims.Team] = identity.Team;
        }

        if (identity.PartnerId is not null)
        {
            claims[TokenClaims.PartnerId] = identity.PartnerId;
        }

        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Audience = audience,
            IssuedAt = at,
            NotBefore = at.AddSeconds(-5),
            Expires = at + lifetime,
            Claims = claims,
            SigningCredentials = new SigningCredentials(SecurityKey, Algorithm),
        });
    }

    public void Dispose() => _key.Dispose();
}
