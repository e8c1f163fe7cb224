using System.Collections.Concurrent;
using System.Diagnostics;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Messaging.Events;
using LabMesh.Messaging.Redis;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using static LabMesh.Bench.Notification.Report;

namespace LabMesh.Bench.Notification;

/// <summary>One side of one rate: what was issued, what arrived, and how long it took.</summary>
internal sealed record CriticalWindow(
    string Side,
    double TargetRate,
    OpenLoopRun Run,
    long Ok,
    string Errors,
    long NotCritical,
    int Arrived,
    Distribution Latency,
    Distribution FromIssue,
    Distribution Call,
    int ArrivedBeforeReturn,
    Distribution StartToAppend,
    Distribution AppendToArrival)
{
    public long Missing => Ok - Arrived;
}

/// <summary>
/// Part 1. A Subscribe stream for the team's <c>labtest.result.critical</c> events is held on replica b.
/// Measured side: SubmitResults of a partial report with a critical potassium, issued open loop at a
/// fixed rate through the generated client; latency from the call returning to its event coming off
/// the stream. Baseline: the same rate of synthetic critical events published with
/// <see cref="IEventBus.PublishAsync"/> on a <see cref="RedisEventBus"/> of the bench's own (its own
/// connection); latency from the publish call to the event coming off the same stream.
/// </summary>
internal sealed class CriticalLatencyBench : IAsyncDisposable
{
    public const string Team = "bench-critical";

    private static readonly TimeSpan ArrivalGrace = TimeSpan.FromSeconds(5);

    private readonly NotificationBenchOptions _options;
    private readonly Action<string> _log;
    private readonly RequisitionService.RequisitionServiceClient _requisitions;
    private readonly ResultsInterpretationService.ResultsInterpretationServiceClient _results;
    private readonly NotificationService.NotificationServiceClient _subscriber;
    private readonly RedisConnection _redis;
    private readonly RedisEventBus _bus;
    private readonly List<PlacedOrder> _orders = [];
    private CriticalStream? _stream;
    private int _window;

    public CriticalLatencyBench(BenchMesh mesh, NotificationBenchOptions options, Action<string> log)
    {
        _options = options;
        _log = log;
        _requisitions = new RequisitionService.RequisitionServiceClient(mesh.Invoker(mesh.Requisitions, Team, "bench-ordering"));
        _results = new ResultsInterpretationService.ResultsInterpretationServiceClient(mesh.Invoker(mesh.Results, Team, "bench-lab"));
        _subscriber = new NotificationService.NotificationServiceClient(mesh.Invoker(mesh.ReplicaB, Team, "bench-subscriber"));
        _redis = new RedisConnection(Options.Create(new RedisOptions { Configuration = mesh.Redis.Configuration }), NullLogger<RedisConnection>.Instance);
        _bus = new RedisEventBus(_redis, NullLogger<RedisEventBus>.Instance);
    }

    public CriticalStream Stream => _stream ?? throw new InvalidOperationException("Not set up.");

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    /// <summary>Places the requisitions, opens the stream, and sends one of each kind through; nothing here is measured.</summary>
    public async Task SetUpAsync()
    {
        var started = Stopwatch.GetTimestamp();
        var placed = new PlacedOrder[_options.Requisitions];
        await Parallel.ForAsync(0, placed.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, async (i, cancellationToken) =>
        {
            var request = new CreateRequisitionRequest
            {
                RequestId = $"bench-critical-order-{i}",
                // Synthetic, and never printed.
                Patient = new Patient { Id = $"bench-patient-{i}", GivenName = "Bench", FamilyName = "Patient", BirthDate = "1970-01-01", Sex = "unknown" },
                OrderingProvider = new Provider { Id = "bench-provider", Name = "Bench Provider" },
                Lab = "LabCorp",
                Modality = TestModality.Testkit,
                Place = true,
            };
            request.Tests.Add(new OrderedTest { Code = "BMP", PartnerId = "bench-partner" });
            var requisition = (await _requisitions.CreateRequisitionAsync(request, deadline: Deadline, cancellationToken: cancellationToken)).Requisition;
            placed[i] = new PlacedOrder(requisition.Id, requisition.ServiceRequests[0].Id);
        });
        _orders.AddRange(placed);
        _log(F("   placed {0} requisitions (one test each) in {1:0.0} s, not measured", placed.Length, Stopwatch.GetElapsedTime(started).TotalSeconds));

        _stream = await CriticalStream.OpenAsync(_subscriber, Team);

        // One of each through the whole path, so both sides are known to work before anything is timed.
        var report = (await _results.SubmitResultsAsync(CriticalReport(_orders[0]), deadline: Deadline)).Report;
        await Stream.WaitForAsync([report.Id], TimeSpan.FromSeconds(20));
        var synthetic = SyntheticCritical(_orders[0], "bench-check");
        await _bus.PublishAsync(synthetic, CancellationToken.None);
        await Stream.WaitForAsync(["bench-check"], TimeSpan.FromSeconds(20));
        if (!Stream.TryGet(report.Id, out _) || !Stream.TryGet("bench-check", out _))
        {
            throw new InvalidOperationException(
                $"The check events did not reach the stream on replica b (submit: {Stream.TryGet(report.Id, out _)}, bus: {Stream.TryGet("bench-check", out _)}); stream error: {Stream.Error?.Message ?? "none"}.");
        }

        _log("   stream on replica b open (heartbeat 1 s); one SubmitResults and one bus publish reached it");
    }

