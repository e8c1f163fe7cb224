using System.Net;
using Grpc.Net.Client;
using LabMesh.ServiceDefaults.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace LabMesh.Testing;

/// <summary>
/// A LabMesh service process in a test: a real Kestrel h2c endpoint on a loopback port, configured
/// like the service's own Program.cs and from the given settings. Stop it and start a new one on
/// the same <see cref="Port"/> to play a replica going down and coming back.
/// </summary>
public sealed class ServiceHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private ServiceHost(WebApplication app, int port, LogCapture logs)
    {
        _app = app;
        Port = port;
        Logs = logs;
    }

    public int Port { get; }

    public string Address => $"http://127.0.0.1:{Port}";

    public LogCapture Logs { get; }

    public IServiceProvider Services => _app.Services;

    /// <summary>
    /// Builds and starts a host: <paramref name="configure"/> registers the services (as Program.cs
    /// does, after <c>AddServiceDefaults</c>), <paramref name="map"/> maps them.
    /// </summary>
    public static async Task<ServiceHost> StartAsync(
        IReadOnlyDictionary<string, string?> settings,
        Action<WebApplicationBuilder> configure,
        Action<WebApplication> map,
        int port = 0)
    {
        // As the services' Program.cs: no configuration reload, so no watcher on the working directory (HostArgs).
        var builder = WebApplication.CreateBuilder(HostArgs.WithoutConfigReload([]));
        // Trust TestCaller's tokens (the test's settings may override).
        builder.Configuration.AddInMemoryCollection(TestCaller.HostSettings);
        builder.Configuration.AddInMemoryCollection(settings);
        var logs = new LogCapture();
        builder.Logging.ClearProviders();
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        builder.Logging.AddProvider(logs);
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port, l => l.Protocols = HttpProtocols.Http2));
        configure(builder);
        var app = builder.Build();
        map(app);
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(60));
        var bound = new Uri(app.Urls.Single()).Port;
        return new ServiceHost(app, bound, logs);
    }

    /// <summary>A channel to this host as LabMesh makes them (MeshChannels).</summary>
    public GrpcChannel CreateChannel() => LabMesh.ServiceDefaults.Peers.MeshChannels.Create(Address);

    public async Task StopAsync() => await _app.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await _app.DisposeAsync();
    }
}
