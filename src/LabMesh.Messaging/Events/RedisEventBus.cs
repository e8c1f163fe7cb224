using System.Threading.Channels;
using Google.Protobuf;
using LabMesh.Contracts.Common.V1;
using LabMesh.Messaging.Redis;
using Microsoft.Extensions.Logging;

namespace LabMesh.Messaging.Events;

/// <summary>
/// <see cref="IEventBus"/> over Redis: every event is appended to the stream (<see cref="RedisOptions.StreamKey"/>,
/// deduplicated by event id), and critical ones (<see cref="EventTypes.IsCritical"/>) are also published
/// on <see cref="RedisOptions.CriticalChannel"/> in the same step.
/// <para>
/// Subscribers share one feed per bus that follows the stream, every event once and in stream order.
/// It reads the stream every <see cref="RedisOptions.StreamPollInterval"/>, and at once when a critical
/// event arrives on the critical channel: the channel message is published in the same script as the
/// stream entry, so the read that it triggers finds the entry, and every replica sees a critical
/// result within a round trip while subscribers keep one order (which is what makes a stream position
/// a safe place to resume from). Each subscriber has its own queue of 10,000 events and runs its
/// handler one event at a time; a subscriber whose queue is full holds the feed back (no event is
/// dropped). The feed rides out Redis outages and carries on from its last position.
/// </para>
/// </summary>
public sealed partial class RedisEventBus : IEventBus, IAsyncDisposable, IDisposable
{
    private const int ReadBatchSize = 512;
    private const int SubscriberCapacity = 10_000;

    private readonly RedisConnection _redis;
    private readonly TimeSpan _pollInterval;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private readonly CancellationTokenSource _stopping = new();
    private readonly WakeSignal _wake = new();
    private Subscriber[] _subscribers = [];
    private Task? _feed;
    private int _disposed;

    public RedisEventBus(RedisConnection redis, ILogger<RedisEventBus> logger)
    {
        _redis = redis;
        _pollInterval = redis.Options.StreamPollInterval > TimeSpan.Zero ? redis.Options.StreamPollInterval : TimeSpan.FromMilliseconds(50);
        _logger = logger;
    }

    /// <inheritdoc/>
    /// <exception cref="RedisUnavailableException">Redis could not take the event.</exception>
    public async Task PublishAsync(Event evt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(evt);
        if (string.IsNullOrEmpty(evt.Id))
        {
            throw new ArgumentException("An event needs an id.", nameof(evt));
        }

        var position = await _redis.AppendEventAsync(evt.Id, evt.Type, evt.ToByteArray(), EventTypes.IsCritical(evt.Type), cancellationToken);
        if (position is null)
        {
            LogDuplicate(_logger, evt.Id, evt.Type);
        }
    }

    /// <inheritdoc/>
    /// <remarks>
    /// From the stream's oldest kept entry: false also when the cursor's own entry was the last one trimmed
    /// (nothing after it is missing then, but that cannot be told apart).
    /// </remarks>
    /// <exception cref="RedisUnavailableException">Redis could not be read.</exception>
    public async Task<bool> RetainsAfterAsync(string position, CancellationToken cancellationToken) =>
        !await _redis.HasDroppedAfterAsync(position, cancellationToken);

