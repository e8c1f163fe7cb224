using Grpc.Net.Client;
using Xunit;

namespace LabMesh.Testing;

/// <summary>
/// One in-process host (<see cref="MeshHosts"/>) shared by the tests of a class or collection: a fresh store on
/// <paramref name="backend"/>, started once; when they are done its channels are closed, the host stopped, its data
/// directory deleted, and the class fails if the host logged an error. A test that needs a fresh host or store of its
/// own starts one itself.
/// </summary>
public abstract class HostFixture(Backend backend = Backend.Sqlite) : IAsyncLifetime
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private readonly List<GrpcChannel> _channels = [];
    private string _dataDirectory = null!;

    public ServiceHost Host { get; private set; } = null!;

    /// <summary>The base URL clients are given (h2c).</summary>
    public string Address => Host.Address;

    public async Task InitializeAsync()
    {
        var settings = await TestSettings.CreateAsync(backend);
        Configure(settings);
        _dataDirectory = settings["LabMesh:Storage:DataDirectory"]!;
        Host = await StartAsync(settings).WaitAsync(TimeSpan.FromSeconds(120));
    }

    /// <summary>A channel to the host, closed with the fixture.</summary>
    public GrpcChannel Channel()
    {
        var channel = Host.CreateChannel();
        lock (_channels)
        {
            _channels.Add(channel);
        }

        return channel;
    }

    public async Task DisposeAsync()
    {
        lock (_channels)
        {
            _channels.ForEach(channel => channel.Dispose());
        }

        var logs = Host.Logs;
        await Host.DisposeAsync();
        Directory.Delete(_dataDirectory, recursive: true);
        logs.AssertNoErrors();
    }

    /// <summary>Settings of this host beyond the defaults (SQLite, the in-process bus and cache, TestCaller's key trusted).</summary>
    protected virtual void Configure(Dictionary<string, string?> settings)
    {
    }

    protected abstract Task<ServiceHost> StartAsync(IReadOnlyDictionary<string, string?> settings);
}

/// <summary>The four services in one host, as the all-in-one Program.cs wires them, on a free loopback port.</summary>
public class AllInOneHost : HostFixture
{
    public AllInOneHost()
        : this(Backend.Sqlite)
    {
    }

    protected AllInOneHost(Backend backend)
        : base(backend)
    {
    }

    protected override Task<ServiceHost> StartAsync(IReadOnlyDictionary<string, string?> settings) => MeshHosts.StartAllInOneAsync(settings, FreePort.Next());
}

/// <summary>The ServiceRequest service alone, as its Program.cs hosts it (one service's process, as a gateway reaches it).</summary>
public sealed class ServiceRequestHost : HostFixture
{
    protected override Task<ServiceHost> StartAsync(IReadOnlyDictionary<string, string?> settings) => MeshHosts.StartServiceRequestsAsync(settings);
}
