using LabMesh.Messaging.Events;
using LabMesh.Messaging.Storage;
using LabMesh.Testing;

namespace LabMesh.ServiceDefaults.Tests.Storage;

/// <summary>One fresh database per test class on the test run's PostgreSQL cluster.</summary>
public sealed class PostgresDatabaseFixture : IAsyncLifetime
{
    public string ConnectionString { get; private set; } = "";

    public async Task InitializeAsync()
    {
        var server = await PostgresServer.SharedAsync().WaitAsync(TimeSpan.FromSeconds(120));
        ConnectionString = await server.CreateDatabaseAsync("storage_tests").WaitAsync(TimeSpan.FromSeconds(30));
    }

    public Task DisposeAsync() => Task.CompletedTask;
}

/// <summary>The store contract on a real PostgreSQL server, each test in its own schema.</summary>
public sealed class PostgresStoreTests(PostgresDatabaseFixture database) : StoreContractTests, IClassFixture<PostgresDatabaseFixture>
{
    protected override Task<StorageOptions> CreateOptionsAsync() =>
        Task.FromResult(new StorageOptions { PostgresConnectionString = database.ConnectionString });

    [Theory]
    [InlineData("", Npgsql.GssEncryptionMode.Disable)]
    [InlineData(";GSS Encryption Mode=Prefer", Npgsql.GssEncryptionMode.Prefer)]
    [InlineData(";gssencryptionmode=Prefer", Npgsql.GssEncryptionMode.Prefer)]
    public async Task Create_GssEncryption_OffUnlessTheConnectionStringNamesIt(string setting, Npgsql.GssEncryptionMode expected)
    {
        // Npgsql's default (Prefer) asks GSSAPI for Kerberos credentials at every physical open, loading the Kerberos
        // libraries into every replica; a deployment that uses Kerberos says so in its connection string.
        var store = Database.Create("gss_mode", new StorageOptions { PostgresConnectionString = database.ConnectionString + setting }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

        await using var connection = await store.OpenAsync(CancellationToken.None).WaitAsync(Timeout);

        Assert.Equal(expected, new Npgsql.NpgsqlConnectionStringBuilder(connection.ConnectionString).GssEncryptionMode);
    }

    [Fact]
    public async Task Relay_TwoReplicasOnOneSchema_PublishEachRowOnceInOrder()
    {
        var store = await OutboxStoreAsync();
        var bus = new RecordingEventBus { Latency = TimeSpan.FromMilliseconds(1) };
        var options = new OutboxRelayOptions { BatchSize = 10 };
        OutboxRelay[] replicas = [Relay(OpenStore(), bus, options), Relay(OpenStore(), bus, options)];
        const int Count = 200;

        var producing = new TaskCompletionSource();
        var ids = new List<string>();
        var producer = Task.Run(async () =>
        {
            ids.AddRange(await AddEventsAsync(store, Count));
            producing.SetResult();
        });
        var relays = replicas.Select(replica => Task.Run(async () =>
        {
            // Keep relaying until the producer is done and nothing is left.
            while (true)
            {
                var produced = producing.Task.IsCompleted;
                var published = await replica.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout);
                if (published == 0)
                {
                    if (produced && await ScalarAsync(store, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL;") == 0)
                    {
                        return;
                    }

                    await Task.Delay(1).WaitAsync(Timeout);
                }
            }
        })).ToArray();
        await Task.WhenAll([producer, .. relays]).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(0, bus.ConcurrentDuplicatePublishes);
        Assert.Equal(ids, bus.Attempts);
        Assert.Equal(ids, bus.DeliveredIds);
        Assert.Equal(Count, await ScalarAsync(store, "SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL AND attempts = 1;"));
    }

    [Fact]
    public async Task Relay_ReplicaHoldingTheTurn_OtherReplicaSkipsWithoutWaiting()
    {
        var store = await OutboxStoreAsync();
        var ids = await AddEventsAsync(store, 3);
        var bus = new RecordingEventBus();
        var first = Relay(OpenStore(), bus);
        var second = Relay(OpenStore(), bus);
        var publishing = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        first.BeforeMarkSent = async (_, _) =>
        {
            publishing.TrySetResult();
            await release.Task.WaitAsync(Timeout, CancellationToken.None);
        };

        var firstPass = first.RelayOnceAsync(CancellationToken.None);
        await publishing.Task.WaitAsync(Timeout);
        Assert.Equal(0, await second.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout));
        release.SetResult();

        Assert.Equal(3, await firstPass.WaitAsync(Timeout));
        Assert.Equal(0, await second.RelayOnceAsync(CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal(ids, bus.Attempts);
    }
}
