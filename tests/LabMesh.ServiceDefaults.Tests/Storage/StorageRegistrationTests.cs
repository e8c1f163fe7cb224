using LabMesh.Messaging.Events;
using LabMesh.Messaging.Storage;
using LabMesh.Testing;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LabMesh.ServiceDefaults.Tests.Storage;

/// <summary><c>AddLabMeshStore</c> and <c>AddLabMeshStorageOptions</c> in a real generic host.</summary>
public sealed class StorageRegistrationTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly string _directory = Path.Combine(Path.GetTempPath(), "labmesh-host-" + Guid.NewGuid().ToString("N")[..12]);
    private readonly RecordingEventBus _bus = new();
    private readonly LogCapture _logs = new();

    public void Dispose()
    {
        _logs.Dispose();
        SqliteConnection.ClearAllPools();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private IHost BuildHost(Dictionary<string, string?> settings, Action<IServiceCollection> register)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Logging.SetMinimumLevel(LogLevel.Debug).AddProvider(_logs);
        builder.Services.AddSingleton<IEventBus>(_bus);
        builder.Services.AddLabMeshStorageOptions(builder.Configuration);
        builder.Services.Configure<OutboxRelayOptions>(o => o.PollInterval = TimeSpan.FromMinutes(10));
        register(builder.Services);
        return builder.Build();
    }

    private static Migration[] Steps(string table) =>
    [
        Outbox.Migration(1),
        new(2, table, $"CREATE TABLE {table} (id TEXT PRIMARY KEY);"),
    ];

    private async Task<string> AddEventAsync(IHost host, string service, string table)
    {
        var store = host.Services.GetRequiredKeyedService<Database>(service);
        var evt = new Contracts.Common.V1.Event { Type = EventTypes.OrderPlaced, Source = service };
        await store.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = $"INSERT INTO {table} (id) VALUES ('{Guid.NewGuid()}');";
            await command.ExecuteNonQueryAsync();
            await Outbox.AddAsync(transaction, evt, CancellationToken.None);
            return 0;
        }, CancellationToken.None).WaitAsync(Timeout);
        host.Services.GetRequiredKeyedService<OutboxRelay>(service).Nudge();
        return evt.Id;
    }

    [Fact]
    public async Task AddLabMeshStore_HostStart_MigratesThenRelays()
    {
        using var host = BuildHost(new() { ["LabMesh:Storage:DataDirectory"] = _directory }, s => s.AddLabMeshStore("orders", Steps("orders")));

        await host.StartAsync().WaitAsync(Timeout);
        var id = await AddEventAsync(host, "orders", "orders");
        await Eventually.HoldsAsync(() => _bus.Delivered.Count == 1, Timeout, "the relay publishes the event");
        await host.StopAsync().WaitAsync(Timeout);
        _logs.AssertNoErrors();

        Assert.Equal([id], _bus.DeliveredIds);
        Assert.True(File.Exists(Path.Combine(_directory, "orders.db")));
        Assert.Equal(StorageProvider.Sqlite, host.Services.GetRequiredKeyedService<Database>("orders").Provider);
    }

    [Fact]
    public async Task AddLabMeshStore_TwoServicesInOneProcess_EachHasItsOwnStoreAndRelay()
    {
        using var host = BuildHost(new() { ["LabMesh:Storage:DataDirectory"] = _directory }, s => s
            .AddLabMeshStore("orders", Steps("orders"))
            .AddLabMeshStore("results", Steps("results")));

        await host.StartAsync().WaitAsync(Timeout);
        var order = await AddEventAsync(host, "orders", "orders");
        var result = await AddEventAsync(host, "results", "results");
        await Eventually.HoldsAsync(() => _bus.Delivered.Count == 2, Timeout, "both relays publish");
        await host.StopAsync().WaitAsync(Timeout);
        _logs.AssertNoErrors();

        Assert.Equal(new[] { order, result }.Order(), _bus.DeliveredIds.Order());
        Assert.NotSame(host.Services.GetRequiredKeyedService<Database>("orders"), host.Services.GetRequiredKeyedService<Database>("results"));
        Assert.NotSame(host.Services.GetRequiredKeyedService<OutboxRelay>("orders"), host.Services.GetRequiredKeyedService<OutboxRelay>("results"));
        Assert.Equal(2, host.Services.GetServices<IHostedService>().OfType<OutboxRelay>().Count());
        Assert.True(File.Exists(Path.Combine(_directory, "orders.db")));
        Assert.True(File.Exists(Path.Combine(_directory, "results.db")));
    }

    [Fact]
    public async Task AddLabMeshStore_MigrationFails_HostStartThrows()
    {
        var broken = new Migration(2, "broken", "CREATE TABLE oops (;");
        using var host = BuildHost(new() { ["LabMesh:Storage:DataDirectory"] = _directory }, s => s.AddLabMeshStore("orders", [Outbox.Migration(1), broken]));

        await Assert.ThrowsAsync<SqliteException>(() => host.StartAsync().WaitAsync(Timeout));

        Assert.Contains(_logs.Records, r => r.Level == LogLevel.Critical && r.Message.Contains("migrating failed", StringComparison.Ordinal));
        Assert.DoesNotContain(_logs.Records, r => r.Message.Contains("relay for orders started", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AddLabMeshStore_Postgres_FromConnectionStrings_MigratesThenRelays()
    {
        var server = await PostgresServer.SharedAsync().WaitAsync(TimeSpan.FromSeconds(120));
        var connectionString = await server.CreateDatabaseAsync("registration").WaitAsync(Timeout);
        using var host = BuildHost(new() { ["ConnectionStrings:Postgres"] = connectionString }, s => s
            .AddLabMeshStore("orders", Steps("orders"))
            .AddLabMeshStore("results", Steps("results")));

        await host.StartAsync().WaitAsync(Timeout);
        var order = await AddEventAsync(host, "orders", "orders");
        var result = await AddEventAsync(host, "results", "results");
        await Eventually.HoldsAsync(() => _bus.Delivered.Count == 2, Timeout, "both relays publish");
        await host.StopAsync().WaitAsync(Timeout);
        _logs.AssertNoErrors();

        Assert.Equal(new[] { order, result }.Order(), _bus.DeliveredIds.Order());
        Assert.Equal(StorageProvider.Postgres, host.Services.GetRequiredKeyedService<Database>("orders").Provider);
        Assert.False(Directory.Exists(_directory));
    }

    [Fact]
    public void AddLabMeshStorageOptions_ConnectionStringsPostgres_WinsAndSecondCallChangesNothing()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["LabMesh:Storage:DataDirectory"] = "/var/lib/labmesh",
            ["LabMesh:Storage:PostgresConnectionString"] = "Host=section",
            ["ConnectionStrings:Postgres"] = "Host=connection-strings",
            ["LabMesh:Outbox:PollInterval"] = "00:00:01",
        }).Build();
        var services = new ServiceCollection();

        services.AddLabMeshStorageOptions(configuration).AddLabMeshStorageOptions(configuration);
        var count = services.Count;
        services.AddLabMeshStorageOptions(configuration);
        using var provider = services.BuildServiceProvider();

        Assert.Equal(count, services.Count);
        var options = provider.GetRequiredService<IOptions<StorageOptions>>().Value;
        Assert.Equal("/var/lib/labmesh", options.DataDirectory);
        Assert.Equal("Host=connection-strings", options.PostgresConnectionString);
        Assert.Equal(TimeSpan.FromSeconds(1), provider.GetRequiredService<IOptions<OutboxRelayOptions>>().Value.PollInterval);
    }

    [Fact]
    public void AddLabMeshStorageOptions_WithoutConnectionStrings_KeepsSectionValueOrSqlite()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["LabMesh:Storage:PostgresConnectionString"] = "Host=section",
        }).Build();
        using var provider = new ServiceCollection().AddLabMeshStorageOptions(configuration).BuildServiceProvider();
        using var empty = new ServiceCollection().AddLabMeshStorageOptions(new ConfigurationBuilder().Build()).BuildServiceProvider();

        Assert.Equal("Host=section", provider.GetRequiredService<IOptions<StorageOptions>>().Value.PostgresConnectionString);
        var defaults = empty.GetRequiredService<IOptions<StorageOptions>>().Value;
        Assert.Null(defaults.PostgresConnectionString);
        Assert.Equal("data", defaults.DataDirectory);
    }

    [Fact]
    public void AddLabMeshStore_SameServiceTwice_Throws()
    {
        var services = new ServiceCollection().AddLabMeshStore("orders", Steps("orders"));

        Assert.Throws<InvalidOperationException>(() => services.AddLabMeshStore("orders", Steps("orders")));
    }
}
