using System.Diagnostics;
using System.Net.Http.Headers;
using Google.Protobuf.WellKnownTypes;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Notification.Webhooks;
using LabMesh.Messaging.Events;
using LabMesh.Messaging.Redis;
using LabMesh.Testing;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using static LabMesh.Bench.Notification.Report;

namespace LabMesh.Bench.Notification;

/// <summary>One drain of N webhooks into the receiver.</summary>
internal sealed record DeliveryRun(
    string Side,
    int Expected,
    int Delivered,
    int Duplicates,
    int Requests,
    TimeSpan Elapsed,
    double FirstMs,
    double HalfMs,
    double NinetyMs,
    int MaxInHandler,
    int Connections,
    CpuUse Cpu)
{
    public double PerSecond => Delivered / Elapsed.TotalSeconds;

    /// <summary>Deliveries per second between the 10th and the 90th percent delivered (the steady part).</summary>
    public double SteadyPerSecond { get; init; } = double.NaN;

    /// <summary>The JIT's settling before the window: how long it took and what was compiled meanwhile.</summary>
    public string Settled { get; init; } = "";

    /// <summary>This process's CPU in the window per delivery, in microseconds (the whole process: services, client, receiver).</summary>
    public double CpuPerDeliveryUs => Cpu.MicrosecondsPer(Math.Max(Delivered, 1));
}

/// <summary>When the service side's events had all been turned into deliveries (consumer group empty), and what the store holds after.</summary>
internal sealed record IngestTimeline(double PublishedMs, double IngestedMs, long PendingAfter, long DeadLetterAfter, string ThreadPool);

/// <summary>
/// Part 2. One webhook endpoint for the team, pointing at <see cref="WebhookSink"/>. Measured side: N
/// events (<c>order.status_changed</c>) published on the bus from a bus of the bench's own, until the
/// receiver has N distinct webhook ids, with both replicas ingesting (Redis consumer group) and
/// delivering (store leases). Baseline: the same N bodies, with the same Standard Webhooks headers,
/// POSTed by one HttpClient with the delivery concurrency of one replica (and, as a diagnostic, two).
/// </summary>
internal sealed class WebhookBench : IAsyncDisposable
{
    public const string Team = "bench-hooks";

    private const int PublishConcurrency = 16;
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(180);

    private readonly BenchMesh _mesh;
    private readonly NotificationBenchOptions _options;
    private readonly Action<string> _log;
    private readonly NotificationService.NotificationServiceClient _admin;
    private readonly RedisConnection _redis;
    private readonly RedisEventBus _bus;
    private readonly HttpClient _http;
    private WebhookSink? _sink;
    private string _secret = "";
    private int _sequence;

