using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Globalization;
using Microsoft.Extensions.Logging;

namespace LabMesh.Security.Tests.Telemetry;

/// <summary>
/// Everything a process's telemetry would export while it is alive: every span of every
/// ActivitySource (name, tags, events, links, status), every metric measurement's tags and every log
/// record (category, message, structured state, scopes, exception). Each is kept as one line of text
/// with where it came from, so a test can search it.
/// </summary>
public sealed class TelemetryCapture : ILoggerProvider, ISupportExternalScope, IDisposable
{
    private readonly ConcurrentQueue<(string Where, string Text)> _lines = new();
    private readonly ActivityListener _spans;
    private readonly MeterListener _metrics;
    private IExternalScopeProvider? _scopes;
    private int _spanCount;
    private int _logCount;
    private int _measurementCount;

    public TelemetryCapture()
    {
        _spans = new ActivityListener
        {
            ShouldListenTo = _ => true,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = Record,
        };
        ActivitySource.AddActivityListener(_spans);

        _metrics = new MeterListener { InstrumentPublished = (instrument, listener) => listener.EnableMeasurementEvents(instrument) };
        _metrics.SetMeasurementEventCallback<byte>((i, v, tags, _) => Measure(i, tags));
        _metrics.SetMeasurementEventCallback<short>((i, v, tags, _) => Measure(i, tags));
        _metrics.SetMeasurementEventCallback<int>((i, v, tags, _) => Measure(i, tags));
        _metrics.SetMeasurementEventCallback<long>((i, v, tags, _) => Measure(i, tags));
        _metrics.SetMeasurementEventCallback<float>((i, v, tags, _) => Measure(i, tags));
        _metrics.SetMeasurementEventCallback<double>((i, v, tags, _) => Measure(i, tags));
        _metrics.SetMeasurementEventCallback<decimal>((i, v, tags, _) => Measure(i, tags));
        _metrics.Start();
    }

    public IReadOnlyCollection<(string Where, string Text)> Lines => [.. _lines];

    public int Spans => _spanCount;

    public int Logs => _logCount;

    public int Measurements => _measurementCount;

    /// <summary>Adds a line from outside telemetry (an error a caller received), to be searched with the rest.</summary>
    public void Add(string where, string text) => _lines.Enqueue((where, text));

    /// <summary>Polls observable instruments once, so their tags are captured too.</summary>
    public void CollectObservables() => _metrics.RecordObservableInstruments();

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void SetScopeProvider(IExternalScopeProvider scopeProvider) => _scopes = scopeProvider;

    public void Dispose()
    {
        _spans.Dispose();
        _metrics.Dispose();
    }

    private void Record(Activity activity)
    {
        Interlocked.Increment(ref _spanCount);
        var text = new List<string> { activity.Source.Name, activity.OperationName, activity.DisplayName, activity.StatusDescription ?? "" };
        text.AddRange(activity.TagObjects.Select(t => $"{t.Key}={Format(t.Value)}"));
        text.AddRange(activity.Baggage.Select(b => $"{b.Key}={b.Value}"));
        foreach (var evt in activity.Events)
        {
            text.Add(evt.Name);
            text.AddRange(evt.Tags.Select(t => $"{t.Key}={Format(t.Value)}"));
        }

        foreach (var link in activity.Links)
        {
            text.AddRange(link.Tags?.Select(t => $"{t.Key}={Format(t.Value)}") ?? []);
        }

        _lines.Enqueue(($"span {activity.DisplayName}", string.Join(" | ", text)));
    }

    private void Measure(Instrument instrument, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        Interlocked.Increment(ref _measurementCount);
        var text = new List<string> { instrument.Meter.Name, instrument.Name, instrument.Unit ?? "", instrument.Description ?? "" };
        foreach (var tag in tags)
        {
            text.Add($"{tag.Key}={Format(tag.Value)}");
        }

        _lines.Enqueue(($"metric {instrument.Name}", string.Join(" | ", text)));
    }

    private static string Format(object? value) => value switch
    {
        null => "",
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        System.Collections.IEnumerable items and not string => string.Join(",", items.Cast<object?>().Select(Format)),
        _ => value.ToString() ?? "",
    };

    private sealed class Logger(TelemetryCapture owner, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => owner._scopes?.Push(state);

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            Interlocked.Increment(ref owner._logCount);
            var text = new List<string> { category, eventId.Name ?? "", formatter(state, exception) };
            if (state is IEnumerable<KeyValuePair<string, object?>> values)
            {
                text.AddRange(values.Select(v => $"{v.Key}={Format(v.Value)}"));
            }

            owner._scopes?.ForEachScope((scope, lines) =>
            {
                lines.Add(Format(scope));
                if (scope is IEnumerable<KeyValuePair<string, object?>> scoped)
                {
                    lines.AddRange(scoped.Select(v => $"{v.Key}={Format(v.Value)}"));
                }
            }, text);
            if (exception is not null)
            {
                text.Add(exception.ToString());
            }

            owner._lines.Enqueue(($"log {category} {logLevel}", string.Join(" | ", text)));
        }
    }
}