    /// <inheritdoc/>
    /// <exception cref="RedisUnavailableException">Redis could not be read.</exception>
    public async Task<IReadOnlyList<BusEntry>> ReadAsync(string? afterPosition, int count, CancellationToken cancellationToken)
    {
        var stored = await _redis.ReadEventsAsync(afterPosition, count, cancellationToken);
        var entries = new List<BusEntry>(stored.Count);
        foreach (var item in stored)
        {
            if (TryParse(item) is { } entry)
            {
                entries.Add(entry);
            }
        }

        return entries;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Found through the event's dedup marker while it lasts, otherwise by looking through the stream
    /// from a minute before the time in the event's id (a version 7 GUID) on, up to 100,000 entries.
    /// </remarks>
    /// <exception cref="RedisUnavailableException">Redis could not be read.</exception>
    public Task<string?> FindPositionAsync(string eventId, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(eventId);
        var notBefore = BusPosition.TryGetCreationTime(eventId, out var created) ? created - TimeSpan.FromMinutes(1) : DateTimeOffset.UnixEpoch;
        return _redis.FindEventPositionAsync(eventId, notBefore, 100_000, cancellationToken);
    }

    /// <inheritdoc/>
    public IDisposable Subscribe(Func<BusEntry, CancellationToken, Task> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);

        // Registered before the stream's end is known, holding what the feed hands it until then, so
        // nothing appended between the two is lost and nothing appended before is delivered.
        var subscriber = new Subscriber(this, handler);
        lock (_gate)
        {
            _subscribers = [.. _subscribers, subscriber];
        }

        string? start = null;
        try
        {
            // Synchronous (the interface is), a loopback round trip; fails at once when disconnected.
            start = _redis.GetLastEventPosition();
        }
        catch (RedisUnavailableException ex)
        {
            // Nothing can be appended while Redis is unreachable; the feed starts at the end it finds.
            LogSubscribedWhileUnavailable(_logger, ex);
        }

        subscriber.Start(start);
        lock (_gate)
        {
            _feed ??= FeedAsync(start, _stopping.Token);
        }

        return subscriber;
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        _stopping.Cancel();
        Subscriber[] subscribers;
        lock (_gate)
        {
            subscribers = _subscribers;
        }

        foreach (var subscriber in subscribers)
        {
            subscriber.Dispose();
        }
    }

    public async ValueTask DisposeAsync()
    {
        Dispose();
        Task? feed;
        lock (_gate)
        {
            feed = _feed;
        }

        if (feed is not null)
        {
            await feed;
        }
    }

