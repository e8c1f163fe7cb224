using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LabMesh.Interop;

/// <summary>How to run the interop server.</summary>
public sealed class InteropServerOptions
{
    /// <summary>The loopback port to listen on; 0 picks a free one (read it back from <see cref="InteropServer.Port"/>).</summary>
    public int Port { get; set; }

    /// <summary>Serve TLS (HTTP/2 over ALPN) instead of h2c.</summary>
    public bool UseTls { get; set; }

    /// <summary>PEM file of the server certificate; with <see cref="TlsKeyPath"/>. When null a
    /// throw-away CA issues one for localhost, 127.0.0.1 and ::1.</summary>
    public string? TlsCertPath { get; set; }

    /// <summary>PEM file of the server certificate's private key.</summary>
    public string? TlsKeyPath { get; set; }

    /// <summary>Where to write the generated CA's certificate (PEM) so clients can trust it.</summary>
    public string? TlsCaOutPath { get; set; }

    /// <summary>A certificate to serve, for in-process hosts (wins over the paths).</summary>
    public X509Certificate2? Certificate { get; set; }

    /// <summary>The encoding responses marked for compression use; null disables response compression.</summary>
    public string? ResponseCompressionAlgorithm { get; set; } = "gzip";

    /// <summary>Replaces the default logging (console, warnings and up) when set.</summary>
    public Action<ILoggingBuilder>? ConfigureLogging { get; set; }
}

/// <summary>
/// The interop server: <c>grpc.testing.TestService</c> (plus health and reflection) on Kestrel,
/// on a loopback port, over h2c (an HTTP/2-only endpoint, as prior-knowledge clients need) or TLS.
/// </summary>
public sealed class InteropServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TestCertificateAuthority? _authority;

    private InteropServer(WebApplication app, int port, bool useTls, TestCertificateAuthority? authority)
    {
        _app = app;
        _authority = authority;
        Port = port;
        UseTls = useTls;
    }

    /// <summary>The port the server listens on.</summary>
    public int Port { get; }

    /// <summary>Whether the server speaks TLS.</summary>
    public bool UseTls { get; }

    /// <summary>The base address clients use, e.g. <c>http://127.0.0.1:50051</c>.</summary>
    public string Address => $"{(UseTls ? "https" : "http")}://{(UseTls ? "localhost" : "127.0.0.1")}:{Port}";

    /// <summary>The generated CA's certificate when the server made its own; null otherwise.</summary>
    public X509Certificate2? CaCertificate => _authority?.Certificate;

    /// <summary>The generated CA's certificate in PEM, or null.</summary>
    public string? CaCertificatePem => _authority?.CertificatePem;

    /// <summary>Starts the server and returns once it accepts connections.</summary>
    public static async Task<InteropServer> StartAsync(InteropServerOptions options, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        TestCertificateAuthority? authority = null;
        X509Certificate2? certificate = null;
        WebApplication? app = null;
        try
        {
            if (options.UseTls)
            {
                (certificate, authority) = LoadOrCreateCertificate(options);
            }

            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            if (options.ConfigureLogging is { } configureLogging)
            {
                configureLogging(builder.Logging);
            }
            else
            {
                builder.Logging.AddSimpleConsole(console => console.SingleLine = true);
                builder.Logging.SetMinimumLevel(LogLevel.Warning);
                builder.Logging.AddFilter("LabMesh.Interop", LogLevel.Information);
            }

            builder.WebHost.ConfigureKestrel(kestrel =>
            {
                kestrel.Listen(IPAddress.Loopback, options.Port, listen =>
                {
                    if (certificate is null)
                    {
                        // h2c: HTTP/2 only, or prior-knowledge clients cannot connect.
                        listen.Protocols = HttpProtocols.Http2;
                    }
                    else
                    {
                        listen.Protocols = HttpProtocols.Http1AndHttp2;
                        listen.UseHttps(certificate);
                    }
                });
            });

            builder.Services.AddGrpc(grpc => grpc.ResponseCompressionAlgorithm = options.ResponseCompressionAlgorithm);
            InteropHostExtras.AddServices(builder.Services);

            app = builder.Build();
            app.MapGrpcService<TestServiceImpl>();
            InteropHostExtras.MapEndpoints(app);

            await app.StartAsync(cancellationToken);
            var port = BoundPort(app);
            var logger = app.Services.GetRequiredService<ILogger<InteropServer>>();
            Log.Listening(logger, options.UseTls ? "https" : "http", port);
            if (authority is not null && options.TlsCaOutPath is not null)
            {
                await File.WriteAllTextAsync(options.TlsCaOutPath, authority.CertificatePem, cancellationToken);
            }
            var server = new InteropServer(app, port, options.UseTls, authority);
            app = null;
            authority = null;
            return server;
        }
        finally
        {
            if (app is not null)
            {
                await app.DisposeAsync();
            }
            authority?.Dispose();
        }
    }

    /// <summary>Completes when the host is asked to stop (Ctrl+C, SIGTERM) or the token is cancelled.</summary>
    public Task WaitForShutdownAsync(CancellationToken cancellationToken = default) => _app.WaitForShutdownAsync(cancellationToken);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _app.StopAsync(timeout.Token);
        }
        finally
        {
            await _app.DisposeAsync();
            _authority?.Dispose();
        }
    }

    private static (X509Certificate2 Certificate, TestCertificateAuthority? Authority) LoadOrCreateCertificate(InteropServerOptions options)
    {
        if (options.Certificate is not null)
        {
            return (options.Certificate, null);
        }
        if (options.TlsCertPath is not null || options.TlsKeyPath is not null)
        {
            if (options.TlsCertPath is null || options.TlsKeyPath is null)
            {
                throw new ArgumentException("--tls_cert and --tls_key go together.");
            }
            return (TestCertificateAuthority.LoadPem(File.ReadAllText(options.TlsCertPath), File.ReadAllText(options.TlsKeyPath)), null);
        }
        var authority = TestCertificateAuthority.Create();
        try
        {
            return (authority.IssueServerCertificate().Certificate, authority);
        }
        catch
        {
            authority.Dispose();
            throw;
        }
    }

    private static int BoundPort(WebApplication app)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses
            ?? throw new InvalidOperationException("The server reports no addresses.");
        var address = addresses.First();
        // Kestrel reports e.g. "http://127.0.0.1:50051".
        var colon = address.LastIndexOf(':');
        return int.Parse(address.AsSpan(colon + 1).TrimEnd('/'), System.Globalization.CultureInfo.InvariantCulture);
    }
}
