using System.Collections.Concurrent;
using System.Diagnostics;
using Grpc.Core;
using Grpc.Health.V1;
using LabMesh.ServiceDefaults.Peers;
using LabMesh.Testing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LabMesh.ServiceDefaults.Tests.Peers;

/// <summary>
/// What the fault-injection run did, in small: two real ServiceRequest replicas (processes, SQLite), a peer client
/// as services get it (AddPeerClient) calling them continuously with deadlines, each replica SIGKILLed in turn and
/// started again on its port 3 s later as deploy/local's ctl.sh does. Once both are back, every call succeeds.
/// </summary>
public sealed class ServiceRequestReplicaKillTests
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task EachReplicaSigkilledAndStartedAgain_EveryCallOnceBothServe_Succeeds()
    {
        await using var a = new Replica();
        await using var b = new Replica();
        await Task.WhenAll(a.StartAsync(), b.StartAsync());
        var capture = new LogCapture();
        var services = new ServiceCollection().AddLogging(l => l.AddProvider(capture).SetMinimumLevel(LogLevel.Debug));
        services.Configure<PeerOptions>(o => o.ServiceRequest = $"ipv4:127.0.0.1:{a.Port},127.0.0.1:{b.Port}");
        services.AddPeerClient<Health.HealthClient>(p => p.ServiceRequest, Health.Descriptor.FullName);
        await using var provider = services.BuildServiceProvider();
        var client = provider.GetRequiredService<Health.HealthClient>();
        var backTicks = long.MaxValue;
        var failedAfterBack = new ConcurrentQueue<string>();
        var succeededAfterBack = 0;
        using var stop = new CancellationTokenSource();

        async Task CallAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                var started = Stopwatch.GetTimestamp();
                try
                {
                    await client.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(2));
                    if (started >= Interlocked.Read(ref backTicks))
                    {
                        Interlocked.Increment(ref succeededAfterBack);
                    }
                }
                catch (RpcException e) when (started >= Interlocked.Read(ref backTicks))
                {
                    failedAfterBack.Enqueue($"{e.StatusCode} {e.Status.Detail}");
                }
                catch (RpcException)
                {
                    // A replica is down or starting.
                }

                await Task.Delay(20);
            }
        }

        var callers = Enumerable.Range(0, 4).Select(_ => Task.Run(CallAsync)).ToArray();
        foreach (var replica in new[] { a, b })
        {
            await Task.Delay(1000);
            await replica.KillAsync();
            await Task.Delay(3000);
            await replica.StartAsync();
        }

        Interlocked.Exchange(ref backTicks, Stopwatch.GetTimestamp());
        await Eventually.HoldsAsync(() => Volatile.Read(ref succeededAfterBack) >= 200 || failedAfterBack.Count >= 10, TimeSpan.FromSeconds(60), "200 calls once both replicas serve");
        await stop.CancelAsync();
        await Task.WhenAll(callers).WaitAsync(TimeSpan.FromSeconds(30));

        Assert.True(
            failedAfterBack.IsEmpty,
            $"{failedAfterBack.Count} calls started once both replicas served failed: {string.Join("; ", failedAfterBack.Take(5))}\n"
            + string.Join("\n", capture.Records.Where(r => r.Category.Contains("Subchannel", StringComparison.Ordinal)).TakeLast(60).Select(r => r.Message)));
    }

    /// <summary>A ServiceRequest replica process on a port of its own, its SQLite store in a directory that outlives a kill.</summary>
    private sealed class Replica : IAsyncDisposable
    {
        private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("labmesh-peer-kill-");
        private ChildProcess? _process;

        public int Port { get; } = FreePort.Next();

        public async Task StartAsync()
        {
            var assembly = Path.Combine(AppContext.BaseDirectory, "LabMesh.ServiceRequest.dll");
            _process = ChildProcess.Start(
                "dotnet",
                [assembly, "--urls", $"http://127.0.0.1:{Port}"],
                _directory.FullName,
                new Dictionary<string, string> { ["ASPNETCORE_ENVIRONMENT"] = "Development", ["DOTNET_ENVIRONMENT"] = "Development" });
            await _process.WaitForLineAsync(l => l.Contains("Now listening on", StringComparison.Ordinal), StartTimeout, "the replica listening");
        }

        /// <summary>SIGKILL (ChildProcess disposes by killing the process).</summary>
        public async Task KillAsync()
        {
            if (_process is not null)
            {
                await _process.DisposeAsync();
                _process = null;
            }
        }

        public async ValueTask DisposeAsync()
        {
            await KillAsync();
            _directory.Delete(recursive: true);
        }
    }
}
