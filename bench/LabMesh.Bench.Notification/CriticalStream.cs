using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Messaging.Events;

namespace LabMesh.Bench.Notification;

/// <summary>When a critical event came off the stream: Stopwatch ticks, wall clock, and the millisecond of its stream position.</summary>
internal readonly record struct Arrival(long Ticks, DateTime Utc, long PositionMs);

/// <summary>
/// One Subscribe stream (team, type <c>labtest.result.critical</c>) read on its own task; every event's
/// arrival is stamped as soon as the client hands it over and kept by the report id its payload names
/// (SubmitResults answers with that id; the baseline's synthetic events carry ids of their own).
/// </summary>
internal sealed class CriticalStream : IAsyncDisposable
{
    private readonly AsyncServerStreamingCall<SubscribeResponse> _call;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentDictionary<string, Arrival> _arrivals = new(StringComparer.Ordinal);
    private readonly TaskCompletionSource _live = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Task _reading;
    private long _events;
    private long _duplicates;
    private long _heartbeats;

    private CriticalStream(NotificationService.NotificationServiceClient client, string team)
    {
        var request = new SubscribeRequest { Filter = new EventFilter { TeamId = team }, HeartbeatInterval = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) };
        request.Filter.Types_.Add(EventTypes.LabTestResultCritical);
        _call = client.Subscribe(request);
        _reading = ReadAsync();
    }

    public long Events => Interlocked.Read(ref _events);

    public long Duplicates => Interlocked.Read(ref _duplicates);

    public long Heartbeats => Interlocked.Read(ref _heartbeats);

    /// <summary>How the stream ended, when it ended before the bench ended it.</summary>
    public Exception? Error { get; private set; }

    /// <summary>Opens the stream and waits for its first heartbeat: from then on the server follows the bus for it.</summary>
    public static async Task<CriticalStream> OpenAsync(NotificationService.NotificationServiceClient client, string team)
    {
        var stream = new CriticalStream(client, team);
        await stream._live.Task.WaitAsync(TimeSpan.FromSeconds(20));
        return stream;
    }

    public bool TryGet(string reportId, out Arrival arrival) => _arrivals.TryGetValue(reportId, out arrival);

    /// <summary>Waits until every one of <paramref name="reportIds"/> arrived, or <paramref name="timeout"/> passed.</summary>
    public async Task WaitForAsync(IReadOnlyCollection<string> reportIds, TimeSpan timeout)
    {
        var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline && Error is null && !reportIds.All(_arrivals.ContainsKey))
        {
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _call.Dispose();
        await _reading;
        _stop.Dispose();
    }

    private async Task ReadAsync()
    {
        await Task.Yield();
        try
        {
            await foreach (var message in _call.ResponseStream.ReadAllAsync(_stop.Token))
            {
                var ticks = Stopwatch.GetTimestamp();
                var utc = DateTime.UtcNow;
                if (message.ItemCase == SubscribeResponse.ItemOneofCase.Heartbeat)
                {
                    Interlocked.Increment(ref _heartbeats);
                    _live.TrySetResult();
                    continue;
                }

                Interlocked.Increment(ref _events);
                var reportId = message.Event.CriticalResult?.ReportId ?? "";
                if (!_arrivals.TryAdd(reportId, new Arrival(ticks, utc, PositionMilliseconds(message.Cursor))))
                {
                    Interlocked.Increment(ref _duplicates);
                }
            }

            if (!_stop.IsCancellationRequested)
            {
                Error = new InvalidOperationException("The server ended the stream.");
                _live.TrySetException(Error);
            }
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
            // Ended by the bench (the call reports itself cancelled or disposed).
        }
        catch (Exception ex)
        {
            Error = ex;
            _live.TrySetException(ex);
        }
    }

    // A Redis stream position is "{milliseconds}-{sequence}": the Redis server's clock when XADD ran.
    private static long PositionMilliseconds(string cursor)
    {
        var dash = cursor.IndexOf('-', StringComparison.Ordinal);
        return long.TryParse(dash < 0 ? cursor : cursor[..dash], NumberStyles.None, CultureInfo.InvariantCulture, out var ms) ? ms : 0;
    }
}
