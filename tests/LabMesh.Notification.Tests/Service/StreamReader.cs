using System.Threading.Channels;
using Grpc.Core;
using LabMesh.Contracts.Notification.V1;

namespace LabMesh.Notification.Tests.Service;

/// <summary>Reads a Subscribe stream in the background into a queue, keeping how it ended.</summary>
public sealed class StreamReader : IAsyncDisposable
{
    private readonly AsyncServerStreamingCall<SubscribeResponse> _call;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _reading;

    private StreamReader(AsyncServerStreamingCall<SubscribeResponse> call)
    {
        _call = call;
        _reading = ReadAsync();
    }

    public Channel<SubscribeResponse> Messages { get; } = Channel.CreateUnbounded<SubscribeResponse>();

    /// <summary>How the stream ended: null while it runs or when it ended OK.</summary>
    public RpcException? Error { get; private set; }

    /// <summary>Starts reading without waiting for anything (a resumed stream replays before its first heartbeat).</summary>
    public static StreamReader Start(NotificationService.NotificationServiceClient client, SubscribeRequest request) =>
        new(client.Subscribe(request));

    public static async Task<StreamReader> OpenAsync(NotificationService.NotificationServiceClient client, SubscribeRequest request)
    {
        var reader = new StreamReader(client.Subscribe(request));

        // The server sends its first heartbeat once it has subscribed; from then on nothing is missed.
        await reader.NextAsync(m => m.ItemCase == SubscribeResponse.ItemOneofCase.Heartbeat);
        return reader;
    }

    /// <summary>The next message that matches <paramref name="match"/>; others are dropped.</summary>
    public async Task<SubscribeResponse> NextAsync(Func<SubscribeResponse, bool> match)
    {
        using var timeout = new CancellationTokenSource(NotificationMesh.Timeout);
        while (true)
        {
            var message = await Messages.Reader.ReadAsync(timeout.Token);
            if (match(message))
            {
                return message;
            }
        }
    }

    /// <summary>The next <paramref name="count"/> events, skipping heartbeats.</summary>
    public async Task<List<SubscribeResponse>> EventsAsync(int count)
    {
        var events = new List<SubscribeResponse>(count);
        while (events.Count < count)
        {
            events.Add(await NextAsync(m => m.ItemCase == SubscribeResponse.ItemOneofCase.Event));
        }

        return events;
    }

    /// <summary>The events queued right now (heartbeats dropped).</summary>
    public List<SubscribeResponse> DrainEvents()
    {
        var events = new List<SubscribeResponse>();
        while (Messages.Reader.TryRead(out var message))
        {
            if (message.ItemCase == SubscribeResponse.ItemOneofCase.Event)
            {
                events.Add(message);
            }
        }

        return events;
    }

    /// <summary>Ends the call from the client side and waits for the reader to stop.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _call.Dispose();
        try
        {
            await _reading.WaitAsync(NotificationMesh.Timeout);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task ReadAsync()
    {
        try
        {
            await foreach (var message in _call.ResponseStream.ReadAllAsync(_stop.Token))
            {
                Messages.Writer.TryWrite(message);
            }
        }
        catch (RpcException ex) when (ex.StatusCode != StatusCode.Cancelled || !_stop.IsCancellationRequested)
        {
            Error = ex;
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
        }
        finally
        {
            Messages.Writer.TryComplete();
        }
    }
}
