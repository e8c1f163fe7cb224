using System.Collections.Concurrent;
using System.Diagnostics;
using Google.Protobuf.WellKnownTypes;
using LabMesh.Contracts.Common.V1;
using LabMesh.ServiceDefaults.Redis;
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

    /// <summary>Polls <paramref name="condition"/> every 20 ms until it holds; fails after <paramref name="timeout"/> (default <see cref="Timeout"/>).</summary>
    public static async Task Eventually(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? Timeout;
        var waited = Stopwatch.StartNew();
        while (!await condition().WaitAsync(limit))
        {
            if (waited.Elapsed > limit)
            {
                Assert.Fail($"Not within {limit}: {what}");
            }

            await Task.Delay(20);
        }
    }

    public static Task Eventually(Func<bool> condition, string what, TimeSpan? timeout = null) =>
        Eventually(() => Task.FromResult(condition()), what, timeout);

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

/// <summary>Collects log records so a test fails on an unexpected error and can look for expected warnings.</summary>
internal sealed class TestLog : IDisposable
{
    private readonly ConcurrentQueue<Record> _records = new();

    public TestLog()
    {
        Factory = LoggerFactory.Create(builder => builder.SetMinimumLevel(LogLevel.Debug).AddProvider(new Provider(_records)));
    }

    public ILoggerFactory Factory { get; }

    public IReadOnlyList<Record> Records => [.. _records];

    public ILogger<T> For<T>() => Factory.CreateLogger<T>();

    public void AssertNoErrors()
    {
        var errors = _records.Where(r => r.Level >= LogLevel.Error).ToList();
        Assert.True(errors.Count == 0, "Unexpected error logs:\n" + string.Join("\n", errors.Select(e => $"{e.Category}: {e.Message} {e.Exception}")));
    }

    public bool Contains(LogLevel level, string fragment) =>
        _records.Any(r => r.Level == level && r.Message.Contains(fragment, StringComparison.Ordinal));

    public void Dispose() => Factory.Dispose();

    internal sealed record Record(string Category, LogLevel Level, string Message, Exception? Exception);

    private sealed class Provider(ConcurrentQueue<Record> records) : ILoggerProvider
    {
        public ILogger CreateLogger(string categoryName) => new Logger(categoryName, records);

        public void Dispose()
        {
        }
    }

    private sealed class Logger(string category, ConcurrentQueue<Record> records) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            records.Enqueue(new Record(category, logLevel, formatter(state, exception), exception));
    }
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