    /// <summary>The bus baseline, then SubmitResults, at <paramref name="rate"/>.</summary>
    public async Task<(CriticalWindow Bus, CriticalWindow Submit)> RunAsync(double rate)
    {
        var bus = await MeasureAsync("bus publish (baseline)", rate, PublishAsync, fromReturn: false);
        await Task.Delay(1000);
        var submit = await MeasureAsync("SubmitResults", rate, SubmitAsync, fromReturn: true);
        await Task.Delay(1000);
        return (bus, submit);
    }

    public async ValueTask DisposeAsync()
    {
        if (_stream is not null)
        {
            await _stream.DisposeAsync();
        }

        await _bus.DisposeAsync();
        await _redis.DisposeAsync();
    }

    private async Task<CriticalWindow> MeasureAsync(string side, double rate, Func<string, Samples, long, bool, Task> operation, bool fromReturn)
    {
        var window = Interlocked.Increment(ref _window);
        var samples = new Samples();
        var prefix = $"w{window}-";
        var run = await OpenLoop.RunAsync(rate, _options.Warmup, _options.Duration, _options.MaxInFlight, (i, measured) => operation(prefix + i, samples, i, measured));

        var measuredSamples = samples.Measured.ToList();
        await Stream.WaitForAsync([.. measuredSamples.Select(s => s.Key)], ArrivalGrace);

        var latency = new List<double>();
        var fromIssue = new List<double>();
        var toAppend = new List<double>();
        var fromAppend = new List<double>();
        var early = 0;
        foreach (var s in measuredSamples)
        {
            if (!Stream.TryGet(s.Key, out var arrival))
            {
                continue;
            }

            var start = fromReturn ? s.Returned : s.Sent;
            var startUtc = fromReturn ? s.ReturnedUtc : s.SentUtc;
            latency.Add(Distribution.Ms(arrival.Ticks - start));
            fromIssue.Add(Distribution.Ms(arrival.Ticks - s.Sent));
            if (arrival.Ticks < s.Returned)
            {
                early++;
            }

            if (arrival.PositionMs > 0)
            {
                // The id holds the XADD's millisecond, floored: its middle is the best estimate (±0.5 ms).
                var appendedUtc = DateTime.UnixEpoch.AddMilliseconds(arrival.PositionMs + 0.5);
                toAppend.Add((appendedUtc - startUtc).TotalMilliseconds);
                fromAppend.Add((arrival.Utc - appendedUtc).TotalMilliseconds);
            }
        }

        var errors = samples.Errors.IsEmpty
            ? "none"
            : string.Join(", ", samples.Errors.OrderBy(e => e.Key, StringComparer.Ordinal).Select(e => $"{e.Value} {e.Key}"));
        return new CriticalWindow(
            side, rate, run, measuredSamples.Count, errors, Interlocked.Read(ref samples.NotCritical), latency.Count,
            Distribution.Of(latency), Distribution.Of(fromIssue), Distribution.Of(measuredSamples.Select(s => Distribution.Ms(s.Returned - s.Sent))),
            early, Distribution.Of(toAppend), Distribution.Of(fromAppend));
    }

