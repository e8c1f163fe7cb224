using System.Diagnostics;
using System.Threading.Channels;
using LabMesh.Cli.Mesh;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;

namespace LabMesh.Cli.Demo;

/// <summary>An event as it came off the stream, and when (a <see cref="Stopwatch"/> timestamp).</summary>
internal sealed record Arrival(Event Event, string Cursor, long Timestamp);

/// <summary>
/// Reads a subscription in the background, so the demo can go on calling the mesh while events arrive,
/// and hands the events over in order. Knows when the stream is live: its first message (an event or a
/// heartbeat) has arrived.
/// </summary>
internal sealed class StreamTap : IAsyncDisposable
{
    private readonly Channel<Arrival> _events = Channel.CreateUnbounded<Arrival>(new UnboundedChannelOptions { SingleReader = true });
    private readonly TaskCompletionSource _live = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stop;
    private readonly Task _reading;

    public StreamTap(EventFollower follower, CancellationToken cancellationToken)
    {
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _reading = ReadAsync(follower, _stop.Token);
    }

    /// <summary>Completes when the first message arrives; faults when the subscription fails first.</summary>
    public Task Live => _live.Task;

    /// <summary>The next event, or null when none arrives within <paramref name="timeout"/>.</summary>
    /// <exception cref="CallFailedException">the subscription failed for good.</exception>
    public async Task<Arrival?> NextAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        wait.CancelAfter(timeout);
        try
        {
            return await _events.Reader.ReadAsync(wait.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return null;
        }
        catch (ChannelClosedException e) when (e.InnerException is CallFailedException failure)
        {
            throw failure;
        }
    }

    /// <summary>Every event that has already arrived, without waiting.</summary>
    public IEnumerable<Arrival> Arrived()
    {
        while (_events.Reader.TryRead(out var arrival))
        {
            yield return arrival;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _reading;
        }
        catch (OperationCanceledException)
        {
            // Stopped on purpose.
        }

        _stop.Dispose();
    }

    private async Task ReadAsync(EventFollower follower, CancellationToken cancellationToken)
    {
        await Task.Yield();
        try
        {
            await foreach (var item in follower.FollowAsync(cancellationToken))
            {
                var timestamp = Stopwatch.GetTimestamp();
                _live.TrySetResult();
                if (item.ItemCase == SubscribeResponse.ItemOneofCase.Event)
                {
                    _events.Writer.TryWrite(new Arrival(item.Event, item.Cursor, timestamp));
                }
            }
        }
        catch (CallFailedException e)
        {
            _live.TrySetException(e);
            _events.Writer.TryComplete(e);
        }
    }
}
