namespace LabMesh.Security.Identity;

/// <summary>
/// Bearer-token identity (SECURITY.md). Section <c>LabMesh:Security</c>. A process trusts the
/// public keys in <see cref="Keys"/> plus the public half of its own <see cref="SigningKeyPem"/>, and
/// signs its service tokens (calls to its peers) with <see cref="SigningKeyPem"/>.
/// </summary>
public sealed class SecurityOptions
{
    public const string Section = "LabMesh:Security";

    /// <summary>The <c>iss</c> every token must carry, and the one this process signs with.</summary>
    public string Issuer { get; set; } = "labmesh";

    /// <summary>The <c>aud</c> every token must carry, and the one this process signs with.</summary>
    public string Audience { get; set; } = "labmesh";

    /// <summary>Public keys (PEM, EC P-256 for ES256 or RSA of 2048 bits or more for RS256) tokens may be signed with, by <c>kid</c>.</summary>
    public List<TrustedKeyOptions> Keys { get; set; } = [];

    /// <summary>The <c>kid</c> of <see cref="SigningKeyPem"/>; required with it.</summary>
    public string? SigningKeyId { get; set; }

    /// <summary>
    /// This process's private key (PKCS#8 or SEC1/PKCS#1 PEM, EC P-256 or RSA): it signs the service
    /// tokens the process calls its peers with, and its public half is trusted like <see cref="Keys"/>.
    /// </summary>
    public string? SigningKeyPem { get; set; }

    /// <summary>
    /// An OpenID Connect issuer (Keycloak, Entra ID, Auth0...) whose tokens are trusted beside <see cref="Keys"/>:
    /// its discovery document (<c>{Authority}/.well-known/openid-configuration</c>) names its <c>issuer</c> and its
    /// keys (<c>jwks_uri</c>). Its tokens must carry that issuer and <see cref="Audience"/>. See <see cref="OidcAuthority"/>.
    /// </summary>
    public string? Authority { get; set; }

    /// <summary>The discovery document's address when it is not <c>{Authority}/.well-known/openid-configuration</c>.</summary>
    public string? MetadataAddress { get; set; }

    /// <summary>Refuse an <c>http://</c> discovery document or JWKS. Default true; false only for a development issuer.</summary>
    public bool RequireHttpsMetadata { get; set; } = true;

    /// <summary>How often the issuer's keys are read again on a schedule. Default 1 hour, at least 5 minutes.</summary>
    public TimeSpan KeyRefreshInterval { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// A token naming a <c>kid</c> the issuer's keys lack makes them be read again at once (a rotation), but at
    /// most once per this interval, so forged kids cannot make the issuer a target. Default 30 seconds, at least 1.
    /// </summary>
    public TimeSpan KeyRefreshMinimumInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>The claim names of the issuer's tokens (LabMesh's own tokens always use LabMesh's names).</summary>
    public ClaimNameOptions Claims { get; set; } = new();

    /// <summary>Tolerance on <c>exp</c> and <c>nbf</c> for clocks that drift. Default 30 seconds, at most 5 minutes.</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Whether server reflection is mapped (grpcurl's <c>list</c>/<c>describe</c>). Default true; switch off in production.</summary>
    public bool Reflection { get; set; } = true;

    /// <summary>
    /// With no key configured, create (and keep, under the data directory) a development signing key
    /// instead of refusing to start; only ever when every address the process listens on is loopback.
    /// The all-in-one host sets it; a service started alone gets it in the Development environment.
    /// </summary>
    public bool DevelopmentKeys { get; set; }
}

/// <summary>One trusted public key.</summary>
public sealed class TrustedKeyOptions
{
    /// <summary>The <c>kid</c> a token names in its header to be checked with this key.</summary>
    public string Id { get; set; } = "";

    /// <summary>The public key, PEM (<c>-----BEGIN PUBLIC KEY-----</c>).</summary>
    public string PublicKeyPem { get; set; } = "";
}

/// <summary>
/// Which claims of an OIDC issuer's tokens say who, which team, which role and which partner: identity
/// providers name them differently (a Keycloak mapper's <c>team</c>, Entra ID's <c>roles</c> array...).
/// </summary>
public sealed class ClaimNameOptions
{
    /// <summary>Who. Default <c>sub</c>.</summary>
    public string Subject { get; set; } = TokenClaims.Subject;

    /// <summary>
    /// The role: a string, or an array of strings of which exactly one is a LabMesh role
    /// (<c>clinician</c>, <c>admin</c>, <c>partner</c>, <c>service</c>). Default <c>role</c>.
    /// </summary>
    public string Role { get; set; } = TokenClaims.Role;

    /// <summary>The team, a string. Default <c>team</c>.</summary>
    public string Team { get; set; } = TokenClaims.Team;

    /// <summary>The partner (lab) id of a partner, a string. Default <c>partner_id</c>.</summary>
    public string PartnerId { get; set; } = TokenClaims.PartnerId;
}
