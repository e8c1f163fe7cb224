using LabMesh.Testing;

namespace LabMesh.CrossLanguage.Tests;

/// <summary>
/// The all-in-one host as the README runs it: its own process, embedded defaults (SQLite under a
/// temporary working directory, in-process cache and bus), on a free loopback port, shared by the
/// tests of one class. Clients use the clinician token the host prints for team <c>demo</c>.
/// </summary>
public class AllInOneHostFixture : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private readonly bool _tls;
    private ChildProcess? _host;

    public AllInOneHostFixture()
        : this(tls: false)
    {
    }

    protected AllInOneHostFixture(bool tls) => _tls = tls;

    public string WorkingDirectory { get; } = Directory.CreateTempSubdirectory("labmesh-xlang-").FullName;

    /// <summary>host:port that clients call: the h2c endpoint, or the TLS one for a TLS host.</summary>
    public string Target { get; private set; } = "";

    /// <summary>The CA that signed the TLS endpoint's certificate (PEM file); null without TLS.</summary>
    public string? CaCertificate { get; private set; }

    /// <summary>The "clinician:" token of the host's welcome.</summary>
    public string ClinicianToken { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var port = FreePort.Next();
        // `urls` is also where the services reach each other inside the host (its peer addresses).
        List<string> arguments = [Repository.AllInOneAssembly(), "--urls", $"http://127.0.0.1:{port}"];
        Target = $"127.0.0.1:{port}";
        if (_tls)
        {
            // Standard ASP.NET Core configuration. Named Kestrel endpoints replace `urls`: the services call
            // each other on the first http:// one (a host with https:// endpoints only refuses to start).
            var tlsPort = FreePort.Next();
            var certificate = TestCertificates.WriteServerCertificate(WorkingDirectory, "host");
            arguments.AddRange(
            [
                $"--Kestrel:Endpoints:H2c:Url=http://127.0.0.1:{port}",
                $"--Kestrel:Endpoints:Tls:Url=https://127.0.0.1:{tlsPort}",
                $"--Kestrel:Endpoints:Tls:Certificate:Path={certificate.ServerCertificate}",
                $"--Kestrel:Endpoints:Tls:Certificate:KeyPath={certificate.ServerKey}",
            ]);
            Target = $"127.0.0.1:{tlsPort}";
            CaCertificate = certificate.CaCertificate;
        }

        _host = ChildProcess.Start("dotnet", arguments, WorkingDirectory);
        // The welcome is printed once the host serves; its last line is the ListRequisitions example.
        await _host.WaitForLineAsync(line => line.Contains("RequisitionService/ListRequisitions", StringComparison.Ordinal), StartTimeout, "its welcome");
        const string clinician = "clinician: ";
        var tokenLine = _host.StandardOutput.Single(line => line.TrimStart().StartsWith(clinician, StringComparison.Ordinal));
        ClinicianToken = tokenLine.Trim()[clinician.Length..];
    }

    public async Task DisposeAsync()
    {
        if (_host is not null)
        {
            await _host.DisposeAsync();
        }

        Directory.Delete(WorkingDirectory, recursive: true);
    }

    /// <summary>
    /// The host's log entries at error or critical level so far (the console logger's <c>fail:</c> and
    /// <c>crit:</c> lines with the message line after each), and a note if the host is no longer running.
    /// </summary>
    public IReadOnlyList<string> Errors()
    {
        var host = _host ?? throw new InvalidOperationException("The host has not started.");
        List<string> errors = [];
        foreach (var lines in new[] { host.StandardOutput, host.StandardError })
        {
            for (var i = 0; i < lines.Count; i++)
            {
                if (lines[i].StartsWith("fail:", StringComparison.Ordinal) || lines[i].StartsWith("crit:", StringComparison.Ordinal))
                {
                    errors.Add(i + 1 < lines.Count ? $"{lines[i]} {lines[i + 1].Trim()}" : lines[i]);
                }
            }
        }

        if (host.HasExited)
        {
            errors.Add("The host exited.\n" + host.Describe());
        }

        return errors;
    }
}

/// <summary>The all-in-one host with a second, TLS, endpoint whose certificate a throw-away test CA signed.</summary>
public sealed class TlsAllInOneHostFixture() : AllInOneHostFixture(tls: true);
