using System.Collections.Concurrent;
using System.Diagnostics;
using Grpc.Core;
using Grpc.Health.V1;
using LabMesh.ServiceDefaults.Peers;
using LabMesh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace LabMesh.ServiceDefaults.Tests.Peers;

/// <summary>
/// A MeshChannels channel balanced over two replicas while each is killed (connections reset, port refused)
/// and restarted in turn, calls running all along: once both are back, every call succeeds and both serve.
/// </summary>
public sealed class ReplicaKillTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    // A restarted replica is reconnected about 50 ms after it is back (MeshChannels.ReconnectBackoff): 10 s is slack for a loaded machine.
    private static readonly TimeSpan RecoveryBound = TimeSpan.FromSeconds(10);

    [Theory]
    // Down long enough for reconnects to fail and back off; a fast restart; both down at once.
    [InlineData(1500, 8, 0, false)]
    [InlineData(100, 8, 0, false)]
    [InlineData(1500, 8, 0, true)]
    // Both down past the 5 s connect timeout MeshChannels had until session 12 (its connect loop now goes on: ConnectLoopTests).
    [InlineData(6000, 2, 50, true)]
    // Calls now and then, as a service makes its peer calls, so a connection sits idle when its replica dies.
    [InlineData(300, 1, 100, false)]
    // Streams held open (Watch) beyond one HTTP/2 connection's 100, so each replica has several connections.
    [InlineData(0, 8, 0, false, 250, 3)]
    // Many quick rounds on a saturated machine (the chaos run's load average was 30-39 on 2 cores): threads spin meanwhile.
    [InlineData(30, 16, 0, false, 150, 10, 6)]
    // The client as services get it (AddPeerClient: a singleton client on its own MeshChannels channel).
    [InlineData(1500, 8, 0, false, 150, 2, 0, true)]
    public async Task EachReplicaKilledAndRestarted_EveryCallOnceBothAreBack_Succeeds(
        int downMilliseconds, int callers, int pauseMilliseconds, bool bothDownAtOnce, int openStreams = 0, int rounds = 1, int spinningThreads = 0, bool viaPeerClients = false)
    {
        await using var a = await KillableReplica.StartAsync("a");
        await using var b = await KillableReplica.StartAsync("b");
        var capture = new LogCapture();
        var target = $"ipv4:127.0.0.1:{a.Port},127.0.0.1:{b.Port}";
        var services = new ServiceCollection().AddLogging(l => l.AddProvider(capture).SetMinimumLevel(LogLevel.Debug));
        services.Configure<PeerOptions>(o => o.ServiceRequest = target);
        services.AddPeerClient<Health.HealthClient>(p => p.ServiceRequest, Health.Descriptor.FullName);
        await using var provider = services.BuildServiceProvider();
        using var channel = MeshChannels.Create(
            target, MeshChannels.RetryIdempotent(Health.Descriptor.FullName), loggerFactory: provider.GetRequiredService<ILoggerFactory>());
        var client = viaPeerClients ? provider.GetRequiredService<Health.HealthClient>() : new Health.HealthClient(channel);
        using var load = new Load(client, callers, pauseMilliseconds);
        load.Start(openStreams);

        await load.WaitForSuccessesAsync(20, "calls before any kill");
        using var spin = new CancellationTokenSource();
        var spinners = Enumerable.Range(0, spinningThreads).Select(_ => new Thread(() =>
        {
            while (!spin.IsCancellationRequested)
            {
                Thread.SpinWait(1000);
            }
        })).ToList();
        spinners.ForEach(t => t.Start());
        for (var round = 0; round < rounds; round++)
        {
            if (bothDownAtOnce)
            {
                a.Kill();
                b.Kill();
                await Task.Delay(downMilliseconds);
                a.Restart();
                b.Restart();
                await load.WaitForSuccessesAsync(10, "calls after a restart", RecoveryBound);
            }
            else
            {
                foreach (var replica in new[] { a, b })
                {
                    replica.Kill();
                    await Task.Delay(downMilliseconds);
                    replica.Restart();
                    await load.WaitForSuccessesAsync(10, "calls after a restart", RecoveryBound);
                }
            }
        }

        await spin.CancelAsync();
        spinners.ForEach(t => t.Join());
        load.MarkBack();
        // Both serve again within a bound (a reconnect is about 50 ms away), and every call meanwhile succeeds.
        var bothServed = await load.WaitForBothToServeAsync(RecoveryBound);
        var kept = true;
        try
        {
            await load.WaitForSuccessesAsync(60, "calls once both replicas serve");
        }
        catch (TimeoutException)
        {
            kept = false;
        }

        var byReplica = await load.StopAsync();

        var failed = load.FailedAfterBack;
        Assert.True(
            failed.IsEmpty,
            $"{failed.Count} calls started once both replicas were back failed: {string.Join("; ", failed.Take(5))}\n{Describe(capture)}");
        Assert.True(kept, $"fewer than 60 calls succeeded in {Timeout} once both were back\n{Describe(capture)}");
        Assert.True(bothServed, $"served once back: a {byReplica["a"]}, b {byReplica["b"]}\n{Describe(capture)}");
    }

    private static string Describe(LogCapture capture) =>
        string.Join("\n", capture.Records
            .Where(r => r.Category.Contains("Subchannel", StringComparison.Ordinal) || r.Message.Contains("state", StringComparison.OrdinalIgnoreCase))
            .TakeLast(80)
            .Select(r => $"{r.Category.Split('.').Last()}: {r.Message}"));

    /// <summary>Callers each calling in a loop with a 2 s deadline until stopped.</summary>
    private sealed class Load(Health.HealthClient client, int callers, int pauseMilliseconds) : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly ConcurrentDictionary<string, int> _servedAfterBack = new() { ["a"] = 0, ["b"] = 0 };
        private Task[] _callers = [];
        private long _backTicks = long.MaxValue;
        private int _succeeded;

        public ConcurrentQueue<string> FailedAfterBack { get; } = new();

        public void Start(int openStreams) => _callers =
        [
            .. Enumerable.Range(0, callers).Select(_ => Task.Run(CallAsync)),
            .. Enumerable.Range(0, openStreams).Select(_ => Task.Run(WatchAsync)),
        ];

        public void MarkBack() => Interlocked.Exchange(ref _backTicks, Stopwatch.GetTimestamp());

        public Task WaitForSuccessesAsync(int count, string what, TimeSpan? bound = null)
        {
            var before = Volatile.Read(ref _succeeded);
            return Eventually.HoldsAsync(() => Volatile.Read(ref _succeeded) >= before + count || FailedAfterBack.Count > 20, bound ?? Timeout, what);
        }

        /// <summary>Whether each replica served 10 calls started after <see cref="MarkBack"/> within <paramref name="bound"/>.</summary>
        public async Task<bool> WaitForBothToServeAsync(TimeSpan bound)
        {
            try
            {
                await Eventually.HoldsAsync(() => _servedAfterBack["a"] >= 10 && _servedAfterBack["b"] >= 10 || FailedAfterBack.Count > 20, bound, "both replicas serving");
                return _servedAfterBack["a"] >= 10 && _servedAfterBack["b"] >= 10;
            }
            catch (TimeoutException)
            {
                return false;
            }
        }

        public async Task<IReadOnlyDictionary<string, int>> StopAsync()
        {
            await _stop.CancelAsync();
            await Task.WhenAll(_callers).WaitAsync(Timeout);
            return _servedAfterBack;
        }

        public void Dispose() => _stop.Dispose();

        /// <summary>Keeps a Watch stream open (each for up to 3 s), opening another when one ends.</summary>
        private async Task WatchAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    using var watch = client.Watch(new HealthCheckRequest { Service = "who" }, deadline: DateTime.UtcNow.AddSeconds(3), cancellationToken: _stop.Token);
                    while (await watch.ResponseStream.MoveNext(_stop.Token))
                    {
                    }
                }
                catch (RpcException)
                {
                    // Ends at its deadline, when its replica is killed, or when the test stops.
                }
                catch (OperationCanceledException)
                {
                }
            }
        }

        private async Task CallAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                var started = Stopwatch.GetTimestamp();
                try
                {
                    var reply = await client.CheckAsync(new HealthCheckRequest { Service = "who" }, deadline: DateTime.UtcNow.AddSeconds(2));
                    Interlocked.Increment(ref _succeeded);
                    if (started >= Interlocked.Read(ref _backTicks))
                    {
                        _servedAfterBack.AddOrUpdate(reply.Status == ServingStatus.Serving ? "a" : "b", 1, (_, n) => n + 1);
                    }
                }
                catch (RpcException e) when (started >= Interlocked.Read(ref _backTicks))
                {
                    FailedAfterBack.Enqueue($"{e.StatusCode} {e.Status.Detail}");
                }
                catch (RpcException)
                {
                    // While a replica is down a call may fail; the test is about what follows.
                }

                if (pauseMilliseconds > 0)
                {
                    await Task.Delay(pauseMilliseconds);
                }
            }
        }
    }
}
