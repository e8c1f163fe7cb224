using System.Collections.Concurrent;
using LabMesh.Contracts.Common.V1;
using LabMesh.Messaging.Events;
using Microsoft.Extensions.Logging;

namespace LabMesh.ServiceDefaults.Tests.Storage;

/// <summary>
/// A test double of the event bus only (the stores under test are real): records every publish,
/// deduplicates by event id like the real buses, and fails on demand.
/// </summary>
public sealed class RecordingEventBus : IEventBus
{
    private readonly Lock _gate = new();
    private readonly List<string> _attempts = [];
    private readonly List<Event> _delivered = [];
    private readonly HashSet<string> _inFlight = [];
    private int _overlaps;
    private int _refused;

    /// <summary>Every publish fails before anything is recorded (the bus is unreachable).</summary>
    public bool Down { get; set; }

    /// <summary>Publishing this event id fails before anything is recorded.</summary>
    public string? FailOnEventId { get; set; }

    /// <summary>Publishes are accepted, then throw (the acknowledgement is lost on the way back).</summary>
    public bool ThrowAfterAccepting { get; set; }

    /// <summary>How long each publish takes, to widen race windows.</summary>
    public TimeSpan Latency { get; set; }

    /// <summary>Once this many events were delivered, further publishes hang until cancelled.</summary>
    public int? HangAfterDelivered { get; set; }

    /// <summary>Ids of every publish call that reached the bus, in call order, repeats included.</summary>
    public IReadOnlyList<string> Attempts
    {
        get
        {
            lock (_gate)
            {
                return [.. _attempts];
            }
        }
    }

    /// <summary>Events appended to the bus, in order, each id once.</summary>
    public IReadOnlyList<Event> Delivered
    {
        get
        {
            lock (_gate)
            {
                return [.. _delivered];
            }
        }
    }

    public IReadOnlyList<string> DeliveredIds => [.. Delivered.Select(e => e.Id)];

    /// <summary>Publish calls refused because the bus was <see cref="Down"/>.</summary>
    public int Refused => Volatile.Read(ref _refused);

    /// <summary>How often one event id was being published by two callers at the same moment.</summary>
    public int ConcurrentDuplicatePublishes => Volatile.Read(ref _overlaps);

    public async Task PublishAsync(Event evt, CancellationToken cancellationToken)
    {
        if (Down)
        {
            Interlocked.Increment(ref _refused);
            throw new InvalidOperationException("The test bus is down.");
        }

        if (evt.Id == FailOnEventId)
        {
            throw new InvalidOperationException("The test bus refuses " + evt.Id + ".");
        }

        lock (_gate)
        {
            _attempts.Add(evt.Id);
            if (!_inFlight.Add(evt.Id))
            {
                _overlaps++;
            }
        }

        try
        {
            if (Latency > TimeSpan.Zero)
            {
                await Task.Delay(Latency, cancellationToken);
            }

            if (HangAfterDelivered is { } hang && Delivered.Count >= hang)
            {
                await Task.Delay(System.Threading.Timeout.Infinite, cancellationToken);
            }

            lock (_gate)
            {
                if (_delivered.TrueForAll(e => e.Id != evt.Id))
                {
                    _delivered.Add(evt.Clone());
                }
            }
        }
        finally
        {
            lock (_gate)
            {
                _inFlight.Remove(evt.Id);
            }
        }

        if (ThrowAfterAccepting)
        {
            throw new TimeoutException("The test bus lost the acknowledgement of " + evt.Id + ".");
        }
    }

    public Task<IReadOnlyList<BusEntry>> ReadAsync(string? afterPosition, int count, CancellationToken cancellationToken)
    {
        var after = afterPosition is null ? 0 : int.Parse(afterPosition, System.Globalization.CultureInfo.InvariantCulture);
        IReadOnlyList<BusEntry> entries = [.. Delivered
            .Select((e, i) => new BusEntry((i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture), e))
            .Skip(after)
            .Take(count)];
        return Task.FromResult(entries);
    }

    public Task<bool> RetainsAfterAsync(string position, CancellationToken cancellationToken) => Task.FromResult(true);

    public Task<string?> FindPositionAsync(string eventId, CancellationToken cancellationToken)
    {
        var index = Delivered.ToList().FindIndex(e => e.Id == eventId);
        return Task.FromResult(index < 0 ? null : (index + 1).ToString(System.Globalization.CultureInfo.InvariantCulture));
    }

    public IDisposable Subscribe(Func<BusEntry, CancellationToken, Task> handler) =>
        throw new NotSupportedException("The storage tests never subscribe.");
}

/// <summary>Keeps what was logged, so a test can fail on an unexpected error.</summary>
public sealed class ListLogger<T> : ILogger<T>
{
    private readonly ConcurrentQueue<(LogLevel Level, string Message, Exception? Exception)> _entries = new();

    public IReadOnlyList<(LogLevel Level, string Message, Exception? Exception)> Entries => [.. _entries];

    public IReadOnlyList<string> Errors => [.. _entries.Where(e => e.Level >= LogLevel.Error).Select(e => e.Message + " " + e.Exception)];

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        _entries.Enqueue((logLevel, formatter(state, exception), exception));
}

/// <summary>A clock the test moves by hand (only <see cref="GetUtcNow"/>; timers stay real).</summary>
public sealed class ManualTimeProvider(DateTimeOffset start) : TimeProvider
{
    private long _ticks = start.UtcTicks;

    public override DateTimeOffset GetUtcNow() => new(Interlocked.Read(ref _ticks), TimeSpan.Zero);

    public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
}

/// <summary>Reads an observable gauge of LabMesh's meter for one service (<c>labmesh.service</c>), as an exporter would.</summary>
public sealed class GaugeReader : IDisposable
{
    private readonly System.Diagnostics.Metrics.MeterListener _listener = new();
    private readonly string _service;
    private double? _last;

    public GaugeReader(string instrument, string service)
    {
        _service = service;
        _listener.InstrumentPublished = (published, listener) =>
        {
            if (published.Meter.Name == LabMesh.Core.Diagnostics.LabMeshTelemetry.Name && published.Name == instrument)
            {
                listener.EnableMeasurementEvents(published);
            }
        };
        _listener.SetMeasurementEventCallback<double>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == "labmesh.service" && Equals(tag.Value, _service))
                {
                    _last = value;
                }
            }
        });
        _listener.Start();
    }

    /// <summary>The gauge's value for the service now; fails when the service has none.</summary>
    public double Read() => ReadOrNull() ?? throw new InvalidOperationException($"No measurement for {_service}.");

    /// <summary>The gauge's value for the service now; null when no running relay of the service reports one.</summary>
    public double? ReadOrNull()
    {
        _last = null;
        _listener.RecordObservableInstruments();
        return _last;
    }

    public void Dispose() => _listener.Dispose();
}
