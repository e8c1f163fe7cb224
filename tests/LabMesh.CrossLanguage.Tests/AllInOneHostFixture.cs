using LabMesh.Testing;

namespace LabMesh.CrossLanguage.Tests;

/// <summary>
/// The all-in-one host as the README runs it (<see cref="AllInOneProcess"/>), shared by the tests of one class.
/// Clients use the clinician token the host prints for team <c>demo</c>.
/// </summary>
public class AllInOneHostFixture : AllInOneProcess
{
    private readonly bool _tls;

    public AllInOneHostFixture()
        : this(tls: false)
    {
    }

    protected AllInOneHostFixture(bool tls) => _tls = tls;

    /// <summary>host:port that clients call: the h2c endpoint, or the TLS one for a TLS host.</summary>
    public string Target { get; private set; } = "";

    /// <summary>The CA that signed the TLS endpoint's certificate (PEM file); null without TLS.</summary>
    public string? CaCertificate { get; private set; }

    /// <summary>The "clinician:" token of the host's welcome.</summary>
    public string ClinicianToken => Welcome("clinician: ");

    protected override IEnumerable<string> Arguments()
    {
        Target = $"127.0.0.1:{Port}";
        if (!_tls)
        {
            return [];
        }

        // Standard ASP.NET Core configuration. Named Kestrel endpoints replace `urls`: the services call
        // each other on the first http:// one (a host with https:// endpoints only refuses to start).
        var tlsPort = FreePort.Next();
        var certificate = TestCertificates.WriteServerCertificate(WorkingDirectory, "host");
        Target = $"127.0.0.1:{tlsPort}";
        CaCertificate = certificate.CaCertificate;
        return
        [
            $"--Kestrel:Endpoints:H2c:Url={Address}",
            $"--Kestrel:Endpoints:Tls:Url=https://127.0.0.1:{tlsPort}",
            $"--Kestrel:Endpoints:Tls:Certificate:Path={certificate.ServerCertificate}",
            $"--Kestrel:Endpoints:Tls:Certificate:KeyPath={certificate.ServerKey}",
        ];
    }
}

/// <summary>The all-in-one host with a second, TLS, endpoint whose certificate a throw-away test CA signed.</summary>
public sealed class TlsAllInOneHostFixture() : AllInOneHostFixture(tls: true);
