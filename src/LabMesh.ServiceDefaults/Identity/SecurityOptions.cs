namespace LabMesh.ServiceDefaults.Identity;

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
