using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using LabMesh.Grpc.Tests.Echo;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.Grpc.Tests.Balancing;

/// <summary>Answers with the server address that took the call, so a test sees where each call went.</summary>
public sealed class WhoAmIService(BackendProbe probe) : Echo.Echo.EchoBase
{
    public override async Task<EchoResponse> Unary(EchoRequest request, ServerCallContext context)
    {
        probe.Authorities.Enqueue(context.Host);
        if (request.DelayMs > 0)
        {
            await Task.Delay(request.DelayMs, context.CancellationToken);
        }
        var connection = global::Grpc.AspNetCore.Server.ServerCallContextExtensions.GetHttpContext(context).Connection;
        return new EchoResponse { Text = connection.LocalIpAddress!.ToString() };
    }
}

/// <summary>What a backend saw.</summary>
public sealed class BackendProbe
{
    public ConcurrentQueue<string> Authorities { get; } = new();
}

/// <summary>
/// Echo servers on several loopback addresses (127.0.0.2, 127.0.0.3, ...) sharing one port, as the pods
/// behind a Kubernetes headless service do; the whole of 127/8 is loopback on Linux.
/// </summary>
public sealed class Backends : IAsyncDisposable
{
    private readonly ConcurrentDictionary<IPAddress, TestGrpcServer> _servers = new();

    private Backends(int port) => Port = port;

    public int Port { get; }

    public IReadOnlyDictionary<IPAddress, TestGrpcServer> Servers => _servers;

    public ConcurrentDictionary<IPAddress, BackendProbe> Probes { get; } = new();

    private readonly ConcurrentQueue<TestLogSink> _logs = new();

    /// <summary>Error logs of every server started so far, stopped ones included.</summary>
    public IEnumerable<TestLogSink.LogRecord> Errors => _logs.SelectMany(l => l.Errors);

    public static async Task<Backends> StartAsync(IEnumerable<IPAddress> addresses, X509Certificate2? certificate = null)
    {
        var list = addresses.ToList();
        var first = await StartServerAsync(list[0], 0, certificate, out var probe);
        var backends = new Backends(first.Port);
        backends._servers[list[0]] = first;
        backends._logs.Enqueue(first.Logs);
        backends.Probes[list[0]] = probe;
        try
        {
            foreach (var address in list.Skip(1))
            {
                await backends.StartAsync(address, certificate);
            }
        }
        catch
        {
            await backends.DisposeAsync();
            throw;
        }
        return backends;
    }

    /// <summary>Starts (or restarts) the server on one more address, same port.</summary>
    public async Task StartAsync(IPAddress address, X509Certificate2? certificate = null)
    {
        var server = await StartServerAsync(address, Port, certificate, out var probe);
        _servers[address] = server;
        _logs.Enqueue(server.Logs);
        Probes[address] = probe;
    }

    public async Task StopAsync(IPAddress address)
    {
        if (_servers.TryRemove(address, out var server))
        {
            await server.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var address in _servers.Keys.ToList())
        {
            await StopAsync(address);
        }
    }

    private static Task<TestGrpcServer> StartServerAsync(IPAddress address, int port, X509Certificate2? certificate, out BackendProbe probe)
    {
        var backendProbe = probe = new BackendProbe();
        return TestGrpcServer.StartAsync(
            services => services.AddSingleton(backendProbe),
            app => app.MapGrpcService<WhoAmIService>(),
            certificate,
            bindAddress: address,
            port: port);
    }
}

/// <summary>A resolver a test steers: it answers with whatever addresses are set now, and counts lookups.</summary>
public sealed class TestResolver
{
    private volatile IPAddress[] _addresses;
    private int _lookups;

    public TestResolver(params IPAddress[] addresses) => _addresses = addresses;

    public int Lookups => Volatile.Read(ref _lookups);

    public ConcurrentQueue<string> Hosts { get; } = new();

    public void Set(params IPAddress[] addresses) => _addresses = addresses;

    public Task<IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken)
    {
        Interlocked.Increment(ref _lookups);
        Hosts.Enqueue(host);
        return Task.FromResult(_addresses);
    }
}
