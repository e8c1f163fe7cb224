using System.Net;
using System.Net.Sockets;
using Grpc.HealthCheck;
using LabMesh.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace LabMesh.ServiceDefaults.Tests.Peers;

/// <summary>
/// A replica that can be killed as SIGKILL kills a process, seen from the network: a bare grpc-dotnet server
/// behind a TCP front on the replica's port. <see cref="Kill"/> closes the front's listener (new connections are
/// refused) and resets every open connection (RST, no GOAWAY, no FIN), which is what the kernel does to the
/// sockets of a killed process; <see cref="Restart"/> listens on the same port again. A graceful stop of the
/// server instead would send GOAWAY first, which the client handles differently.
/// </summary>
internal sealed class KillableReplica : IAsyncDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly WebApplication _app;
    private readonly int _serverPort;
    private readonly Lock _gate = new();
    private readonly List<Socket> _open = [];
    private Socket? _listener;
    private CancellationTokenSource _running = new();

    private KillableReplica(WebApplication app, int serverPort, int port)
    {
        _app = app;
        _serverPort = serverPort;
        Port = port;
    }

    /// <summary>The replica's port (the front's).</summary>
    public int Port { get; }

    /// <summary>Connections the front has accepted since it started.</summary>
    public int Accepted { get; private set; }

    public static async Task<KillableReplica> StartAsync(string name)
    {
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
        var health = new HealthServiceImpl();
        // Its name as the status of service "who": "a" SERVING, anything else NOT_SERVING.
        health.SetStatus("who", name == "a" ? ServingStatus.Serving : ServingStatus.NotServing);
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(health);
        var app = builder.Build();
        app.MapGrpcService<HealthServiceImpl>();
        await app.StartAsync().WaitAsync(Timeout);
        var replica = new KillableReplica(app, new Uri(app.Urls.Single()).Port, FreePort.Next());
        replica.Restart();
        return replica;
    }

    /// <summary>Listens on <see cref="Port"/> again and forwards what it accepts to the server.</summary>
    public void Restart()
    {
        lock (_gate)
        {
            if (_listener is not null)
            {
                throw new InvalidOperationException("The replica is running.");
            }

            var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(new IPEndPoint(IPAddress.Loopback, Port));
            listener.Listen(512);
            _listener = listener;
            _running = new CancellationTokenSource();
            _ = AcceptAsync(listener, _running.Token);
        }
    }

    /// <summary>As SIGKILL: the port refuses connections and every open connection is reset.</summary>
    public void Kill()
    {
        lock (_gate)
        {
            _running.Cancel();
            _listener?.Dispose();
            _listener = null;
            foreach (var socket in _open)
            {
                try
                {
                    // Linger 0: close sends RST at once.
                    socket.LingerState = new LingerOption(true, 0);
                }
                catch (ObjectDisposedException)
                {
                }

                socket.Dispose();
            }

            _open.Clear();
        }
    }

    public async ValueTask DisposeAsync()
    {
        Kill();
        await _app.StopAsync().WaitAsync(Timeout);
        await _app.DisposeAsync();
    }

    private async Task AcceptAsync(Socket listener, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener.AcceptAsync(stopping);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            client.NoDelay = true;
            lock (_gate)
            {
                if (stopping.IsCancellationRequested)
                {
                    client.LingerState = new LingerOption(true, 0);
                    client.Dispose();
                    server.Dispose();
                    return;
                }

                Accepted++;
                _open.Add(client);
                _open.Add(server);
            }

            _ = ForwardAsync(client, server, stopping);
        }
    }

    private async Task ForwardAsync(Socket client, Socket server, CancellationToken stopping)
    {
        try
        {
            await server.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _serverPort), stopping);
            await Task.WhenAny(PumpAsync(client, server, stopping), PumpAsync(server, client, stopping));
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
        finally
        {
            lock (_gate)
            {
                _open.Remove(client);
                _open.Remove(server);
            }

            client.Dispose();
            server.Dispose();
        }
    }

    private static async Task PumpAsync(Socket from, Socket to, CancellationToken stopping)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None, stopping);
                if (read == 0)
                {
                    return;
                }

                await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, stopping);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }
}