    public WebhookBench(BenchMesh mesh, NotificationBenchOptions options, Action<string> log)
    {
        _mesh = mesh;
        _options = options;
        _log = log;
        _admin = new NotificationService.NotificationServiceClient(mesh.Invoker(mesh.ReplicaA, Team, "bench-admin"));
        _redis = new RedisConnection(Options.Create(new RedisOptions { Configuration = mesh.Redis.Configuration }), NullLogger<RedisConnection>.Instance);
        _bus = new RedisEventBus(_redis, NullLogger<RedisEventBus>.Instance);

        // As the delivery worker's client (WebhookTargetPolicy.CreateHandler) without its connect-time
        // address check: no proxy, no redirects, no cookies, the same user agent.
        _http = new HttpClient(new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            UseCookies = false,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        })
        { Timeout = TimeSpan.FromSeconds(15) };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("LabMesh-Webhooks", "1.0"));
    }

    private WebhookSink Sink => _sink ?? throw new InvalidOperationException("Not set up.");

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    /// <summary>Starts the receiver, creates the endpoint, and warms up both sides; nothing here is measured.</summary>
    public async Task SetUpAsync()
    {
        _sink = await WebhookSink.StartAsync();
        var request = new CreateWebhookEndpointRequest { RequestId = "bench-endpoint", Url = Sink.Url, Description = "bench receiver" };
        request.EventTypes.Add(EventTypes.OrderStatusChanged);
        var created = await _admin.CreateWebhookEndpointAsync(request, deadline: Deadline);
        _secret = created.Secret;
        _log($"   receiver {Sink.Url} (Kestrel, HTTP/1.1, answers 200); endpoint {created.Endpoint.Id} for {EventTypes.OrderStatusChanged}");

        var warmupEvents = _options.WebhookWarmupEvents;
        var warmup = Events(warmupEvents);
        var round = Sink.Reset(warmupEvents);
        await PublishAllAsync(warmup);
        await round.Complete.WaitAsync(TimeSpan.FromSeconds(120));
        await PostAllAsync(Bodies(warmup), _options.DeliveryConcurrency, Sink.Reset(warmupEvents));
        _log($"   warm-up: {warmupEvents} events delivered by the service, {warmupEvents} posted by the baseline client, not measured");
    }

    /// <summary>
    /// One round: the baseline at one replica's concurrency and at both replicas', then the service, each with the
    /// same N fresh events. Before each side's window the JIT settles (<see cref="CpuWindow.SettleJitAsync"/>: nothing
    /// compiled for 500 ms, at most 10 s), so neither side starts while the other's promotions are still compiling.
    /// </summary>
    public async Task<(DeliveryRun Baseline, DeliveryRun BaselineBoth, DeliveryRun Service, IngestTimeline Ingest)> RunAsync()
    {
        var events = Events(_options.WebhookEvents);
        var bodies = Bodies(events);
        var settled = await SettleAsync();
        var baseline = await PostAllAsync(bodies, _options.DeliveryConcurrency, Sink.Reset(events.Count)) with { Settled = settled };
        settled = await SettleAsync();
        var both = await PostAllAsync(bodies, 2 * _options.DeliveryConcurrency, Sink.Reset(events.Count)) with { Settled = settled };
        settled = await SettleAsync();
        var (service, ingest) = await DeliverAsync(events);
        return (baseline, both, service with { Settled = settled }, ingest);
    }

    private static async Task<string> SettleAsync()
    {
        var (waited, methods, quiet) = await CpuWindow.SettleJitAsync(TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(10));
        return F("{0:0.0} s, {1} compiled{2}", waited.TotalSeconds, methods, quiet ? "" : ", still compiling at the bound");
    }

    /// <summary>One event every 50 ms for <paramref name="duration"/>: from the publish call to the receiver, per event (ms).</summary>
    public async Task<(Distribution Latency, int Published, int Missing)> TrickleAsync(TimeSpan duration)
    {
        var round = Sink.Reset(int.MaxValue);
        var published = new List<(string EventId, long Ticks)>();
        await OpenLoop.RunAsync(20, TimeSpan.Zero, duration, 1000, async (_, _) =>
        {
            var evt = Events(1)[0];
            var ticks = Stopwatch.GetTimestamp();
            await _bus.PublishAsync(evt, CancellationToken.None);
            lock (published)
            {
                published.Add((evt.Id, ticks));
            }
        });

        var deadline = Stopwatch.GetTimestamp() + (5 * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < deadline && published.Any(p => !round.EventArrivals.ContainsKey(p.EventId)))
        {
            await Task.Delay(20);
        }

        var latencies = published.Where(p => round.EventArrivals.ContainsKey(p.EventId)).Select(p => Distribution.Ms(round.EventArrivals[p.EventId] - p.Ticks)).ToList();
        return (Distribution.Of(latencies), published.Count, published.Count - latencies.Count);
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        if (_sink is not null)
        {
            await _sink.DisposeAsync();
        }

        await _bus.DisposeAsync();
        await _redis.DisposeAsync();
    }

    private async Task<(DeliveryRun Run, IngestTimeline Ingest)> DeliverAsync(List<Event> events)
    {
        var round = Sink.Reset(events.Count);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (_options.Backlog)
        {
            round.Gate = gate.Task;
        }

        var pool = new ThreadPoolWatch();
        var cpu = new CpuWindow();
        var started = Stopwatch.GetTimestamp();

        // Watches the consumer group: it is empty once every event became its deliveries in the store.
        using var stopWatching = new CancellationTokenSource();
        var publishing = PublishAllAsync(events);
        var ingested = WatchIngestAsync(started, publishing, stopWatching.Token);
        await publishing;
        var published = Stopwatch.GetElapsedTime(started);
        if (_options.Backlog)
        {
            // Every event in the store as a pending delivery (or at most 10 s, within the 15 s webhook timeout):
            // from here the service only drains the backlog, and the clock starts again.
            await Task.WhenAny(ingested, Task.Delay(TimeSpan.FromSeconds(10)));
            _log(F("   backlog: {0} events published after {1:0} ms, in the store after {2:0} ms; the receiver had held {3} requests; clock starts now",
                events.Count, published.TotalMilliseconds, Stopwatch.GetElapsedTime(started).TotalMilliseconds, round.Held));
            cpu = new CpuWindow();
            started = Stopwatch.GetTimestamp();
            gate.TrySetResult();
        }
        var completed = await Task.WhenAny(round.Complete, Task.Delay(DrainTimeout)) == round.Complete;
        var ended = Stopwatch.GetTimestamp();
        var elapsed = Stopwatch.GetElapsedTime(started, ended);
        // Stopwatch is CLOCK_MONOTONIC on Linux: the window as `perf record -k CLOCK_MONOTONIC` stamps its samples.
        _log(F("   measured window: {0:0.000000},{1:0.000000} (CLOCK_MONOTONIC seconds, for perf report --time)",
            (double)started / Stopwatch.Frequency, (double)ended / Stopwatch.Frequency));
        var use = cpu.Stop();
        pool.Dispose();
        await stopWatching.CancelAsync();
        var ingestedMs = await ingested;
        if (!completed)
        {
            _log(F("   the receiver had {0} of {1} after {2:0} s: stopped waiting", round.Distinct, events.Count, DrainTimeout.TotalSeconds));
        }

        // The last attempts are recorded just after their answers: give them a moment.
        var pending = await CountDeliveriesAsync(DeliveryState.Pending);
        for (var i = 0; i < 50 && pending > 0; i++)
        {
            await Task.Delay(100);
            pending = await CountDeliveriesAsync(DeliveryState.Pending);
        }

        var dead = await CountDeliveriesAsync(DeliveryState.DeadLetter);
        var side = _mesh.ReplicaA == _mesh.ReplicaB ? "service: 1 replica" : "service: 2 replicas";
        return (Summarise(side, events.Count, round, started, elapsed, use),
            new IngestTimeline(published.TotalMilliseconds, ingestedMs, pending, dead, pool.ToString()));
    }

    private async Task<double> WatchIngestAsync(long started, Task publishing, CancellationToken cancellationToken)
    {
        // Empty once everything is published and the group has taken and acknowledged all of it.
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var done = publishing.IsCompleted;
                var (pending, lag) = await GroupBacklogAsync(_mesh.Redis);
                if (done && pending + lag == 0)
                {
                    return Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                }

                await Task.Delay(20, cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped before the group was seen empty.
        }

        return double.NaN;
    }

    private async Task<DeliveryRun> PostAllAsync(List<byte[]> bodies, int concurrency, WebhookSink.Round round)
    {
        var next = -1;
        var prefix = $"msg_bench{Interlocked.Increment(ref _sequence)}_";
        var cpu = new CpuWindow();
        var started = Stopwatch.GetTimestamp();
        var workers = Enumerable.Range(0, concurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < bodies.Count)
            {
                using var request = new HttpRequestMessage(HttpMethod.Post, Sink.Url) { Content = new ByteArrayContent(bodies[i]) };
                request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
                foreach (var (name, value) in WebhookSigner.Headers(prefix + i, DateTimeOffset.UtcNow, bodies[i], [_secret]))
                {
                    request.Headers.TryAddWithoutValidation(name, value);
                }

                using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
                response.EnsureSuccessStatusCode();
            }
        });
        await Task.WhenAll(workers);
        var elapsed = Stopwatch.GetElapsedTime(started);
        return Summarise($"baseline: HttpClient, {concurrency} at once", bodies.Count, round, started, elapsed, cpu.Stop());
    }

    private static DeliveryRun Summarise(string side, int expected, WebhookSink.Round round, long started, TimeSpan elapsed, CpuUse cpu)
    {
        var ticks = round.ArrivalTicks.ToArray();
        Array.Sort(ticks);
        double At(double fraction) => ticks.Length == 0 ? double.NaN : Distribution.Ms(ticks[Math.Clamp((int)Math.Ceiling(fraction * ticks.Length) - 1, 0, ticks.Length - 1)] - started);
        var steady = ticks.Length < 10
            ? double.NaN
            : (0.8 * ticks.Length) / ((At(0.9) - At(0.1)) / 1000);
        return new DeliveryRun(side, expected, ticks.Length, round.Duplicates, round.Requests, elapsed, At(0), At(0.5), At(0.9),
            round.MaxInHandler, round.Connections, cpu)
        { SteadyPerSecond = steady };
    }

    private async Task PublishAllAsync(List<Event> events)
    {
        var next = -1;
        await Task.WhenAll(Enumerable.Range(0, PublishConcurrency).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < events.Count)
            {
                await _bus.PublishAsync(events[i], CancellationToken.None);
            }
        }));
    }

    private async Task<long> CountDeliveriesAsync(DeliveryState state)
    {
        long count = 0;
        var token = "";
        do
        {
            var page = await _admin.ListDeliveriesAsync(new ListDeliveriesRequest { State = state, PageSize = 500, PageToken = token }, deadline: Deadline);
            count += page.Deliveries.Count;
            token = page.NextPageToken;
        }
        while (token.Length > 0);
        return count;
    }

    /// <summary>Entries of the event stream the Notification consumer group has taken but not acknowledged, and not taken yet.</summary>
    private static async Task<(long Pending, long Lag)> GroupBacklogAsync(RedisServer redis)
    {
        if (await redis.ExecuteAsync(["XINFO", "GROUPS", "labmesh:events"]) is not object?[] groups)
        {
            return (0, 0);
        }

        foreach (var group in groups.OfType<object?[]>())
        {
            var fields = new Dictionary<string, object?>(StringComparer.Ordinal);
            for (var i = 0; i + 1 < group.Length; i += 2)
            {
                fields[group[i] as string ?? ""] = group[i + 1];
            }

            if (fields.GetValueOrDefault("name") as string == "notification")
            {
                return (fields.GetValueOrDefault("pending") as long? ?? 0, fields.GetValueOrDefault("lag") as long? ?? 0);
            }
        }

        return (0, 0);
    }

    private static List<byte[]> Bodies(List<Event> events) => [.. events.Select(WebhookPayload.Create)];

    private static List<Event> Events(int count)
    {
        var now = Timestamp.FromDateTime(DateTime.UtcNow);
        var events = new List<Event>(count);
        for (var i = 0; i < count; i++)
        {
            events.Add(new Event
            {
                Id = Guid.CreateVersion7().ToString(),
                Type = EventTypes.OrderStatusChanged,
                CreatedAt = now,
                TeamId = Team,
                RequisitionId = $"bench-hooks-order-{i % 100}",
                Source = "bench",
                OrderStatusChanged = new OrderStatusChanged
                {
                    Status = "collecting_sample.testkit.transit_customer",
                    HighLevelStatus = "collecting_sample",
                    PreviousHighLevelStatus = "received",
                    LifecycleStatus = "purchased",
                    OrderEventId = 2,
                },
            });
        }

        return events;
    }
}
