using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.Contracts.Common.V1;
using LabMesh.Messaging.Events;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.Testing;

/// <summary>
/// One service of a test mesh: its <see cref="ServiceHost"/> and the settings it runs with, so that it can be stopped
/// and started again on the same port (a replica going down and coming back) with its store, or with another one.
/// </summary>
public sealed class MeshService : IAsyncDisposable
{
    private readonly Func<IReadOnlyDictionary<string, string?>, int, Task<ServiceHost>> _start;

    private MeshService(Func<IReadOnlyDictionary<string, string?>, int, Task<ServiceHost>> start, Dictionary<string, string?> settings, ServiceHost host)
    {
        _start = start;
        Settings = settings;
        Host = host;
    }

    public ServiceHost Host { get; private set; }

    /// <summary>The settings of its current host (a fresh store's after <see cref="ReplaceAsync"/>).</summary>
    public Dictionary<string, string?> Settings { get; private set; }

    /// <param name="start">How the service is hosted, e.g. <see cref="MeshHosts.StartRequisitionsAsync"/>; port 0 is any free one.</param>
    /// <param name="settings">Its settings (<see cref="TestSettings.CreateAsync"/> and more).</param>
    public static async Task<MeshService> StartAsync(Func<IReadOnlyDictionary<string, string?>, int, Task<ServiceHost>> start, Dictionary<string, string?> settings) =>
        new(start, settings, await start(settings, 0));

    /// <summary>Stops it (what it held in memory goes with it; its port refuses connections until it is started again).</summary>
    public Task StopAsync() => Host.DisposeAsync().AsTask();

    /// <summary>Starts it again on the same port with the same settings (the same store).</summary>
    public async Task RestartAsync() => Host = await _start(Settings, Host.Port);

    /// <summary>Stops it and starts it on the same port with <paramref name="settings"/> (e.g. a fresh, empty store).</summary>
    public async Task ReplaceAsync(Dictionary<string, string?> settings)
    {
        var port = Host.Port;
        await Host.DisposeAsync();
        Settings = settings;
        Host = await _start(settings, port);
    }

    /// <summary>Events the service has published on its bus, for one requisition.</summary>
    public async Task<IReadOnlyList<Event>> EventsAsync(string requisitionId) =>
        (await Host.Services.GetRequiredService<IEventBus>().ReadAsync(null, 10_000, CancellationToken.None))
        .Select(e => e.Event).Where(e => e.RequisitionId == requisitionId).ToList();

    public ValueTask DisposeAsync() => Host.DisposeAsync();
}

/// <summary>The channels a test mesh opened to its hosts, each a caller's invoker; closed together.</summary>
public sealed class MeshChannelSet : IDisposable
{
    private readonly List<GrpcChannel> _channels = [];

    /// <summary>A new channel to <paramref name="host"/>, calling as <paramref name="subject"/> of <paramref name="team"/> (a partner when given).</summary>
    public CallInvoker Invoker(ServiceHost host, string team, string? partner = null, string subject = "test-user") =>
        TestCaller.Invoker(Channel(host), team, partner, subject);

    /// <summary>A new channel to <paramref name="host"/>, closed with the set.</summary>
    public GrpcChannel Channel(ServiceHost host)
    {
        var channel = host.CreateChannel();
        lock (_channels)
        {
            _channels.Add(channel);
        }

        return channel;
    }

    public void Dispose()
    {
        lock (_channels)
        {
            _channels.ForEach(channel => channel.Dispose());
            _channels.Clear();
        }
    }
}
