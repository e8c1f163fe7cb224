using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Xunit;

namespace LabMesh.Testing;

/// <summary>Collects every log record of a host so a test can assert on them (and fail on unexpected errors).</summary>
public sealed class LogCapture : ILoggerProvider
{
    private readonly ConcurrentQueue<LogRecord> _records = new();

    public IReadOnlyCollection<LogRecord> Records => [.. _records];

    public IEnumerable<LogRecord> Errors => _records.Where(r => r.Level >= LogLevel.Error);

    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, _records);

    /// <summary>Fails the test if any error was logged, naming them.</summary>
    public void AssertNoErrors()
    {
        var errors = Errors.ToList();
        Assert.True(errors.Count == 0, "Unexpected error logs:\n" + string.Join("\n", errors.Select(e => $"{e.Category}: {e.Message} {e.Exception}")));
    }

    public void Dispose()
    {
    }

    public sealed record LogRecord(string Category, LogLevel Level, EventId EventId, string Message, Exception? Exception);

    private sealed class Logger(string category, ConcurrentQueue<LogRecord> records) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            records.Enqueue(new LogRecord(category, logLevel, eventId, formatter(state, exception), exception));
    }
}
