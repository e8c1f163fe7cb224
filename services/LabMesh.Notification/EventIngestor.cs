using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Threading.Channels;
using LabMesh.Notification.Webhooks;
using LabMesh.Messaging.Events;
using LabMesh.Messaging.Redis;
using LabMesh.Core.Diagnostics;
using Microsoft.Extensions.Options;

namespace LabMesh.Notification;

/// <summary>
/// Turns every published event into what the Notification service owes it (webhook deliveries, an
/// open critical result) through <see cref="NotificationStore.IngestAsync"/>.
/// <para>
/// With Redis, the replicas share a consumer group on the event stream: each entry goes to one
/// replica, which acknowledges it only after the store committed; an entry a replica took and never
/// acknowledged (it died) is taken over by another after <see cref="NotificationOptions.ClaimIdle"/>.
/// The store's unique (event, endpoint) key makes a repeat harmless. A critical event on pub/sub wakes
/// the reader at once. Without Redis (the all-in-one host), it follows the in-process bus, holding
/// what it has not stored yet until the store takes it.
/// </para>
/// </summary>
public sealed partial class EventIngestor : BackgroundService
{
    private const int BatchSize = 200;

    // Reads that retry the consumer's own failed batch before newer entries, after a failure.
    private const int OwnRetries = 10;

    private static readonly TimeSpan LagReadInterval = TimeSpan.FromSeconds(5);
    private long _lagReadAt = long.MinValue / 2;
    private readonly NotificationStore _store;
    private readonly IEventBus _bus;
    private readonly RedisConnection? _redis;
    private readonly NotificationOptions _options;
    private readonly RetrySchedule _schedule;
    private readonly WebhookDeliveryWorker _deliveries;
    private readonly ILogger _logger;
    private readonly WakeSignal _wake = new();