    private async Task FeedAsync(string? position, CancellationToken cancellationToken)
    {
        await Task.Yield();
        IDisposable? critical = null;
        var unavailable = false;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var more = false;
                try
                {
                    critical ??= await _redis.OnCriticalEventAsync(_wake.Set, cancellationToken);
                    position ??= await _redis.GetLastEventPositionAsync(cancellationToken);
                    var batch = await _redis.ReadEventsAsync(position, ReadBatchSize, cancellationToken);
                    foreach (var item in batch)
                    {
                        position = item.Position;
                        if (TryParse(item) is { } entry)
                        {
                            foreach (var subscriber in Volatile.Read(ref _subscribers))
                            {
                                await subscriber.OfferFromStreamAsync(entry, cancellationToken);
                            }
                        }
                    }

                    more = batch.Count == ReadBatchSize;
                    if (unavailable)
                    {
                        unavailable = false;
                        LogFeedResumed(_logger, position);
                    }
                }
                catch (RedisUnavailableException ex)
                {
                    if (!unavailable)
                    {
                        unavailable = true;
                        LogFeedUnavailable(_logger, ex);
                    }
                }
                catch (ObjectDisposedException)
                {
                    // The connection was disposed before this bus: nothing more to follow.
                    return;
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogFeedFailed(_logger, ex);
                }

                if (!more)
                {
                    await _wake.WaitAsync(_pollInterval, cancellationToken);
                }
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Disposed.
        }
        finally
        {
            critical?.Dispose();
        }
    }

    /// <summary>The event a stream entry holds; null when the entry is not a readable event with an id.</summary>
    public static BusEntry? Decode(StoredEvent item)
    {
        ArgumentNullException.ThrowIfNull(item);
        try
        {
            var evt = Event.Parser.ParseFrom(item.Data);
            return string.IsNullOrEmpty(evt.Id) ? null : new BusEntry(item.Position, evt);
        }
        catch (InvalidProtocolBufferException)
        {
            return null;
        }
    }

    private BusEntry? TryParse(StoredEvent item)
    {
        var entry = Decode(item);
        if (entry is null)
        {
            LogUnreadable(_logger, item.Position, item.Data.Length);
        }

        return entry;
    }

    private void Remove(Subscriber subscriber)
    {
        lock (_gate)
        {
            _subscribers = [.. _subscribers.Where(s => s != subscriber)];
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Event {EventId} ({EventType}) was already published; nothing appended")]
    private static partial void LogDuplicate(ILogger logger, string eventId, string eventType);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Event bus: subscribed while Redis is unreachable; delivery starts when it returns")]
    private static partial void LogSubscribedWhileUnavailable(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Event bus: cannot read the event stream; retrying")]
    private static partial void LogFeedUnavailable(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Event bus: reading the event stream again after {Position}")]
    private static partial void LogFeedResumed(ILogger logger, string? position);

    [LoggerMessage(Level = LogLevel.Error, Message = "Event bus: following the event stream failed; retrying")]
    private static partial void LogFeedFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Event bus: skipped an unreadable stream entry at {Position} ({Length} bytes)")]
    private static partial void LogUnreadable(ILogger logger, string position, int length);

    [LoggerMessage(Level = LogLevel.Error, Message = "Event bus subscriber failed on event {EventId} ({EventType})")]
    private static partial void LogHandlerFailed(ILogger logger, string eventId, string eventType, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Event bus subscriber's queue is full before it started; event {EventId} ({EventType}) was not delivered to it")]
    private static partial void LogStartOverflow(ILogger logger, string eventId, string eventType);

    private sealed class Subscriber : IDisposable
    {
        private readonly RedisEventBus _bus;
        private readonly Func<BusEntry, CancellationToken, Task> _handler;
        private readonly Channel<BusEntry> _queue = Channel.CreateBounded<BusEntry>(new BoundedChannelOptions(SubscriberCapacity) { SingleReader = true });
        private readonly CancellationTokenSource _stopping = new();
        private readonly Lock _lock = new();
        private List<BusEntry>? _held = [];
        private string? _startAfter;
        private int _disposed;

        public Subscriber(RedisEventBus bus, Func<BusEntry, CancellationToken, Task> handler)
        {
            _bus = bus;
            _handler = handler;
            _ = RunAsync();
        }

        /// <summary>Sets where delivery starts (null: wherever the feed is) and releases what was held.</summary>
        public void Start(string? startAfter)
        {
            lock (_lock)
            {
                _startAfter = startAfter;
                var held = _held!;
                _held = null;
                foreach (var entry in held)
                {
                    if (IsAfterStart(entry) && !_queue.Writer.TryWrite(entry))
                    {
                        LogStartOverflow(_bus._logger, entry.Event.Id, entry.Event.Type);
                    }
                }
            }
        }

        /// <summary>From the stream feed, in stream order; waits while the queue is full.</summary>
        public ValueTask OfferFromStreamAsync(BusEntry entry, CancellationToken feedCancellation)
        {
            lock (_lock)
            {
                if (_held is not null)
                {
                    _held.Add(entry);
                    return ValueTask.CompletedTask;
                }

                if (!IsAfterStart(entry))
                {
                    return ValueTask.CompletedTask;
                }
            }

            return _queue.Writer.TryWrite(entry) ? ValueTask.CompletedTask : WriteSlowAsync(entry, feedCancellation);
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

        private bool IsAfterStart(BusEntry entry) => _startAfter is null || BusPosition.Compare(entry.Position, _startAfter) > 0;

        private async ValueTask WriteSlowAsync(BusEntry entry, CancellationToken feedCancellation)
        {
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(feedCancellation, _stopping.Token);
            try
            {
                await _queue.Writer.WriteAsync(entry, linked.Token);
            }
            catch (Exception ex) when (ex is ChannelClosedException || (ex is OperationCanceledException && _stopping.IsCancellationRequested))
            {
                // Unsubscribed while waiting for room.
            }
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
