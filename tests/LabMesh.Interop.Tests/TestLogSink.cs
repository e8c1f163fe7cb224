using Microsoft.Extensions.Logging;

namespace LabMesh.Interop.Tests;

/// <summary>Keeps every log record of an in-process server, so a test can fail on an unexpected error log.</summary>
public sealed class TestLogSink : ILoggerProvider
{
    private readonly Lock _gate = new();
    private readonly List<LogRecord> _records = [];

    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _records.Count;
            }
        }
    }

    /// <summary>Records from index <paramref name="start"/> on at <paramref name="level"/> or above.</summary>
    public IReadOnlyList<LogRecord> Since(int start, LogLevel level)
    {
        lock (_gate)
        {
            return [.. _records.Skip(start).Where(r => r.Level >= level)];
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private void Add(LogRecord record)
    {
        lock (_gate)
        {
            _records.Add(record);
        }
    }

    public sealed record LogRecord(LogLevel Level, string Category, string Message, Exception? Exception)
    {
        public override string ToString() => $"{Level} {Category}: {Message}{(Exception is null ? "" : $" ({Exception.GetType().Name}: {Exception.Message})")}";
    }

    private sealed class Logger(TestLogSink sink, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            sink.Add(new LogRecord(logLevel, category, formatter(state, exception), exception));
    }
}
