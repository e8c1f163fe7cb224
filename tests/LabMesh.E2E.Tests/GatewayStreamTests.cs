using System.Diagnostics;
using Grpc.Core;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Testing;
using Xunit.Abstractions;

namespace LabMesh.E2E.Tests;

/// <summary>
/// Subscribe streams through the gateway when what is under them goes away (issue 23 items 1 and 2): the
/// gateway stopped while a stream is open, and the Notification replica carrying a stream killed. Each test
/// leaves the topology whole again.
/// </summary>
[Collection(LocalTopologyCollection.Name)]
public sealed class GatewayStreamTests(LocalTopologyFixture topology, ITestOutputHelper output)
{
    /// <summary>deploy/local's default gateway shutdown timeout (LABMESH_LOCAL_GATEWAY_SHUTDOWN_TIMEOUT), in seconds.</summary>
    private const int ShutdownTimeout = 5;

    /// <summary>
    /// The statuses the Notification README and the Subscribe contract name as "resume from your last cursor"
    /// (and labmesh watch's EventFollower resumes on).
    /// </summary>
    private static readonly StatusCode[] Resumable =
    [
        StatusCode.Unavailable, StatusCode.Internal, StatusCode.Unknown, StatusCode.Cancelled,
        StatusCode.DeadlineExceeded, StatusCode.Aborted, StatusCode.ResourceExhausted,
    ];

    [Fact]
    public async Task GatewayStop_WithASubscribeStreamOpen_EndsWithinTheBound_AndSaysWhatItDid()
    {
        using var mesh = new Mesh(topology.Gateway, "e2e-stop-" + Guid.NewGuid().ToString("N")[..8]);
        await using var stream = await OpenStream.StartAsync(mesh, "");
        var stopped = false;
        try
        {
            var timer = Stopwatch.StartNew();
            var stop = await topology.CtlRunAsync("stop", "gateway");
            timer.Stop();
            stopped = true;
            output.WriteLine($"{stop}\nin {timer.Elapsed.TotalSeconds:F1}s");

            // The same stop_gateway that down.sh runs first: bounded by the gateway's shutdown timeout, then it reports.
            Assert.True(stop.ExitCode == 0, stop.ToString());
            Assert.InRange(timer.Elapsed, TimeSpan.FromSeconds(ShutdownTimeout - 1), TimeSpan.FromSeconds(ShutdownTimeout + 8));
            Assert.Matches(@"gateway stopped in \d+s \(graceful; [1-9]\d* client connection\(s\) were open", stop.Stdout);
            Assert.Null(topology.RunningPid("gateway"));

            // The gateway (Kestrel) closes the connections still open at its shutdown timeout: the client's stream
            // ends UNAVAILABLE, resumable.
            var ended = await stream.EndedAsync(TimeSpan.FromSeconds(10));
            output.WriteLine($"the stream ended with {ended}");
            Assert.Equal(StatusCode.Unavailable, ended);
            Assert.Contains(ended, Resumable);
        }
        finally
        {
            if (stopped)
            {
                await topology.CtlAsync("start", "gateway");
            }
        }
    }

    [Fact]
    public async Task NotificationReplicaKilledUnderAStream_ClientSeesAResumableStatus_AndResumingFromTheCursorLosesNothing()
    {
        const int Before = 3;
        const int During = 5;
        using var mesh = new Mesh(topology.Gateway, "e2e-stream-" + Guid.NewGuid().ToString("N")[..8]);
        var placed = new List<string>();
        await using var first = await OpenStream.StartAsync(mesh, "", "order.placed");
        string? killed = null;
        try
        {
            for (var i = 0; i < Before; i++)
            {
                placed.Add((await mesh.PlaceAsync(Guid.NewGuid().ToString())).Requisition.Id);
            }

            await Eventually.HoldsAsync(() => Task.FromResult(first.Events.Count >= Before), TimeSpan.FromSeconds(30),
                () => $"the stream saw {first.Events.Count} of {Before} orders before the kill", Mesh.PollInterval);

            // The gateway picked a replica for the stream; kill one and see whether the stream outlives it (a
            // heartbeat a second arrives), and if it does the stream is on the other one.
            StatusCode? ended = null;
            foreach (var replica in new[] { "notification-1", "notification-2" })
            {
                await topology.CtlAsync("kill", replica);
                killed = replica;
                var heartbeats = first.Messages;
                ended = await first.EndedOrAliveAsync(heartbeats, TimeSpan.FromSeconds(10));
                if (ended is not null)
                {
                    break;
                }

                await topology.CtlAsync("start", replica);
                killed = null;
            }

            Assert.True(ended is not null, "the stream outlived the kill of either Notification replica");
            output.WriteLine($"killed {killed}: the stream through the gateway ended with {ended} ({first.Failure?.Status.Detail})");

            // The gateway (YARP) resets the client's HTTP/2 stream when the replica under it dies after the response
            // started: with CANCEL when it sees the copy cancelled (what this machine shows), INTERNAL_ERROR when it sees
            // the replica's side fail; gRPC clients read CANCELLED or INTERNAL. The contract names both as resumable.
            Assert.Contains(ended.Value, new[] { StatusCode.Cancelled, StatusCode.Internal });
            Assert.Contains(ended.Value, Resumable);

            // Orders placed while the client is away, on the replica that is left.
            for (var i = 0; i < During; i++)
            {
                placed.Add((await mesh.PlaceAsync(Guid.NewGuid().ToString())).Requisition.Id);
            }

            Assert.NotEqual("", first.Cursor);
            await using var resumed = await OpenStream.StartAsync(mesh, first.Cursor, "order.placed");
            await Eventually.HoldsAsync(() => Task.FromResult(first.Events.Count + resumed.Events.Count >= placed.Count), TimeSpan.FromSeconds(60),
                () => $"seen {first.Events.Count} + {resumed.Events.Count} of {placed.Count}", Mesh.PollInterval);

            // Every order once across the two streams: none lost in the gap, none repeated by the resumption.
            var seen = first.Events.Concat(resumed.Events).ToList();
            Assert.Equal(placed.Order(), seen.Select(e => e.RequisitionId).Order());
            Assert.Equal(seen.Count, seen.Select(e => e.Id).Distinct().Count());
        }
        finally
        {
            if (killed is not null)
            {
                await topology.CtlAsync("start", killed);
            }
        }
    }

