using LabMesh.Messaging.Redis;
using LabMesh.Testing;
using Microsoft.Extensions.Logging;
using static LabMesh.ServiceDefaults.Tests.Redis.RedisTestSupport;

namespace LabMesh.ServiceDefaults.Tests.Redis;

public sealed class RedisConnectionTests
{
    [Fact]
    public async Task Connection_CallsWhileRedisStarts_FailOnlyAsUnavailable_ThenSucceed()
    {
        using var log = new TestLog();
        await using var redis = new RedisServer();
        await using var connection = await ConnectAsync(redis, log, o => o.Configuration = redis.Configuration + ",connectTimeout=200,syncTimeout=500");

        // Callers keep writing from before the server starts until well after it is connected: the client
        // library meets every stage of its connection (none, handshaking, up), and each failure on the way
        // must reach the caller as RedisUnavailableException, the one failure services map to UNAVAILABLE.
        using var stop = new CancellationTokenSource();
        var unexpected = new List<Exception>();
        var succeeded = 0;
        var callers = Enumerable.Range(0, 4).Select(worker => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                try
                {
                    await connection.SetVersionedAsync($"labmesh:test:{worker}", i + 1, new byte[] { 1 }, TimeSpan.FromMinutes(1), CancellationToken.None);
                    Interlocked.Increment(ref succeeded);
                }
                catch (RedisUnavailableException)
                {
                    // Failures are immediate while nothing listens; pause so four callers do not starve the machine.
                    await Task.Delay(1);
                }
                catch (Exception ex)
                {
                    lock (unexpected)
                    {
                        unexpected.Add(ex);
                    }
                }
            }
        })).ToArray();

        using var subscription = await connection.SubscribeAsync("labmesh:test", _ => { }, CancellationToken.None).Within();
        for (var round = 0; round < 3; round++)
        {
            await Task.Delay(300);
            await redis.StartAsync().Within();
            var before = Volatile.Read(ref succeeded);
            await Eventually(() => connection.IsConnected && Volatile.Read(ref succeeded) > before + 100, "writes succeed once Redis runs");
            if (round < 2)
            {
                await redis.StopAsync().Within();
            }
        }

        await stop.CancelAsync();
        await Task.WhenAll(callers).Within();

        // Made before Redis ever ran, the subscription took effect when it connected and again after each restart.
        await Eventually(
            async () => (long)((object?[])(await redis.ExecuteAsync("PUBSUB", "NUMSUB", "labmesh:test"))!)[1]! == 1,
            "the subscription made while Redis was down is live");
        Assert.Empty(unexpected);
        Assert.Equal(4, (await redis.Redis("KEYS", "labmesh:test:*") as object[])?.Length);
    }

    [Fact]
    public async Task Connection_RedisRestartedWhileLoadingItsData_LogsOnlyTheOutage()
    {
        // A restart (here a crash: SIGKILL and start) of a Redis that keeps data, as deploy/local and production run it
        // (AOF, an ACL user with a password): for a while after it listens it answers LOADING while it reads its append-only file back.
        // 20,000 keys in the file's base, each loaded with Redis's own key-load-delay (50 us, the knob its test suite
        // uses for this), keep it loading a second or two, as a dataset of millions of keys would without the delay.
        // Only the outage itself may be logged at Warning or above (issue 23 item 5).
        using var log = new TestLog();
        await using var redis = new RedisServer(
            appendOnly: true,
            arguments: ["--key-load-delay", "50", "--user", "labmesh", "on", ">s3cret", "~labmesh:*", "&*", "+@all", "-@dangerous"]);
        await redis.StartAsync().Within();
        await redis.Redis("EVAL", "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'labmesh:test:fill:' .. i, string.rep('x', 100)) end return 1", "0", "20000");
        await redis.Redis("BGREWRITEAOF");
        await Eventually(
            async () => (string)(await redis.ExecuteAsync("INFO", "persistence"))! is var info
                && info.Contains("aof_rewrite_in_progress:0", StringComparison.Ordinal)
                && info.Contains("aof_last_bgrewrite_status:ok", StringComparison.Ordinal),
            "the append-only file is rewritten");

        await using var connection = await ConnectAsync(redis, log, o => o.Configuration = redis.Configuration + ",user=labmesh,password=s3cret");
        using var subscription = await connection.OnCriticalEventAsync(() => { }, CancellationToken.None).Within();

        // Callers keep using the connection through the restart, as a service's relay and reads do.
        using var stop = new CancellationTokenSource();
        var unexpected = new List<Exception>();
        var callers = Enumerable.Range(0, 2).Select(worker => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                try
                {
                    await connection.SetVersionedAsync($"labmesh:test:{worker}", i + 1, new byte[] { 1 }, TimeSpan.FromMinutes(1), CancellationToken.None);
                }
                catch (RedisUnavailableException)
                {
                    await Task.Delay(5);
                }
                catch (Exception ex)
                {
                    lock (unexpected)
                    {
                        unexpected.Add(ex);
                    }
                }
            }
        })).ToArray();

        await redis.StopAsync().Within();
        var loadingSeen = false;
        var starting = redis.StartAsync();
        while (!starting.IsCompleted)
        {
            try
            {
                await redis.ExecuteAsync("PING");
            }
            catch (RedisReplyException ex) when (ex.Message.StartsWith("LOADING", StringComparison.Ordinal))
            {
                loadingSeen = true;
            }
            catch (Exception ex) when (ex is System.Net.Sockets.SocketException or IOException)
            {
                // Not listening yet.
            }

            await Task.Delay(20);
        }

        await starting.Within();
        Assert.True(loadingSeen, "Redis answered LOADING for a while after the restart (else this test shows nothing)");
        await Eventually(() => connection.IsConnected, "the connection is back");
        await Eventually(
            async () => (long)((object?[])(await redis.ExecuteAsync("PUBSUB", "NUMSUB", "labmesh:critical"))!)[1]! == 1,
            "the subscription is live again");
        await stop.CancelAsync();
        await Task.WhenAll(callers).Within();

        Assert.Empty(unexpected);
        var loud = log.Records.Where(r => r.Level >= LogLevel.Warning).ToList();
        Assert.True(
            loud.Count == 1 && loud[0].Message.Contains("is unreachable", StringComparison.Ordinal),
            "Expected only the outage's warning, got:\n" + string.Join("\n", loud.Select(r => $"{r.Level} {r.Message} {r.Exception?.GetType().Name}: {r.Exception?.Message}")));
    }

    [Fact]
    public async Task HasDroppedAfter_TellsWhetherTheStreamsTrimTookAnEntryAfterAPosition()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log, o => o.StreamMaxLength = 10);
        var positions = new List<string>();
        for (var i = 0; i < 250; i++)
        {
            positions.Add((await AppendAsync(connection, $"evt-{i}", 1))!);
        }

        // XADD MAXLEN ~ 10 trims whole nodes of 100 entries: the oldest are gone, the newest kept.
        var oldest = (await connection.ReadEventsAsync(null, 1, CancellationToken.None).Within()).Single().Position;
        var firstKept = positions.IndexOf(oldest);

        Assert.True(firstKept >= 100, $"the stream kept from entry {firstKept}");
        Assert.True(await connection.HasDroppedAfterAsync(positions[0], CancellationToken.None).Within());
        Assert.True(await connection.HasDroppedAfterAsync(positions[firstKept - 2], CancellationToken.None).Within());
        Assert.False(await connection.HasDroppedAfterAsync(positions[firstKept], CancellationToken.None).Within());
        Assert.False(await connection.HasDroppedAfterAsync(positions[^1], CancellationToken.None).Within());
        log.AssertNoErrors();
    }

    [Fact]
    public async Task ConsumerGroup_CreatedAfterEventsWereAppended_ReadsThemFromTheStreamsStart()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log);
        // Appended before the group exists: say, relays flushing their backlog before Notification's first read.
        string?[] appended =
        [
            await AppendAsync(connection, "evt-1", 1, critical: true),
            await AppendAsync(connection, "evt-2", 2),
        ];

        var read = await connection.ReadGroupEventsAsync("notification", "notification-1", 10, TimeSpan.FromSeconds(30), false, CancellationToken.None).Within();
        await connection.AcknowledgeEventsAsync("notification", [.. read.Select(e => e.Position)], CancellationToken.None).Within();
        var later = await AppendAsync(connection, "evt-3", 3);
        var next = await connection.ReadGroupEventsAsync("notification", "notification-1", 10, TimeSpan.FromSeconds(30), false, CancellationToken.None).Within();

        Assert.Equal(appended, read.Select(e => e.Position));
        Assert.Equal([1, 2], read.Select(e => e.Data.Single()));
        Assert.Equal([later], next.Select(e => e.Position));
        log.AssertNoErrors();
    }

    [Fact]
    public async Task ConsumerGroup_OwnPendingFirst_RetriesAFailedBatchBeforeAnythingNewer()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var connection = await ConnectAsync(redis, log);
        var first = await AppendAsync(connection, "evt-1", 1);
        Task<IReadOnlyList<StoredEvent>> Read(bool ownPendingFirst) =>
            connection.ReadGroupEventsAsync("notification", "notification-1", 10, TimeSpan.FromSeconds(30), ownPendingFirst, CancellationToken.None).Within();

        // Taken and not acknowledged (its processing failed); then a newer entry arrives.
        Assert.Equal([first], (await Read(false)).Select(e => e.Position));
        var second = await AppendAsync(connection, "evt-2", 2);

        var retried = await Read(true);
        await connection.AcknowledgeEventsAsync("notification", [.. retried.Select(e => e.Position)], CancellationToken.None).Within();
        var then = await Read(true);

        Assert.Equal([first], retried.Select(e => e.Position));
        Assert.Equal([second], then.Select(e => e.Position));
        log.AssertNoErrors();
    }

    [Fact]
    public async Task Connection_AsTheAclUserOfTheDocs_ServesEveryOperation()
    {
        // The ACL user the ServiceDefaults README gives operators: LabMesh's keys, every channel, no dangerous commands.
        using var log = new TestLog();
        await using var redis = new RedisServer(arguments: ["--user", "labmesh", "on", ">s3cret", "~labmesh:*", "&*", "+@all", "-@dangerous"]);
        await redis.StartAsync().Within();
        await using var connection = await ConnectAsync(redis, log, o => o.Configuration = redis.Configuration + ",user=labmesh,password=s3cret");
        var critical = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var subscription = await connection.OnCriticalEventAsync(() => critical.TrySetResult(), CancellationToken.None).Within();
        await Eventually(
            async () => (long)((object?[])(await redis.ExecuteAsync("PUBSUB", "NUMSUB", "labmesh:critical"))!)[1]! == 1,
            "the subscription is live (its link may connect after the commands' link)");

        Assert.True(await connection.SetVersionedAsync("labmesh:status:sr:1", 1, new byte[] { 7 }, TimeSpan.FromMinutes(1), CancellationToken.None).Within());
        Assert.Equal(1, (await connection.GetVersionedManyAsync(["labmesh:status:sr:1"], CancellationToken.None).Within()).Single()!.Value.Version);
        var position = await AppendAsync(connection, "evt-1", 1, critical: true);
        await critical.Task.Within();
        Assert.Equal(position, (await connection.ReadEventsAsync(null, 10, CancellationToken.None).Within()).Single().Position);
        Assert.Equal(position, await connection.GetLastEventPositionAsync(CancellationToken.None).Within());
        Assert.Equal(position, await connection.FindEventPositionAsync("evt-1", DateTimeOffset.UnixEpoch, 10, CancellationToken.None).Within());
        Assert.False(await connection.HasDroppedAfterAsync(position!, CancellationToken.None).Within());
        var read = await connection.ReadGroupEventsAsync("notification", "n-1", 10, TimeSpan.FromSeconds(30), true, CancellationToken.None).Within();
        await connection.AcknowledgeEventsAsync("notification", [.. read.Select(e => e.Position)], CancellationToken.None).Within();
        Assert.True((await connection.TakeTokenAsync("labmesh:limit:team\nann", 1, 1, CancellationToken.None).Within()).Granted);
        Assert.False((await connection.TakeTokenAsync("labmesh:limit:team\nann", 1, 1, CancellationToken.None).Within()).Granted);

        // The rules do bite: a key outside labmesh:* is refused.
        await Assert.ThrowsAsync<RedisUnavailableException>(() => connection.SetVersionedAsync("other", 1, new byte[] { 1 }, TimeSpan.FromMinutes(1), CancellationToken.None)).Within();
        log.AssertNoErrors();
    }

    [Fact]
    public async Task ReadEvents_PositionRule_AcceptsWhatRedisReadsAsAStreamId_AndNothingElse()
    {
        using var log = new TestLog();
        await using var redis = new RedisServer();
        await redis.StartAsync().Within();
        await using var connection = await ConnectAsync(redis, log);
        await AppendAsync(connection, "evt-1", 1, critical: false);

        // Nineteen digits a part: every such id is one Redis reads, and one an exclusive read can start after.
        Assert.Single(await connection.ReadEventsAsync("0", 10, CancellationToken.None).Within());
        Assert.Single(await connection.ReadEventsAsync("0-0", 10, CancellationToken.None).Within());
        Assert.Single(await connection.ReadEventsAsync("0000000000000000001-1", 10, CancellationToken.None).Within());
        foreach (var valid in new[] { "9999999999999999999", "9999999999999999999-9999999999999999999" })
        {
            Assert.True(BusPosition.IsValid(valid), valid);
            Assert.Empty(await connection.ReadEventsAsync(valid, 10, CancellationToken.None).Within());
        }

        // Twenty digits may be the largest id (18446744073709551615-18446744073709551615), after which Redis cannot read.
        foreach (var invalid in new[] { "", "-", "1-", "-1", "18446744073709551615", "1-18446744073709551615", "1-2-3", "+1", " 1", "1a" })
        {
            Assert.False(BusPosition.IsValid(invalid), invalid);
            await Assert.ThrowsAsync<ArgumentException>(() => connection.ReadEventsAsync(invalid, 10, CancellationToken.None)).Within();
        }

        // The in-process bus's sequence numbers: plain, and one below long.MaxValue so the next one is a number too.
        Assert.True(BusPosition.TryParseSequence("9223372036854775806", out var last));
        Assert.Equal(long.MaxValue - 1, last);
        Assert.False(BusPosition.TryParseSequence("9223372036854775807", out _));
        Assert.False(BusPosition.TryParseSequence("1-0", out _));
        Assert.True(BusPosition.Compare("9999999999999999999-0", "9999999999999999998-9999999999999999999") > 0);
        Assert.Throws<ArgumentException>(() => BusPosition.Compare("18446744073709551615-0", "1-0"));
        log.AssertNoErrors();
    }

    [Fact]
    public async Task TakeToken_OneBucketForEveryConnection_RefillsAtTheRate()
    {
        using var log = new TestLog();
        await using var redis = await RedisServer.StartNewAsync().Within();
        await using var first = await ConnectAsync(redis, log);
        await using var second = await ConnectAsync(redis, log);

        var granted = 0;
        for (var i = 0; i < 10; i++)
        {
            if ((await (i % 2 == 0 ? first : second).TakeTokenAsync("labmesh:limit:t", 0.5, 4, CancellationToken.None).Within()).Granted)
            {
                granted++;
            }
        }

        var (again, retryAfter) = await first.TakeTokenAsync("labmesh:limit:t", 0.5, 4, CancellationToken.None).Within();
        Assert.Equal(4, granted);
        Assert.False(again);
        Assert.InRange(retryAfter, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2));
        var ttl = (long)(await redis.Redis("PTTL", "labmesh:limit:t"))!;
        Assert.InRange(ttl, 1, 9_000);
        log.AssertNoErrors();
    }

    private static Task<string?> AppendAsync(RedisConnection connection, string eventId, byte data, bool critical = false) =>
        connection.AppendEventAsync(eventId, critical ? "labtest.result.critical" : "order.placed", new[] { data }, critical, CancellationToken.None).Within();
}
