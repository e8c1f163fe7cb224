using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace LabMesh.CrossLanguage.Tests;

/// <summary>
/// A throw-away certificate authority made for one test run, and the PEM files a TLS host and its
/// clients need: Kestrel serves the server certificate by path, clients trust the CA's certificate
/// explicitly (never the system store, never a disabled check).
/// </summary>
internal static class TestCertificates
{
    /// <summary>The PEM files written: the CA certificate, and the server's certificate and key.</summary>
    public sealed record Files(string CaCertificate, string ServerCertificate, string ServerKey);

    /// <summary>
    /// Writes a new CA's certificate and a server certificate it signed for localhost, 127.0.0.1 and
    /// ::1 (ECDSA P-256, valid from a minute ago for a day) into <paramref name="directory"/>.
    /// </summary>
    public static Files WriteServerCertificate(string directory, string name)
    {
        using var caKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var ca = CreateAuthority(caKey, $"LabMesh cross-language test CA ({name})");
        using var serverKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", serverKey, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        names.AddIpAddress(IPAddress.IPv6Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1", "Server Authentication")], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F; // positive
        var now = DateTimeOffset.UtcNow;
        using var server = request.Create(ca.SubjectName, X509SignatureGenerator.CreateForECDsa(caKey), now.AddMinutes(-1), now.AddDays(1), serial);

        var files = new Files(
            Path.Combine(directory, $"{name}-ca.pem"),
            Path.Combine(directory, $"{name}-server.pem"),
            Path.Combine(directory, $"{name}-server-key.pem"));
        File.WriteAllText(files.CaCertificate, ca.ExportCertificatePem());
        File.WriteAllText(files.ServerCertificate, server.ExportCertificatePem());
        File.WriteAllText(files.ServerKey, serverKey.ExportPkcs8PrivateKeyPem());
        return files;
    }

    private static X509Certificate2 CreateAuthority(ECDsa key, string commonName)
    {
        var request = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddMinutes(-1), now.AddDays(1));
    }
}
