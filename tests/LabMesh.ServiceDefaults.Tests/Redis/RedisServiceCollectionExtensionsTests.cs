using LabMesh.Messaging.Caching;
using LabMesh.Messaging.Events;
using LabMesh.ServiceDefaults.Hosting;
using LabMesh.Messaging.Redis;
using LabMesh.Testing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using static LabMesh.ServiceDefaults.Tests.Redis.RedisTestSupport;

namespace LabMesh.ServiceDefaults.Tests.Redis;

public sealed class RedisServiceCollectionExtensionsTests
{
    private static IConfiguration Configuration(params (string Key, string Value)[] values) =>
        new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => KeyValuePair.Create(v.Key, (string?)v.Value))).Build();

    [Fact]
    public async Task AddLabMeshEventsAndCache_WithoutRedis_RegistersInProcessCacheAndBus()
    {
        var services = new ServiceCollection().AddLabMeshEventsAndCache(Configuration());
        await using var provider = services.BuildServiceProvider();

        Assert.IsType<InMemoryStatusCache>(provider.GetRequiredService<IStatusCache>());
        Assert.IsType<InProcessEventBus>(provider.GetRequiredService<IEventBus>());
        Assert.Null(provider.GetService<RedisConnection>());
    }

    [Fact]
    public async Task AddLabMeshEventsAndCache_WithConnectionString_RegistersRedisCacheAndBusOverOneConnection()
    {
        await using var redis = await RedisServer.StartNewAsync().Within();
        var configuration = Configuration(
            ("ConnectionStrings:Redis", redis.Configuration),
            ("LabMesh:Redis:StatusTtl", "00:02:00"),
            ("LabMesh:Redis:StreamKey", "labmesh:test-events"));
        var services = new ServiceCollection().AddLabMeshEventsAndCache(configuration);
        await using var provider = services.BuildServiceProvider();

        var cache = Assert.IsType<RedisStatusCache>(provider.GetRequiredService<IStatusCache>());
        var bus = Assert.IsType<RedisEventBus>(provider.GetRequiredService<IEventBus>());
        var connection = provider.GetRequiredService<RedisConnection>();
        Assert.Equal(TimeSpan.FromMinutes(2), connection.Options.StatusTtl);
        Assert.Equal(redis.Configuration, provider.GetRequiredService<IOptions<RedisOptions>>().Value.Configuration);

        await Eventually(() => connection.IsConnected, "connected");
        await cache.SetAsync("sr", "1", 1, new byte[] { 1 }, CancellationToken.None).Within();
        await bus.PublishAsync(NewEvent(EventTypes.OrderPlaced), CancellationToken.None).Within();
        Assert.Equal(1L, await redis.Redis("XLEN", "labmesh:test-events"));
        var ttl = (long)(await redis.Redis("PTTL", "labmesh:status:sr:1"))!;
        Assert.InRange(ttl, 1, (long)TimeSpan.FromMinutes(2).TotalMilliseconds);
    }

    [Fact]
    public async Task AddLabMeshEventsAndCache_WithSectionConfiguration_UsesRedis()
    {
        var services = new ServiceCollection().AddLabMeshEventsAndCache(Configuration(("LabMesh:Redis:Configuration", "127.0.0.1:1")));
        await using var provider = services.BuildServiceProvider();

        Assert.IsType<RedisStatusCache>(provider.GetRequiredService<IStatusCache>());
        Assert.IsType<RedisEventBus>(provider.GetRequiredService<IEventBus>());
    }

    [Fact]
    public void AddLabMeshEventsAndCache_CalledTwice_RegistersEachServiceOnce()
    {
        var configuration = Configuration(("ConnectionStrings:Redis", "127.0.0.1:1"));
        var services = new ServiceCollection();

        services.AddLabMeshEventsAndCache(configuration);
        services.AddLabMeshEventsAndCache(configuration);
        services.AddLabMeshEventsAndCache(Configuration());

        Assert.Single(services, d => d.ServiceType == typeof(IStatusCache));
        Assert.Single(services, d => d.ServiceType == typeof(IEventBus));
        Assert.Single(services, d => d.ServiceType == typeof(RedisConnection));
        Assert.Single(services, d => d.ServiceType == typeof(IOptions<RedisOptions>));
    }
}