    /// <summary>One Subscribe stream through the gateway, read in the background; no resumption of its own.</summary>
    private sealed class OpenStream : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly TaskCompletionSource _live = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource<StatusCode> _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly List<Event> _events = [];
        private readonly Task _reading;
        private int _messages;

        private OpenStream(Mesh mesh, string resumeAfter, string[] types)
        {
            var request = new SubscribeRequest
            {
                Filter = new EventFilter(),
                ResumeAfter = resumeAfter,
                HeartbeatInterval = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
            };
            request.Filter.Types_.AddRange(types);
            _reading = Task.Run(() => ReadAsync(mesh, request));
        }

        public IReadOnlyList<Event> Events
        {
            get
            {
                lock (_events)
                {
                    return [.. _events];
                }
            }
        }

        /// <summary>Messages (events and heartbeats) received so far.</summary>
        public int Messages => Volatile.Read(ref _messages);

        /// <summary>The last cursor received.</summary>
        public string Cursor { get; private set; } = "";

        public RpcException? Failure { get; private set; }

        public static async Task<OpenStream> StartAsync(Mesh mesh, string resumeAfter, params string[] types)
        {
            var stream = new OpenStream(mesh, resumeAfter, types);
            await stream._live.Task.WaitAsync(TimeSpan.FromSeconds(30));
            return stream;
        }

        /// <summary>The status the stream ended with, waiting at most <paramref name="within"/>.</summary>
        public Task<StatusCode> EndedAsync(TimeSpan within) => _ended.Task.WaitAsync(within);

        /// <summary>
        /// The status if the stream ends within <paramref name="within"/>; null once two more messages than
        /// <paramref name="messagesBefore"/> arrived (heartbeats: it is alive).
        /// </summary>
        public async Task<StatusCode?> EndedOrAliveAsync(int messagesBefore, TimeSpan within)
        {
            var timer = Stopwatch.StartNew();
            while (timer.Elapsed < within)
            {
                if (_ended.Task.IsCompleted)
                {
                    return await _ended.Task;
                }

                if (Messages >= messagesBefore + 2)
                {
                    return null;
                }

                await Task.Delay(50);
            }

            throw new TimeoutException($"the stream neither ended nor sent heartbeats within {within}");
        }

        private async Task ReadAsync(Mesh mesh, SubscribeRequest request)
        {
            try
            {
                using var call = mesh.Notifications.Subscribe(request, cancellationToken: _stop.Token);
                while (await call.ResponseStream.MoveNext(_stop.Token))
                {
                    var message = call.ResponseStream.Current;
                    if (message.Event is { } e)
                    {
                        lock (_events)
                        {
                            _events.Add(e);
                        }
                    }

                    if (message.Cursor.Length > 0)
                    {
                        Cursor = message.Cursor;
                    }

                    Interlocked.Increment(ref _messages);
                    _live.TrySetResult();
                }

                _ended.TrySetResult(StatusCode.OK);
            }
            catch (RpcException e) when (!_stop.IsCancellationRequested)
            {
                Failure = e;
                _live.TrySetException(e);
                _ended.TrySetResult(e.StatusCode);
            }
            catch (Exception e) when (e is OperationCanceledException or RpcException)
            {
                _ended.TrySetResult(StatusCode.Cancelled);
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await _reading.WaitAsync(TimeSpan.FromSeconds(10));
            _stop.Dispose();
        }
    }
}
