using System.Globalization;
using System.Threading.Channels;
using LabMesh.Contracts.Common.V1;
using LabMesh.Messaging.Redis;
using Microsoft.Extensions.Logging;

namespace LabMesh.Messaging.Events;

/// <summary>
/// <see cref="IEventBus"/> inside the process, for the all-in-one host: a log of the last
/// <c>capacity</c> events (positions "1", "2", ... in publish order), idempotent by event id while
/// the event is kept, and live subscribers that each see every event in publish order.
/// </summary>
public sealed partial class InProcessEventBus : IEventBus, IDisposable
{
    /// <summary>Events kept for <see cref="ReadAsync"/> and for deduplication.</summary>
    public const int DefaultCapacity = 100_000;

    private readonly Lock _gate = new();
    private readonly BusEntry?[] _log;
    private readonly Dictionary<string, long> _ids = new(StringComparer.Ordinal);
    private readonly ILogger _logger;
    private Subscriber[] _subscribers = [];
    private readonly long _before;
    private long _last;
    private bool _disposed;

    /// <param name="logger">Where duplicates and handler failures are logged.</param>
    /// <param name="capacity">Events kept.</param>
    /// <param name="firstPosition">
    /// The position of the first event. A host gives <see cref="FirstPositionAt"/> of its start, so that a
    /// cursor from an earlier run of the process lies below every position of this one, and is answered as
    /// expired (<see cref="RetainsAfterAsync"/>) instead of naming a different event.
    /// </param>
    public InProcessEventBus(ILogger<InProcessEventBus> logger, int capacity = DefaultCapacity, long firstPosition = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(capacity);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(firstPosition);
        _before = _last = firstPosition - 1;
        _log = new BusEntry?[capacity];
        _logger = logger;
    }

    /// <summary>
    /// A first position for a bus made at <paramref name="start"/>: its Unix time in microseconds, so each run of
    /// a process numbers its events above the previous run's (a run would have to publish more than a million
    /// events a second to catch up with the next one's start).
    /// </summary>
    public static long FirstPositionAt(DateTimeOffset start) => (start.ToUnixTimeMilliseconds() * 1000) + 1;

    /// <inheritdoc/>
    public Task PublishAsync(Event evt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(evt);
        if (string.IsNullOrEmpty(evt.Id))
        {
            throw new ArgumentException("An event needs an id.", nameof(evt));
        }

        cancellationToken.ThrowIfCancellationRequested();

        // A copy, as the Redis bus would serialize it: the publisher may reuse its instance.
        var copy = evt.Clone();
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_ids.ContainsKey(copy.Id))
            {
                return Task.CompletedTask;
            }

            var sequence = ++_last;
            var slot = (int)((sequence - 1) % _log.Length);
            if (_log[slot] is { } evicted)
            {
                _ids.Remove(evicted.Event.Id);
            }

            var entry = new BusEntry(sequence.ToString(CultureInfo.InvariantCulture), copy);
            _log[slot] = entry;
            _ids[copy.Id] = sequence;

            // Under the lock, so every subscriber sees the publish order.
            foreach (var subscriber in _subscribers)
            {
                subscriber.Offer(entry);
            }
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public bool SurvivesRestart => false;

    /// <inheritdoc/>
    public bool IsPosition(string position) => BusPosition.TryParseSequence(position, out _);

    // The position of the oldest event the log still holds (one past _last when it is empty); read under _gate.
    private long OldestKept => Math.Max(_before + 1, _last - _log.Length + 1);

    /// <inheritdoc/>
    public Task<bool> RetainsAfterAsync(string position, CancellationToken cancellationToken)
    {
        if (!BusPosition.TryParseSequence(position, out var after))
        {
            throw new ArgumentException($"'{position}' is not a position of this bus.", nameof(position));
        }

        lock (_gate)
        {
            // The one right after the position must still be in the log.
            return Task.FromResult(after + 1 >= OldestKept);
        }
    }

