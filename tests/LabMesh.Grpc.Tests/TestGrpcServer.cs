using System.Net;
using System.Security.Cryptography.X509Certificates;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LabMesh.Grpc.Tests;

/// <summary>A real Kestrel server on a free loopback port, h2c or TLS, hosting whatever a test maps.</summary>
public sealed class TestGrpcServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TestGrpcServer(WebApplication app, string address, TestLogSink logs)
    {
        _app = app;
        Address = address;
        Logs = logs;
    }

    /// <summary>The base address, e.g. http://127.0.0.1:41234.</summary>
    public string Address { get; }

    /// <summary>The port the server listens on.</summary>
    public int Port => new Uri(Address).Port;

    /// <summary>Every log record the server wrote.</summary>
    public TestLogSink Logs { get; }

    /// <summary>The server's services.</summary>
    public IServiceProvider Services => _app.Services;

    public static async Task<TestGrpcServer> StartAsync(
        Action<IServiceCollection>? configureServices,
        Action<IEndpointRouteBuilder> mapEndpoints,
        X509Certificate2? certificate = null,
        Action<KestrelServerOptions>? configureKestrel = null,
        IPAddress? bindAddress = null,
        int port = 0)
    {
        bindAddress ??= IPAddress.Loopback;
        var builder = WebApplication.CreateSlimBuilder();
        var logs = new TestLogSink();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.Logging.AddProvider(logs);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Listen(bindAddress, port, listen =>
            {
                if (certificate is null)
                {
                    listen.Protocols = HttpProtocols.Http2;
                }
                else
                {
                    listen.Protocols = HttpProtocols.Http1AndHttp2;
                    listen.UseHttps(certificate);
                }
            });
            configureKestrel?.Invoke(kestrel);
        });
        builder.Services.AddGrpc();
        configureServices?.Invoke(builder.Services);
        var app = builder.Build();
        mapEndpoints(app);
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        var bound = app.Urls.Single();
        var boundPort = new Uri(bound.Replace("[::]", "localhost", StringComparison.Ordinal)).Port;
        var scheme = certificate is null ? "http" : "https";
        return new TestGrpcServer(app, $"{scheme}://{new IPEndPoint(bindAddress, boundPort)}", logs);
    }

    public GrpcChannel CreateChannel(GrpcChannelOptions? options = null) =>
        GrpcChannel.ForAddress(Address, options ?? new GrpcChannelOptions());

    /// <summary>Stops listening and closes connections (in-flight calls get a short grace period).</summary>
    public Task StopAsync() => _app.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await _app.DisposeAsync();
    }
}
