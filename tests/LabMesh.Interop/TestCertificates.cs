using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace LabMesh.Interop;

/// <summary>A server certificate with its key, as an object and as PEM text.</summary>
/// <param name="Certificate">The certificate with its private key (what Kestrel serves).</param>
/// <param name="CertificatePem">The certificate in PEM.</param>
/// <param name="PrivateKeyPem">The private key in PKCS#8 PEM.</param>
public sealed record IssuedCertificate(X509Certificate2 Certificate, string CertificatePem, string PrivateKeyPem);

/// <summary>
/// A throw-away certificate authority for interop runs over TLS: it exists only in memory, for
/// one test run, and signs server certificates for loopback names. Clients trust its certificate
/// explicitly (never the system store, never a disabled check).
/// </summary>
public sealed class TestCertificateAuthority : IDisposable
{
    /// <summary>The names every issued server certificate covers by default: loopback, and the
    /// <c>*.test.google.fr</c> name that other implementations' interop clients pass as
    /// <c>--server_host_override</c>.</summary>
    public static readonly IReadOnlyList<string> DefaultDnsNames = ["localhost", "*.test.google.fr"];

    private readonly RSA _key;

    private TestCertificateAuthority(X509Certificate2 certificate, RSA key)
    {
        Certificate = certificate;
        _key = key;
        CertificatePem = certificate.ExportCertificatePem();
    }

    /// <summary>The CA certificate (with its key).</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The CA certificate in PEM: what a client passes as its root.</summary>
    public string CertificatePem { get; }

    /// <summary>Creates a new CA, valid from a minute ago for a week.</summary>
    public static TestCertificateAuthority Create(string commonName = "LabMesh interop test CA")
    {
        var key = RSA.Create(2048);
        try
        {
            var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
            request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
            var now = DateTimeOffset.UtcNow;
            var certificate = request.CreateSelfSigned(now.AddMinutes(-1), now.AddDays(7));
            return new TestCertificateAuthority(certificate, key);
        }
        catch
        {
            key.Dispose();
            throw;
        }
    }

    /// <summary>Issues a server certificate for the given names (default: <see cref="DefaultDnsNames"/>, 127.0.0.1 and ::1).</summary>
    public IssuedCertificate IssueServerCertificate(IEnumerable<string>? dnsNames = null, IEnumerable<IPAddress>? addresses = null)
    {
        var names = (dnsNames ?? DefaultDnsNames).ToList();
        using var key = RSA.Create(2048);
        var request = new CertificateRequest($"CN={names.FirstOrDefault() ?? "localhost"}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var name in names)
        {
            san.AddDnsName(name);
        }
        foreach (var address in addresses ?? [IPAddress.Loopback, IPAddress.IPv6Loopback])
        {
            san.AddIpAddress(address);
        }
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1", "Server Authentication")], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false));

        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F; // a positive serial number
        var now = DateTimeOffset.UtcNow;
        using var signed = request.Create(Certificate.SubjectName, X509SignatureGenerator.CreateForRSA(_key, RSASignaturePadding.Pkcs1), now.AddMinutes(-1), now.AddDays(7), serial);
        var certificatePem = signed.ExportCertificatePem();
        var keyPem = key.ExportPkcs8PrivateKeyPem();
        return new IssuedCertificate(LoadPem(certificatePem, keyPem), certificatePem, keyPem);
    }

    /// <summary>Loads a certificate and its key from PEM text, in a form Kestrel can serve.</summary>
    public static X509Certificate2 LoadPem(string certificatePem, string privateKeyPem)
    {
        using var ephemeral = X509Certificate2.CreateFromPem(certificatePem, privateKeyPem);
        // Round-trip through PKCS#12 so the key is usable by SslStream on every platform.
        return X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), password: null);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        Certificate.Dispose();
        _key.Dispose();
    }
}
