using Google.Protobuf.WellKnownTypes;
using LabMesh.Contracts.Common.V1;
using LabMesh.Messaging.Redis;
using LabMesh.Testing;
using Microsoft.Extensions.Logging;

namespace LabMesh.ServiceDefaults.Tests.Redis;

/// <summary>Timeouts, polling, event factories and Redis connections for the tests in this folder.</summary>
internal static class RedisTestSupport
{
    /// <summary>The most any single await in these tests may take.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    public static Task Within(this Task task) => task.WaitAsync(Timeout);

    public static Task<T> Within<T>(this Task<T> task) => task.WaitAsync(Timeout);

    public static Task Within(this ValueTask task) => task.AsTask().WaitAsync(Timeout);

    /// <summary>Polls <paramref name="condition"/> until it holds; fails after <paramref name="timeout"/> (default <see cref="Timeout"/>).</summary>
    public static Task Eventually(Func<Task<bool>> condition, string what, TimeSpan? timeout = null) =>
        LabMesh.Testing.Eventually.HoldsAsync(condition, timeout ?? Timeout, what);

    public static Task Eventually(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        LabMesh.Testing.Eventually.HoldsAsync(condition, timeout ?? Timeout, what);

    /// <summary>Fails if <paramref name="condition"/> stops holding within <paramref name="during"/> (nothing more, nothing twice).</summary>
    public static Task Stays(Func<bool> condition, string what, TimeSpan during) =>
        LabMesh.Testing.Eventually.StaysAsync(condition, during, what);

    public static Event NewEvent(string type, string? id = null) => new()
    {
        Id = id ?? "evt_" + Guid.NewGuid().ToString("N"),
        Type = type,
        CreatedAt = Timestamp.FromDateTime(DateTime.UtcNow),
        TeamId = "team_1",
        RequisitionId = "req_1",
        Source = "tests",
    };

    public static RedisOptions OptionsFor(RedisServer server, Action<RedisOptions>? configure = null)
    {
        var options = new RedisOptions { Configuration = server.Configuration + ",syncTimeout=2000,connectTimeout=2000" };
        configure?.Invoke(options);
        return options;
    }

    /// <summary>A connection that has made its first attempt; waits until connected when the server runs.</summary>
    public static async Task<RedisConnection> ConnectAsync(RedisServer server, TestLog log, Action<RedisOptions>? configure = null)
    {
        var connection = await RedisConnection.ConnectAsync(
            Microsoft.Extensions.Options.Options.Create(OptionsFor(server, configure)),
            log.Factory.CreateLogger<RedisConnection>(),
            CancellationToken.None).Within();
        if (server.IsRunning)
        {
            await Eventually(() => connection.IsConnected, "the connection is up");
        }

        return connection;
    }

    public static Task<object?> Redis(this RedisServer server, params string[] command) =>
        server.ExecuteAsync(command).Within();
}

/// <summary>A logger factory over <see cref="LogCapture"/>, so a test fails on an unexpected error and can look for expected warnings.</summary>
internal sealed class TestLog : IDisposable
{
    private readonly LogCapture _capture = new();

    public TestLog()
    {
        Factory = LoggerFactory.Create(builder => builder.SetMinimumLevel(LogLevel.Debug).AddProvider(_capture));
    }

    public ILoggerFactory Factory { get; }

    public IReadOnlyCollection<LogCapture.LogRecord> Records => _capture.Records;

    public ILogger<T> For<T>() => Factory.CreateLogger<T>();

    public void AssertNoErrors() => _capture.AssertNoErrors();

    public bool Contains(LogLevel level, string fragment) =>
        _capture.Records.Any(r => r.Level == level && r.Message.Contains(fragment, StringComparison.Ordinal));

    public void Dispose() => Factory.Dispose();
}

/// <summary>A clock the test moves by hand.</summary>
internal sealed class ManualTimeProvider : TimeProvider
{
    private long _ticks = DateTimeOffset.UnixEpoch.AddYears(56).UtcTicks;

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public override long GetTimestamp() => Interlocked.Read(ref _ticks);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}