    private async Task SubmitAsync(string key, Samples samples, long i, bool measured)
    {
        var order = _orders[(int)(i % _orders.Count)];
        var request = CriticalReport(order);
        var sentUtc = DateTime.UtcNow;
        var sent = Stopwatch.GetTimestamp();
        try
        {
            var response = await _results.SubmitResultsAsync(request, deadline: Deadline);
            var returned = Stopwatch.GetTimestamp();
            var returnedUtc = DateTime.UtcNow;
            if (measured)
            {
                samples.Add(new Sample(response.Report.Id, sent, sentUtc, returned, returnedUtc));
                if (response.Report.Metadata.Interpretation != Interpretation.Critical)
                {
                    Interlocked.Increment(ref samples.NotCritical);
                }
            }
        }
        catch (Exception ex) when (measured)
        {
            // Status codes only: a message could carry what the request held.
            samples.Errors.AddOrUpdate(ex is RpcException rpc ? rpc.StatusCode.ToString() : ex.GetType().Name, 1, (_, n) => n + 1);
        }
        catch (Exception)
        {
            // Warm-up: not counted.
        }
    }

    private async Task PublishAsync(string key, Samples samples, long i, bool measured)
    {
        var evt = SyntheticCritical(_orders[(int)(i % _orders.Count)], key);
        var sentUtc = DateTime.UtcNow;
        var sent = Stopwatch.GetTimestamp();
        try
        {
            await _bus.PublishAsync(evt, CancellationToken.None);
            var returned = Stopwatch.GetTimestamp();
            if (measured)
            {
                samples.Add(new Sample(key, sent, sentUtc, returned, DateTime.UtcNow));
            }
        }
        catch (Exception ex) when (measured)
        {
            samples.Errors.AddOrUpdate(ex.GetType().Name, 1, (_, n) => n + 1);
        }
        catch (Exception)
        {
            // Warm-up: not counted.
        }
    }

    /// <summary>A partial report on the order's test with one critical potassium (synthetic; never printed).</summary>
    private static SubmitResultsRequest CriticalReport(PlacedOrder order)
    {
        var request = new SubmitResultsRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            RequisitionId = order.RequisitionId,
            Metadata = new ReportMetadata
            {
                Laboratory = "LabCorp",
                SpecimenNumber = "BENCH0001",
                Status = ReportStatus.Partial,
                DateCollected = "2026-11-20",
                DateReceived = "2026-11-20",
                DateReported = "2026-11-21",
            },
        };
        request.ServiceRequestIds.Add(order.ServiceRequestId);
        request.Results.Add(new Marker { Name = "Potassium", Slug = "potassium", Unit = "mmol/L", NumericValue = 6.9, MinRangeValue = 3.5, MaxRangeValue = 5.1 });
        return request;
    }

    /// <summary>A critical event shaped as ResultsInterpretation publishes one, for a report id of the bench's own.</summary>
    private static Event SyntheticCritical(PlacedOrder order, string reportId)
    {
        var now = Timestamp.FromDateTime(DateTime.UtcNow);
        var evt = new Event
        {
            Id = Guid.CreateVersion7().ToString(),
            Type = EventTypes.LabTestResultCritical,
            CreatedAt = now,
            TeamId = Team,
            RequisitionId = order.RequisitionId,
            Source = "bench",
            CriticalResult = new CriticalResult
            {
                CreatedAt = now,
                UpdatedAt = now,
                OrderId = order.RequisitionId,
                SampleId = "BENCH0001",
                Status = "partial",
                Interpretation = "critical",
                TeamId = Team,
                UserId = "bench-patient",
                ReportId = reportId,
                ReportVersion = 1,
            },
        };
        evt.CriticalResult.CriticalAnalytes.Add("potassium");
        return evt;
    }

    private sealed record PlacedOrder(string RequisitionId, string ServiceRequestId);

    /// <summary>One measured operation: its key (the report id), when it was issued and when it returned.</summary>
    private sealed record Sample(string Key, long Sent, DateTime SentUtc, long Returned, DateTime ReturnedUtc);

    private sealed class Samples
    {
        private readonly ConcurrentQueue<Sample> _measured = new();

        public long NotCritical;

        public ConcurrentDictionary<string, int> Errors { get; } = new(StringComparer.Ordinal);

        public IEnumerable<Sample> Measured => _measured;

        public void Add(Sample sample) => _measured.Enqueue(sample);
    }
}
