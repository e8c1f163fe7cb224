using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using System.Security.Cryptography.X509Certificates;

namespace LabMesh.Grpc.Tests.Runtime;

/// <summary>Starts an echo server for one test and gives it a client.</summary>
public sealed class EchoServer : IAsyncDisposable
{
    private EchoServer(TestGrpcServer server, EchoProbe probe)
    {
        Server = server;
        Probe = probe;
        Channel = server.CreateChannel();
        Client = new Echo.Echo.EchoClient(Channel);
    }

    public TestGrpcServer Server { get; }

    public EchoProbe Probe { get; }

    public GrpcChannel Channel { get; }

    public Echo.Echo.EchoClient Client { get; }

    public static async Task<EchoServer> StartAsync(
        Action<global::Grpc.AspNetCore.Server.GrpcServiceOptions>? configure = null,
        X509Certificate2? certificate = null,
        Action<KestrelServerOptions>? configureKestrel = null)
    {
        var probe = new EchoProbe();
        var server = await TestGrpcServer.StartAsync(
            services =>
            {
                services.AddSingleton(probe);
                if (configure is not null)
                {
                    services.AddGrpc(configure);
                }
            },
            app => app.MapGrpcService<EchoService>(),
            certificate,
            configureKestrel);
        return new EchoServer(server, probe);
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await Server.DisposeAsync();
    }
}
