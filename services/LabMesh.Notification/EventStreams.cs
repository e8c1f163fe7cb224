using System.Diagnostics;
using System.Threading.Channels;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Core.Errors;
using LabMesh.Messaging.Events;
using LabMesh.Messaging.Redis;
using LabMesh.Messaging.Storage;
using LabMesh.Core.Diagnostics;
using Microsoft.Extensions.Options;

namespace LabMesh.Notification;

/// <summary>What one subscriber or page is limited to: always one team, optionally types and a requisition.</summary>
public sealed record EventSelection(string TeamId, IReadOnlySet<string> Types, string? RequisitionId)
{
    public bool Matches(Event evt) =>
        evt.TeamId == TeamId
        && (Types.Count == 0 || Types.Contains(evt.Type))
        && (RequisitionId is null || evt.RequisitionId == RequisitionId);
}

/// <summary>
/// Subscribe and ListEvents over the <see cref="IEventBus"/>. A stream is live from the moment it
/// subscribes; with a resume point it first replays the bus from there, and live events at or before
/// the last replayed position are dropped, so the client sees every event once, in bus order. An event id
/// the stream sent already (among its last 4,096) is not sent again: a critical result is published twice,
/// at once and by the outbox relay, and the bus keeps one entry only within its dedup window. The
/// cursor a client gets is the bus position up to which it has seen every event that matches.
/// </summary>
public sealed partial class EventStreams(
    IEventBus bus, IOptions<NotificationOptions> options, StreamAudit audit, TimeProvider time, IHostApplicationLifetime lifetime, ILogger<EventStreams> logger)
{
    private const int ReplayPage = 500;

    /// <summary>ListEvents looks at no more than this many events per call, matching or not.</summary>
    public const int MaxScan = 10_000;

    /// <summary>The bus position after which to start: a cursor as given, or an event id looked up; null for "now".</summary>
    public async Task<string?> ResolveAsync(string? resumeAfter, string field, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(resumeAfter))
        {
            return null;
        }

        if (BusPosition.IsValid(resumeAfter))
        {
            // A position of the other kind of bus (a Redis stream id given to the in-process bus) is a bad cursor, not a fault.
            if (!bus.IsPosition(resumeAfter))
            {
                throw new InvalidArgumentException(field, "is neither a cursor from this service nor an event id.");
            }

            // Events after it that the bus has dropped (its retention bound) would be skipped without a sign.
            return await bus.RetainsAfterAsync(resumeAfter, cancellationToken) ? resumeAfter
                : throw new OutOfRangeException(field, "CURSOR_EXPIRED",
                    "is older than the events this service still keeps: some after it are gone. Start again without it " +
                    "(and read current state through the services), or from a more recent cursor.");
        }

        if (resumeAfter.Length > 64 || !Guid.TryParse(resumeAfter, out _))
        {
            throw new InvalidArgumentException(field, "is neither a cursor from this service nor an event id.");
        }

        return await bus.FindPositionAsync(resumeAfter, cancellationToken)
            ?? throw new NotFoundException("Event", resumeAfter);
    }

    /// <summary>Runs one Subscribe stream until the client goes away or falls too far behind.</summary>
    public async Task RunAsync(
        EventSelection selection, string subscriber, string? startAfter, TimeSpan heartbeat, IServerStreamWriter<SubscribeResponse> writer,
        ServerCallContext context)
    {
        // A stopping host ends its streams at once (UNAVAILABLE with the cursor), instead of waiting for them.
        using var ending = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.ApplicationStopping);
        var cancellationToken = ending.Token;
        var settings = options.Value;
        var buffer = Channel.CreateBounded<BusEntry>(new BoundedChannelOptions(settings.SubscriberBuffer) { SingleReader = true, SingleWriter = true });
        var overflow = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        string? lastSkipped = null;

        using var subscription = bus.Subscribe((entry, _) =>
        {
            if (!selection.Matches(entry.Event))
            {
                Volatile.Write(ref lastSkipped, entry.Position);
            }
            else if (!overflow.Task.IsCompleted && !buffer.Writer.TryWrite(entry))
            {
                overflow.TrySetResult();
            }

            return Task.CompletedTask;
        });

        var stream = new StreamState(writer, overflow.Task, settings.SlowSubscriberGrace, context);
        stream.Cursor = startAfter;
        LogSubscribed(logger, subscriber, selection.TeamId, startAfter ?? "now");
        try
        {
            if (startAfter is not null)
            {
                await ReplayAsync(selection, subscriber, stream, cancellationToken);
            }

            using var idle = new PeriodicTimer(heartbeat);
            Task<bool>? ready = null;
            Task<bool>? tick = null;
            while (true)
            {
                stream.ThrowIfOverflowed();
                if (buffer.Reader.TryRead(out var entry))
                {
                    if (stream.Cursor is null || BusPosition.Compare(entry.Position, stream.Cursor) > 0)
                    {
                        await SendEventAsync(entry, subscriber, stream);
                    }

                    continue;
                }

                // Both waits outlive an iteration that the other one ended: neither may be asked twice at once.
                ready ??= buffer.Reader.WaitToReadAsync(cancellationToken).AsTask();
                tick ??= idle.WaitForNextTickAsync(cancellationToken).AsTask();
                await Task.WhenAny(ready, tick, overflow.Task);
                if (ready.IsCompleted)
                {
                    await ready;
                    ready = null;
                }

                if (tick.IsCompleted)
                {
                    await tick;
                    tick = null;
                    if (buffer.Reader.Count == 0)
                    {
                        await SendHeartbeatAsync(stream, () => Volatile.Read(ref lastSkipped), buffer.Reader);
                    }
                }
            }
        }
        catch (SlowSubscriberException)
        {
            LogSlowSubscriber(logger, subscriber, settings.SubscriberBuffer, stream.LastEventId ?? "none");
            throw new ResourceExhaustedException(
                "SUBSCRIBER_TOO_SLOW",
                $"The subscriber fell more than {settings.SubscriberBuffer} events behind. Last event sent: {stream.LastEventId ?? "none"}; " +
                $"subscribe again with resume_after=\"{stream.Cursor}\".",
                new Dictionary<string, string> { ["last_event_id"] = stream.LastEventId ?? "", ["last_cursor"] = stream.Cursor ?? "" });
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            if (lifetime.ApplicationStopping.IsCancellationRequested && !context.CancellationToken.IsCancellationRequested)
            {
                throw new RpcException(new Status(
                    StatusCode.Unavailable, $"The server is shutting down; subscribe again (any replica) with resume_after=\"{stream.Cursor}\"."));
            }

            // The client went away.
        }
    }

    /// <summary>
    /// A page of the team's events after <paramref name="after"/> (null: the oldest kept): at most
    /// <paramref name="pageSize"/> events and at most <paramref name="maxBytes"/> of them as encoded in the response,
    /// except that a page holds at least one event. The cursor is the last event looked at and kept in the page, so
    /// an event left out for the byte budget comes first on the next page.
    /// </summary>
    public async Task<ListEventsResponse> ListAsync(EventSelection selection, string? after, int pageSize, int maxBytes, CancellationToken cancellationToken)
    {
        var response = new ListEventsResponse();
        var position = after;
        var scanned = 0;
        var budget = new PageBudget(maxBytes);
        var full = false;
        while (!full && scanned < MaxScan)
        {
            var page = await bus.ReadAsync(position, Math.Min(ReplayPage, MaxScan - scanned), cancellationToken);
            foreach (var entry in page)
            {
                if (selection.Matches(entry.Event))
                {
                    var item = new StreamEvent { Event = entry.Event, Cursor = entry.Position };
                    if (!budget.TryAdd(item))
                    {
                        full = true;
                        break;
                    }

                    response.Events.Add(item);
                }

                scanned++;
                position = entry.Position;
                if (response.Events.Count == pageSize)
                {
                    full = true;
                    break;
                }
            }

            if (page.Count < ReplayPage)
            {
                break;
            }
        }

        response.NextCursor = position ?? "";
        return response;
    }

    private Task SendHeartbeatAsync(StreamState stream, Func<string?> lastSkipped, ChannelReader<BusEntry> buffer)
    {
        // Read the skipped position before looking at the buffer: every match before it was buffered
        // first, so an empty buffer then means the client has all of them and may resume after it.
        var skipped = lastSkipped();
        if (skipped is not null && buffer.Count == 0 && (stream.Cursor is null || BusPosition.Compare(skipped, stream.Cursor) > 0))
        {
            stream.Cursor = skipped;
        }

        return stream.WriteAsync(new SubscribeResponse
        {
            Heartbeat = new Heartbeat { SentAt = Timestamp.FromDateTimeOffset(time.GetUtcNow()) },
            Cursor = stream.Cursor ?? "",
        });
    }

    private async Task ReplayAsync(EventSelection selection, string subscriber, StreamState stream, CancellationToken cancellationToken)
    {
        while (true)
        {
            var page = await bus.ReadAsync(stream.Cursor, ReplayPage, cancellationToken);
            foreach (var entry in page)
            {
                if (selection.Matches(entry.Event))
                {
                    await SendEventAsync(entry, subscriber, stream);
                }
                else
                {
                    stream.Cursor = entry.Position;
                }
            }

            if (page.Count < ReplayPage)
            {
                return;
            }
        }
    }

    private async Task SendEventAsync(BusEntry entry, string subscriber, StreamState stream)
    {
        if (!stream.FirstSight(entry.Event.Id))
        {
            // The same event at a second position (a fast-path publish and the outbox relay's, once the bus's own
            // dedup window had passed): the subscriber has it; only the cursor moves on.
            stream.Cursor = entry.Position;
            return;
        }

        // The delivery to this subscriber, a child of the span that caused the event: the end of its trace.
        using var span = LabMeshTelemetry.StartForEvent("deliver", ActivityKind.Producer, entry.Event);
        span?.SetTag("messaging.operation.type", "send");
        span?.SetTag("messaging.destination.name", "labmesh.notification.v1.NotificationService/Subscribe");
        await stream.WriteAsync(new SubscribeResponse { Event = entry.Event, Cursor = entry.Position });
        stream.Cursor = entry.Position;
        stream.LastEventId = entry.Event.Id;
        if (entry.Event.Type is EventTypes.LabTestResultCritical or EventTypes.CriticalResultEscalated
            && CriticalSource.CriticalIdOf(entry.Event) is { Length: > 0 } criticalId)
        {
            audit.StreamNotified(criticalId, subscriber, entry.Event.Type);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Subscriber {Subscriber} of team {TeamId} follows events after {Start}")]
    private static partial void LogSubscribed(ILogger logger, string subscriber, string teamId, string start);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Subscriber {Subscriber} fell more than {Buffer} events behind and is cut off after event {LastEventId}")]
    private static partial void LogSlowSubscriber(ILogger logger, string subscriber, int buffer, string lastEventId);

    private sealed class SlowSubscriberException : Exception;

    /// <summary>One stream's writer, its cursor, and the overflow that ends it.</summary>
    private sealed class StreamState(IServerStreamWriter<SubscribeResponse> writer, Task overflow, TimeSpan grace, ServerCallContext context)
    {
        private const int RecentIds = 4096;
        private readonly HashSet<string> _seen = new(StringComparer.Ordinal);
        private readonly Queue<string> _order = new();

        public string? Cursor { get; set; }

        public string? LastEventId { get; set; }

        /// <summary>True the first time an event id is sent on this stream (of the last <see cref="RecentIds"/>).</summary>
        public bool FirstSight(string eventId)
        {
            if (!_seen.Add(eventId))
            {
                return false;
            }

            _order.Enqueue(eventId);
            if (_order.Count > RecentIds)
            {
                _seen.Remove(_order.Dequeue());
            }

            return true;
        }

        public void ThrowIfOverflowed()
        {
            if (overflow.IsCompleted)
            {
                throw new SlowSubscriberException();
            }
        }

        /// <summary>
        /// Writes one message. When the buffer overflows while the client is not reading, the client
        /// gets the grace period to take this message (then the status); after that the
        /// HTTP/2 stream is reset.
        /// </summary>
        public async Task WriteAsync(SubscribeResponse message)
        {
            ThrowIfOverflowed();
            var write = writer.WriteAsync(message);
            if (!write.IsCompleted && await Task.WhenAny(write, overflow) != write
                && await Task.WhenAny(write, Task.Delay(grace, context.CancellationToken)) != write)
            {
                context.GetHttpContext().Abort();
                throw new OperationCanceledException("The subscriber stopped reading.", context.CancellationToken);
            }

            await write;
        }
    }
}
