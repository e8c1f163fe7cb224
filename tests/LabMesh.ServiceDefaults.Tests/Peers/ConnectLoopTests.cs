using Grpc.Core;
using Grpc.Health.V1;
using LabMesh.ServiceDefaults.Peers;
using LabMesh.Testing;
using Microsoft.Extensions.Logging;

namespace LabMesh.ServiceDefaults.Tests.Peers;

/// <summary>
/// grpc-dotnet's subchannel connect loop under a MeshChannels channel while its peer refuses connections for longer than
/// a connect timeout would allow (bench/README.md, "Peer calls stuck in grpc-dotnet's balancer after replica kills").
/// grpc-dotnet 2.85 bounds a subchannel's whole reconnect loop by the handler's <c>ConnectTimeout</c>; when it fires
/// the loop ends with the subchannel Idle and round-robin starts another at once, the moment where the chaos run's
/// subchannels were left Connecting with no loop. MeshChannels sets no connect timeout, so that moment never comes.
/// The peer is a <see cref="KillableReplica"/> (its port refuses, its connections are reset), read through the
/// channel's Debug log of the subchannel.
/// </summary>
public sealed class ConnectLoopTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    // A restarted replica is reconnected about 50 ms after it is back (MeshChannels.ReconnectBackoff): 10 s is slack for a loaded machine.
    private static readonly TimeSpan RecoveryBound = TimeSpan.FromSeconds(10);

    // Past the 5 s connect timeout MeshChannels had until session 12.
    private static readonly TimeSpan Down = TimeSpan.FromSeconds(7);

    [Fact]
    public async Task PeerRefusingPastAConnectTimeout_OneConnectLoopRetriesUntilItIsBack()
    {
        await using var replica = await KillableReplica.StartAsync("a");
        var log = new LogCapture();
        using var loggerFactory = LoggerFactory.Create(l => l.AddProvider(log).SetMinimumLevel(LogLevel.Debug));
        using var channel = MeshChannels.Create(
            $"ipv4:127.0.0.1:{replica.Port}", MeshChannels.RetryIdempotent(Health.Descriptor.FullName), loggerFactory: loggerFactory);
        var client = new Health.HealthClient(channel);
        await client.CheckAsync(new HealthCheckRequest { Service = "who" }, deadline: DateTime.UtcNow + Timeout);

        replica.Kill();
        var killed = log.Records.Count;
        await Eventually.HoldsAsync(() => Since(log, killed).Count(IsRefusedAttempt) >= 3, Timeout, "the subchannel's attempts refused after the kill");
        var loopsAfterKill = Since(log, killed).Count(IsLoopStart);

        // Refused all along: the loop goes on trying (an attempt every ~50 ms), never ends by timeout, and no other starts.
        await Eventually.StaysAsync(
            () => Task.FromResult(!Since(log, killed).Any(IsTimeout) && Since(log, killed).Count(IsLoopStart) == loopsAfterKill),
            Down,
            "one connect loop, not ended by a connect timeout, while the peer refuses");
        var attempts = Since(log, killed).Count(IsRefusedAttempt);
        Assert.True(attempts >= 20, $"{attempts} attempts in {Down}: the loop stopped trying\n{Describe(log, killed)}");

        replica.Restart();
        await Eventually.HoldsAsync(
            async () =>
            {
                try
                {
                    await client.CheckAsync(new HealthCheckRequest { Service = "who" }, deadline: DateTime.UtcNow.AddSeconds(1));
                    return true;
                }
                catch (RpcException)
                {
                    return false;
                }
            },
            RecoveryBound,
            () => $"a call served once the peer is back\n{Describe(log, killed)}",
            TimeSpan.FromMilliseconds(50));
        Assert.Equal(loopsAfterKill, Since(log, killed).Count(IsLoopStart));
    }

    [Fact]
    public async Task WithAConnectTimeout_GrpcDotnetEndsTheLoopIdle_AndRoundRobinStartsAnotherAtOnce()
    {
        // What MeshChannels avoids, as grpc-dotnet 2.85 does it: if this stops holding (an upgrade bounds each attempt
        // instead), MeshChannels can have a connect timeout again.
        await using var replica = await KillableReplica.StartAsync("a");
        var log = new LogCapture();
        using var loggerFactory = LoggerFactory.Create(l => l.AddProvider(log).SetMinimumLevel(LogLevel.Debug));
        using var channel = MeshChannels.CreateWithConnectTimeout(
            $"ipv4:127.0.0.1:{replica.Port}", MeshChannels.RetryIdempotent(Health.Descriptor.FullName), loggerFactory, TimeSpan.FromSeconds(1));
        var client = new Health.HealthClient(channel);
        await client.CheckAsync(new HealthCheckRequest { Service = "who" }, deadline: DateTime.UtcNow + Timeout);

        replica.Kill();
        var killed = log.Records.Count;

        // Refused attempts every ~50 ms, then the timeout ends the loop although no attempt took long, the subchannel
        // goes Idle, and round-robin's request makes it Connecting again before the ended loop has let go of it.
        await Eventually.HoldsAsync(
            () =>
            {
                var records = Since(log, killed);
                var timeout = records.FindIndex(IsTimeout);
                return Task.FromResult(
                    timeout > 0
                    && records.Take(timeout).Count(IsRefusedAttempt) >= 3
                    && records.Skip(timeout).Any(r => r.Message.Contains("state changed to Connecting. Detail: 'Connection requested.'", StringComparison.Ordinal)));
            },
            TimeSpan.FromSeconds(15),
            () => $"the loop ended by the connect timeout and a new connection requested\n{Describe(log, killed)}",
            TimeSpan.FromMilliseconds(50));
    }

    private static List<LogCapture.LogRecord> Since(LogCapture log, int index) => [.. log.Records.Skip(index)];

    private static bool IsRefusedAttempt(LogCapture.LogRecord r) =>
        r.Category.EndsWith(".SocketConnectivitySubchannelTransport", StringComparison.Ordinal)
        && r.Message.Contains("error connecting to socket", StringComparison.Ordinal);

    private static bool IsLoopStart(LogCapture.LogRecord r) =>
        r.Category.EndsWith(".Subchannel", StringComparison.Ordinal) && r.Message.EndsWith("connecting to transport.", StringComparison.Ordinal);

    private static bool IsTimeout(LogCapture.LogRecord r) =>
        r.Category.EndsWith(".Subchannel", StringComparison.Ordinal) && r.Message.Contains("Timeout connecting to subchannel.", StringComparison.Ordinal);

    private static string Describe(LogCapture log, int index) =>
        string.Join("\n", Since(log, index)
            .Where(r => r.Category.EndsWith(".Subchannel", StringComparison.Ordinal))
            .TakeLast(40)
            .Select(r => r.Message));
}