    /// <inheritdoc/>
    public Task<IReadOnlyList<BusEntry>> ReadAsync(string? afterPosition, int count, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        var after = 0L;
        if (afterPosition is not null && !BusPosition.TryParseSequence(afterPosition, out after))
        {
            throw new ArgumentException($"'{afterPosition}' is not a position of this bus.", nameof(afterPosition));
        }

        cancellationToken.ThrowIfCancellationRequested();
        lock (_gate)
        {
            var start = Math.Max(after + 1, OldestKept);
            var end = Math.Min(_last, start + count - 1);
            var entries = new List<BusEntry>((int)Math.Max(0, end - start + 1));
            for (var sequence = start; sequence <= end; sequence++)
            {
                entries.Add(_log[(int)((sequence - 1) % _log.Length)]!);
            }

            return Task.FromResult<IReadOnlyList<BusEntry>>(entries);
        }
    }

    /// <inheritdoc/>
    public Task<string?> FindPositionAsync(string eventId, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(eventId);
        lock (_gate)
        {
            return Task.FromResult(_ids.TryGetValue(eventId, out var sequence) ? sequence.ToString(CultureInfo.InvariantCulture) : null);
        }
    }

    /// <inheritdoc/>
    public IDisposable Subscribe(Func<BusEntry, CancellationToken, Task> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        var subscriber = new Subscriber(this, handler, _log.Length);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _subscribers = [.. _subscribers, subscriber];
        }

        return subscriber;
    }

    public void Dispose()
    {
        Subscriber[] subscribers;
        lock (_gate)
        {
            _disposed = true;
            subscribers = _subscribers;
        }

        foreach (var subscriber in subscribers)
        {
            subscriber.Dispose();
        }
    }

    private void Remove(Subscriber subscriber)
    {
        lock (_gate)
        {
            _subscribers = [.. _subscribers.Where(s => s != subscriber)];
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Event bus subscriber failed on event {EventId} ({EventType})")]
    private static partial void LogHandlerFailed(ILogger logger, string eventId, string eventType, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Event bus subscriber is {Capacity} events behind; event {EventId} ({EventType}) was not delivered to it (ReadAsync still has it)")]
    private static partial void LogSubscriberOverflow(ILogger logger, int capacity, string eventId, string eventType);

    private sealed class Subscriber : IDisposable
    {
        private readonly InProcessEventBus _bus;
        private readonly Func<BusEntry, CancellationToken, Task> _handler;
        private readonly Channel<BusEntry> _queue;
        private readonly CancellationTokenSource _stopping = new();
        private readonly int _capacity;
        private int _disposed;

        public Subscriber(InProcessEventBus bus, Func<BusEntry, CancellationToken, Task> handler, int capacity)
        {
            _bus = bus;
            _handler = handler;
            _capacity = capacity;
            _queue = Channel.CreateBounded<BusEntry>(new BoundedChannelOptions(capacity) { SingleReader = true, SingleWriter = true });
            _ = RunAsync();
        }

        public void Offer(BusEntry entry)
        {
            if (!_queue.Writer.TryWrite(entry) && Volatile.Read(ref _disposed) == 0)
            {
                LogSubscriberOverflow(_bus._logger, _capacity, entry.Event.Id, entry.Event.Type);
            }
        }

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                return;
            }

            _bus.Remove(this);
            _queue.Writer.TryComplete();
            _stopping.Cancel();
        }

        private async Task RunAsync()
        {
            await Task.Yield();
            var cancellationToken = _stopping.Token;
            try
            {
                await foreach (var entry in _queue.Reader.ReadAllAsync(cancellationToken))
                {
                    try
                    {
                        await _handler(entry, cancellationToken);
                    }
                    catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
                    {
                        LogHandlerFailed(_bus._logger, entry.Event.Id, entry.Event.Type, ex);
                    }
                }
            }
            catch (Exception) when (cancellationToken.IsCancellationRequested)
            {
                // Unsubscribed while a handler was running: its outcome no longer matters.
            }
        }
    }
}