    public EventIngestor(
        NotificationStore store,
        IEventBus bus,
        IOptions<NotificationOptions> options,
        RetrySchedule schedule,
        WebhookDeliveryWorker deliveries,
        ILogger<EventIngestor> logger,
        RedisConnection? redis = null)
    {
        _store = store;
        _bus = bus;
        _redis = redis;
        _options = options.Value;
        _schedule = schedule;
        _deliveries = deliveries;
        _logger = logger;
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        _redis is not null ? FollowConsumerGroupAsync(_redis, stoppingToken) : FollowInProcessBusAsync(stoppingToken);

    private async Task FollowConsumerGroupAsync(RedisConnection redis, CancellationToken stoppingToken)
    {
        var consumer = _options.EffectiveConsumerName;
        LogStarted(_logger, "Redis consumer group " + _options.ConsumerGroup, consumer);
        IDisposable? wakeOnCritical = null;
        var failures = 0;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var more = false;
                try
                {
                    wakeOnCritical ??= await redis.OnCriticalEventAsync(_wake.Set, stoppingToken);
                    // After a failed batch, that batch again before anything newer, so events are ingested in order;
                    // a batch that keeps failing (one entry that can never be ingested) stops holding the rest back
                    // after a few tries and is then retried every ClaimIdle, as any stuck entry is.
                    var retryOwn = failures is > 0 and <= OwnRetries;
                    var stored = await redis.ReadGroupEventsAsync(_options.ConsumerGroup, consumer, BatchSize, _options.ClaimIdle, retryOwn, stoppingToken);
                    if (stored.Count > 0)
                    {
                        var entries = new List<BusEntry>(stored.Count);
                        foreach (var item in stored)
                        {
                            if (TryParse(item) is { } entry)
                            {
                                entries.Add(entry);
                            }
                        }

                        await IngestAsync(entries, stoppingToken);
                        await redis.AcknowledgeEventsAsync(_options.ConsumerGroup, [.. stored.Select(s => s.Position)], stoppingToken);
                    }

                    more = stored.Count == BatchSize;
                    if (failures > 0)
                    {
                        LogRecovered(_logger, failures);
                        failures = 0;
                    }
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    // Unacknowledged entries stay pending for this consumer; its next reads take them again
                    // first (or another replica does, after ClaimIdle).
                    failures++;
                    if (failures == 1 || failures % 50 == 0)
                    {
                        LogFailed(_logger, failures, ex);
                    }
                }

                await ReadLagAsync(redis, stoppingToken);
                if (!more)
                {
                    // While Redis is down a read fails at once in this process (the client fails fast while disconnected),
                    // so retrying every half second costs nothing and resumes ingest within that of Redis answering.
                    var wait = failures == 0 ? _options.IngestPollInterval : TimeSpan.FromMilliseconds(Math.Min(500, 100 * failures));
                    await _wake.WaitAsync(wait, stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
        finally
        {
            wakeOnCritical?.Dispose();
        }
    }

    /// <summary>
    /// The consumer group's lag and pending entries, read at most every <see cref="LagReadInterval"/> for
    /// <c>labmesh.events.consumer.lag</c> and <c>labmesh.events.consumer.pending</c>; a failed read keeps the last figures.
    /// </summary>
    private async Task ReadLagAsync(RedisConnection redis, CancellationToken stoppingToken)
    {
        if (Environment.TickCount64 - _lagReadAt < LagReadInterval.TotalMilliseconds)
        {
            return;
        }

        _lagReadAt = Environment.TickCount64;
        try
        {
            if (await redis.ConsumerGroupStateAsync(_options.ConsumerGroup, stoppingToken) is { } state)
            {
                ConsumerGauges.Set(_options.ConsumerGroup, state.Lag, state.Pending);
            }
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested && ex is not OperationCanceledException)
        {
            // Redis is down: the ingest loop reports it; the gauges keep what they last read.
        }
    }

    private async Task FollowInProcessBusAsync(CancellationToken stoppingToken)
    {
        LogStarted(_logger, "the in-process event bus", _options.EffectiveConsumerName);
        var queue = Channel.CreateUnbounded<BusEntry>(new UnboundedChannelOptions { SingleReader = true });
        using var subscription = _bus.Subscribe((entry, _) =>
        {
            queue.Writer.TryWrite(entry);
            return Task.CompletedTask;
        });

        var batch = new List<BusEntry>(BatchSize);
        var failures = 0;
        try
        {
            // What the bus took before this subscription (other services' relays start first) is in its
            // log; ingesting an event twice adds nothing.
            string? position = null;
            while (true)
            {
                var earlier = await _bus.ReadAsync(position, BatchSize, stoppingToken);
                foreach (var entry in earlier)
                {
                    queue.Writer.TryWrite(entry);
                }

                if (earlier.Count < BatchSize)
                {
                    break;
                }

                position = earlier[^1].Position;
            }

            while (await queue.Reader.WaitToReadAsync(stoppingToken))
            {
                while (batch.Count < BatchSize && queue.Reader.TryRead(out var entry))
                {
                    batch.Add(entry);
                }

                try
                {
                    await IngestAsync(batch, stoppingToken);
                    batch.Clear();
                    failures = 0;
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    // The batch is kept and tried again: the store is the only copy that survives.
                    failures++;
                    LogFailed(_logger, failures, ex);
                    await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(5000, 100 * failures)), stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    private async Task IngestAsync(List<BusEntry> entries, CancellationToken cancellationToken)
    {
        if (entries.Count == 0)
        {
            return;
        }

        // One consumer span per event, each the child of the span that caused it (its envelope's traceparent),
        // around the one transaction that ingests the batch.
        var spans = new List<Activity>(entries.Count);
        foreach (var entry in entries)
        {
            if (LabMeshTelemetry.StartForEvent("ingest", ActivityKind.Consumer, entry.Event, makeCurrent: false) is { } span)
            {
                span.SetTag("messaging.operation.type", "process");
                span.SetTag("messaging.batch.message_count", entries.Count);
                spans.Add(span);
            }
        }

        try
        {
            var deliveries = await _store.IngestAsync(entries, _schedule, cancellationToken);
            if (deliveries > 0)
            {
                _deliveries.Nudge();
            }
        }
        catch (Exception ex)
        {
            spans.ForEach(span => span.SetStatus(ActivityStatusCode.Error, ex.GetType().Name));
            throw;
        }
        finally
        {
            spans.ForEach(span => span.Dispose());
        }
    }

    private BusEntry? TryParse(StoredEvent item)
    {
        var entry = RedisEventBus.Decode(item);
        if (entry is null)
        {
            LogUnreadable(_logger, item.Position);
        }

        return entry;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Notification ingest follows {Source} as {Consumer}")]
    private static partial void LogStarted(ILogger logger, string source, string consumer);

    [LoggerMessage(Level = LogLevel.Error, Message = "Notification ingest failed ({Failures} in a row); the events stay pending and are taken again")]
    private static partial void LogFailed(ILogger logger, int failures, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Notification ingest works again after {Failures} failures")]
    private static partial void LogRecovered(ILogger logger, int failures);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Notification ingest skipped an unreadable stream entry at {Position}")]
    private static partial void LogUnreadable(ILogger logger, string position);
}

/// <summary>
/// <c>labmesh.events.consumer.lag</c> (stream entries the consumer group has not been handed yet) and
/// <c>labmesh.events.consumer.pending</c> (handed out, not acknowledged), by <c>messaging.consumer.group.name</c>,
/// as the replicas of this process last read them from Redis.
/// </summary>
internal static class ConsumerGauges
{
    private static readonly ConcurrentDictionary<string, (long? Lag, long Pending)> Groups = new(StringComparer.Ordinal);

    static ConsumerGauges()
    {
        LabMeshTelemetry.Meter.CreateObservableGauge(
            "labmesh.events.consumer.lag",
            () => Groups.Where(g => g.Value.Lag is not null).Select(g => new Measurement<long>(g.Value.Lag!.Value, Tag(g.Key))),
            "{event}", "Events on the stream the Notification consumer group has not been handed yet.");
        LabMeshTelemetry.Meter.CreateObservableGauge(
            "labmesh.events.consumer.pending",
            () => Groups.Select(g => new Measurement<long>(g.Value.Pending, Tag(g.Key))),
            "{event}", "Events handed to Notification's consumers and not acknowledged yet.");
    }

    public static void Set(string group, long? lag, long pending) => Groups[group] = (lag, pending);

    private static KeyValuePair<string, object?> Tag(string group) => new("messaging.consumer.group.name", group);
}
