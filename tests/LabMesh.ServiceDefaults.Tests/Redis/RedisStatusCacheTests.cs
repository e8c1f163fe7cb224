using System.Diagnostics;
using System.Text;
using LabMesh.Messaging.Caching;
using LabMesh.Messaging.Redis;
using LabMesh.Testing;
using Microsoft.Extensions.Logging;
using static LabMesh.ServiceDefaults.Tests.Redis.RedisTestSupport;

namespace LabMesh.ServiceDefaults.Tests.Redis;

public sealed class RedisStatusCacheTests
{
    private static byte[] Bytes(string text) => Encoding.UTF8.GetBytes(text);

    private static string? Text(byte[]? bytes) => bytes is null ? null : Encoding.UTF8.GetString(bytes);

    private static async Task<string?> GetAsync(RedisStatusCache cache, string id) =>
        Text((await cache.GetManyAsync("sr", [id], CancellationToken.None).Within())[0]);

    [Fact]
    public async Task StatusCache_NewerVersion_Overwrites()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log);
        await using var cache = new RedisStatusCache(connection, log.For<RedisStatusCache>());

        await cache.SetAsync("sr", "1", 1, Bytes("active"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "1", 2, Bytes("completed"), CancellationToken.None).Within();

        Assert.Equal("completed", await GetAsync(cache, "1"));
        Assert.Equal("2:completed", await redis.Redis("GET", "labmesh:status:sr:1"));
        log.AssertNoErrors();
    }

    [Fact]
    public async Task StatusCache_OlderVersion_DoesNotOverwriteNewer()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log);
        await using var cache = new RedisStatusCache(connection, log.For<RedisStatusCache>());

        await cache.SetAsync("sr", "1", 10, Bytes("v10"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "1", 9, Bytes("v9"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "1", 2, Bytes("v2"), CancellationToken.None).Within();

        Assert.Equal("v10", await GetAsync(cache, "1"));
        log.AssertNoErrors();
    }

    [Fact]
    public async Task StatusCache_EqualVersion_IsNoOp()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log, o => o.StatusTtl = TimeSpan.FromMinutes(10));
        await using var cache = new RedisStatusCache(connection, log.For<RedisStatusCache>());

        await cache.SetAsync("sr", "1", 5, Bytes("first"), CancellationToken.None).Within();
        await redis.Redis("PEXPIRE", "labmesh:status:sr:1", "100000");
        await cache.SetAsync("sr", "1", 5, Bytes("second"), CancellationToken.None).Within();

        Assert.Equal("first", await GetAsync(cache, "1"));
        var ttl = (long)(await redis.Redis("PTTL", "labmesh:status:sr:1"))!;
        Assert.InRange(ttl, 1, 100_000); // untouched, not reset to the 10 minutes a write would set
        log.AssertNoErrors();
    }

    [Fact]
    public async Task StatusCache_VersionsBeyondDoublePrecision_CompareExactly()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log);
        await using var cache = new RedisStatusCache(connection, log.For<RedisStatusCache>());

        // 2^53 and 2^53 + 1 are the same double; long.MaxValue has 19 digits, 999 has 3.
        await cache.SetAsync("sr", "a", 9_007_199_254_740_992, Bytes("low"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "a", 9_007_199_254_740_993, Bytes("high"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "b", long.MaxValue, Bytes("max"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "b", long.MaxValue - 1, Bytes("max-1"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "c", 999, Bytes("999"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "c", 1000, Bytes("1000"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "c", 0, Bytes("0"), CancellationToken.None).Within();

        var values = await cache.GetManyAsync("sr", ["a", "b", "c"], CancellationToken.None).Within();
        Assert.Equal(["high", "max", "1000"], values.Select(Text));
        log.AssertNoErrors();
    }

    [Fact]
    public async Task StatusCache_Write_SetsTtl_AndEntryExpires()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log, o => o.StatusTtl = TimeSpan.FromMinutes(30));
        await using var cache = new RedisStatusCache(connection, log.For<RedisStatusCache>());
        await using var shortConnection = await ConnectAsync(redis, log, o => o.StatusTtl = TimeSpan.FromMilliseconds(300));
        await using var shortCache = new RedisStatusCache(shortConnection, log.For<RedisStatusCache>());

        await cache.SetAsync("sr", "long", 1, Bytes("x"), CancellationToken.None).Within();
        await shortCache.SetAsync("sr", "short", 1, Bytes("y"), CancellationToken.None).Within();

        var ttl = (long)(await redis.Redis("PTTL", "labmesh:status:sr:long"))!;
        Assert.InRange(ttl, (long)TimeSpan.FromMinutes(29).TotalMilliseconds, (long)TimeSpan.FromMinutes(30).TotalMilliseconds);
        Assert.Equal("y", await GetAsync(shortCache, "short"));
        await Eventually(async () => await GetAsync(shortCache, "short") is null, "the short-lived entry expires", TimeSpan.FromSeconds(5));
        log.AssertNoErrors();
    }

    [Fact]
    public async Task StatusCache_GetMany_ReturnsHitsAndMissesInOrder_InOneRoundTrip()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log);
        await using var cache = new RedisStatusCache(connection, log.For<RedisStatusCache>());
        await cache.SetAsync("sr", "1", 1, Bytes("one"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "3", 1, Bytes("three"), CancellationToken.None).Within();
        await cache.SetAsync("req", "2", 1, Bytes("other kind"), CancellationToken.None).Within();
        await redis.Redis("CONFIG", "RESETSTAT");

        var values = await cache.GetManyAsync("sr", ["1", "2", "3", "4"], CancellationToken.None).Within();

        Assert.Equal(["one", null, "three", null], values.Select(Text));
        var stats = (string)(await redis.Redis("INFO", "commandstats"))!;
        Assert.Contains("cmdstat_mget:calls=1,", stats, StringComparison.Ordinal);
        Assert.DoesNotContain("cmdstat_get:", stats, StringComparison.Ordinal);
        Assert.DoesNotContain("cmdstat_eval", stats, StringComparison.Ordinal);
        Assert.Empty(await cache.GetManyAsync("sr", [], CancellationToken.None).Within());
        log.AssertNoErrors();
    }

    [Fact]
    public async Task StatusCache_RedisStopped_SetDoesNotThrow_AndGetReturnsMisses()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log);
        await using var cache = new RedisStatusCache(connection, log.For<RedisStatusCache>());
        await cache.SetAsync("sr", "1", 1, Bytes("one"), CancellationToken.None).Within();

        await redis.StopAsync().Within();
        var elapsed = Stopwatch.StartNew();
        await cache.SetAsync("sr", "1", 2, Bytes("two"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "2", 1, Bytes("new"), CancellationToken.None).Within();
        var values = await cache.GetManyAsync("sr", ["1", "2"], CancellationToken.None).Within();

        Assert.Equal([null, null], values);
        Assert.True(elapsed.Elapsed < TimeSpan.FromSeconds(5), $"took {elapsed.Elapsed}");
        Assert.Equal(2, cache.PendingWriteCount);
        Assert.True(log.Contains(LogLevel.Warning, "keeping them in memory"));
        log.AssertNoErrors();
    }

    [Fact]
    public async Task StatusCache_RedisRestartedEmpty_PendingWritesReappear()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log);
        await using var cache = new RedisStatusCache(connection, log.For<RedisStatusCache>());
        await cache.SetAsync("sr", "1", 1, Bytes("one"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "kept", 1, Bytes("lost with the restart"), CancellationToken.None).Within();

        await redis.StopAsync().Within();
        await cache.SetAsync("sr", "1", 2, Bytes("two"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "1", 3, Bytes("three"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "1", 2, Bytes("two again"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "2", 7, Bytes("seven"), CancellationToken.None).Within();
        await redis.StartAsync().Within();

        var healed = Stopwatch.StartNew();
        await Eventually(
            async () => (await cache.GetManyAsync("sr", ["1", "2"], CancellationToken.None)).Select(Text).SequenceEqual(["three", "seven"]),
            "the pending writes are in Redis again",
            TimeSpan.FromSeconds(10));

        Assert.True(healed.Elapsed < TimeSpan.FromSeconds(10));
        Assert.Equal(0, cache.PendingWriteCount);
        Assert.Equal("3:three", await redis.Redis("GET", "labmesh:status:sr:1"));
        Assert.Null(await GetAsync(cache, "kept"));
        log.AssertNoErrors();
    }

    [Fact]
    public async Task StatusCache_RedisNotAnswering_SetAndGetReturnWithinTimeout_AndWriteHealsAfterwards()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log, o => o.Configuration = redis.Configuration + ",syncTimeout=500");
        await using var cache = new RedisStatusCache(connection, log.For<RedisStatusCache>());
        await cache.SetAsync("sr", "1", 1, Bytes("one"), CancellationToken.None).Within();

        // The server stays up but answers no client for four seconds; each call gives up after syncTimeout (500 ms),
        // so both return well before it answers (bound with room for a loaded CI machine: 1.81 s was seen).
        await redis.Redis("CLIENT", "PAUSE", "4000", "ALL");
        var elapsed = Stopwatch.StartNew();
        await cache.SetAsync("sr", "1", 2, Bytes("two"), CancellationToken.None).Within();
        var values = await cache.GetManyAsync("sr", ["1"], CancellationToken.None).Within();

        Assert.Equal([null], values);
        Assert.True(elapsed.Elapsed < TimeSpan.FromMilliseconds(3000), $"took {elapsed.Elapsed}");
        await Eventually(
            async () => await GetAsync(cache, "1") == "two" && cache.PendingWriteCount == 0,
            "the write is in Redis once it answers again",
            TimeSpan.FromSeconds(10));
        log.AssertNoErrors();
    }

    [Fact]
    public async Task StatusCache_StartedWhileRedisDown_WritesLandWhenRedisStarts()
    {
        using var log = new TestLog();
        await using var redis = new RedisServer();
        await using var connection = await ConnectAsync(redis, log);
        await using var cache = new RedisStatusCache(connection, log.For<RedisStatusCache>());

        Assert.False(connection.IsConnected);
        await cache.SetAsync("sr", "1", 4, Bytes("four"), CancellationToken.None).Within();
        Assert.Null(await GetAsync(cache, "1"));

        await redis.StartAsync().Within();

        await Eventually(async () => await GetAsync(cache, "1") == "four", "the write lands once Redis runs", TimeSpan.FromSeconds(10));
        log.AssertNoErrors();
    }

    [Fact]
    public async Task StatusCache_PendingWritesOverBound_AreDroppedAndLogged()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log, o => o.MaxPendingStatusWrites = 2);
        await using var cache = new RedisStatusCache(connection, log.For<RedisStatusCache>());

        await redis.StopAsync().Within();
        await cache.SetAsync("sr", "1", 1, Bytes("a"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "2", 1, Bytes("b"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "3", 1, Bytes("c"), CancellationToken.None).Within();
        await cache.SetAsync("sr", "1", 2, Bytes("a2"), CancellationToken.None).Within();

        Assert.Equal(2, cache.PendingWriteCount);
        Assert.True(log.Contains(LogLevel.Warning, "dropping further writes"));

        await redis.StartAsync().Within();
        await Eventually(() => cache.PendingWriteCount == 0, "the pending writes are written", TimeSpan.FromSeconds(10));
        var values = await cache.GetManyAsync("sr", ["1", "2", "3"], CancellationToken.None).Within();
        Assert.Equal(["a2", "b", null], values.Select(Text));
        await Eventually(() => log.Contains(LogLevel.Warning, "1 writes were dropped"), "the drop is reported after the outage");
        log.AssertNoErrors();
    }

    [Fact]
    public async Task StatusCache_NegativeVersionOrBadKind_IsRejected()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log);
        await using var cache = new RedisStatusCache(connection, log.For<RedisStatusCache>());

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => cache.SetAsync("sr", "1", -1, Bytes("x"), CancellationToken.None)).Within();
        await Assert.ThrowsAsync<ArgumentException>(() => cache.SetAsync("s:r", "1", 1, Bytes("x"), CancellationToken.None)).Within();
        await Assert.ThrowsAsync<ArgumentException>(() => cache.GetManyAsync(string.Empty, ["1"], CancellationToken.None)).Within();
        log.AssertNoErrors();
    }

    [Fact]
    public async Task RedisConnection_StartedWhileRedisDown_ConnectsAndRaisesConnectionRestored()
    {
        using var log = new TestLog();
        await using var redis = new RedisServer();
        var started = Stopwatch.StartNew();
        await using var connection = await ConnectAsync(redis, log);
        Assert.True(started.Elapsed < TimeSpan.FromSeconds(3), $"connecting to a stopped Redis took {started.Elapsed}");
        var restored = 0;
        connection.ConnectionRestored += (_, _) => Interlocked.Increment(ref restored);

        Assert.False(connection.IsConnected);
        await Assert.ThrowsAsync<RedisUnavailableException>(() => connection.GetLastEventPositionAsync(CancellationToken.None)).Within();

        await redis.StartAsync().Within();
        await Eventually(() => connection.IsConnected && Volatile.Read(ref restored) > 0, "connected and told");

        // StackExchange.Redis may report the multiplexer connected (its subscription link is up) a moment before
        // the interactive link serves commands: a caller sees that as RedisUnavailableException and retries.
        var serving = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                Assert.Equal("0-0", await connection.GetLastEventPositionAsync(CancellationToken.None).Within());
                break;
            }
            catch (RedisUnavailableException) when (serving.Elapsed < TimeSpan.FromSeconds(10))
            {
                await Task.Delay(50);
            }
        }

        log.AssertNoErrors();
    }
}
