using System.Diagnostics;
using System.Globalization;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Security.Identity;

namespace LabMesh.Bench.Results;

/// <summary>What the end-to-end part measured.</summary>
internal sealed record EndToEndResult(LoadResult Submit, LoadResult Interpret, LoadResult GetResults, IReadOnlyList<RpcTotals>? Breakdown);

/// <summary>
/// SubmitResults through the generated client on one channel to the hosted services, against
/// InterpretMarkers with the same markers (the same validation and reading, no store, no outbox, no
/// peer calls) and GetResults of one requisition, each in a closed loop at the same concurrency.
/// </summary>
internal sealed class EndToEndBench : IDisposable
{
    /// <summary>Every call names this team (its bearer token's team), so every row is in it.</summary>
    public const string Team = "bench-team";

    private readonly ResultsBenchOptions _options;
    private readonly Action<string> _log;
    private readonly GrpcChannel _channel;
    private readonly CallInvoker _invoker;
    private readonly ResultsInterpretationService.ResultsInterpretationServiceClient _results;
    private readonly List<SetupRequisition> _requisitions = [];
    private IReadOnlyList<Marker[]> _reports = [];
    private string _readRequisitionId = "";
    private long _critical;
    private long _stored;

    /// <summary>One channel (one HTTP/2 connection) for every call, as a partner's client would hold.</summary>
    public EndToEndBench(ResultsBenchOptions options, string address, Action<string> log)
    {
        _options = options;
        _log = log;
        _channel = GrpcChannel.ForAddress(address);
        // Every call is the bench's service role for the team (SubmitResults is a service's call).
        var token = MeshHost.Token(Team, CallerRole.Service, "bench");
        _invoker = _channel.CreateCallInvoker().Intercept(metadata =>
        {
            metadata.Add("authorization", "Bearer " + token);
            return metadata;
        });
        _results = new ResultsInterpretationService.ResultsInterpretationServiceClient(_invoker);
    }

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    /// <summary>Places the requisitions and the read target and checks each call kind once; nothing here is measured.</summary>
    public async Task SetUpAsync()
    {
        _reports = MarkerMix.Reports(ReadingBench.ReportCount, _options.Markers, seed: 20261121);
        var started = Stopwatch.GetTimestamp();
        var requisitions = new RequisitionService.RequisitionServiceClient(_invoker);
        var placed = new SetupRequisition[_options.Requisitions + 1];
        await Parallel.ForAsync(0, placed.Length, new ParallelOptions { MaxDegreeOfParallelism = _options.Concurrency }, async (i, cancellationToken) =>
        {
            var request = new CreateRequisitionRequest
            {
                RequestId = $"bench-requisition-{i}",
                // Synthetic, and never printed.
                Patient = new Patient { Id = $"bench-patient-{i}", GivenName = "Bench", FamilyName = "Patient", BirthDate = "1970-01-01", Sex = "unknown" },
                OrderingProvider = new Provider { Id = "bench-provider", Name = "Bench Provider" },
                Lab = "LabCorp",
                Modality = TestModality.Testkit,
                Place = true,
            };
            request.Tests.Add(new OrderedTest { Code = "BMP", PartnerId = "bench-partner" });
            request.Tests.Add(new OrderedTest { Code = "CBC", PartnerId = "bench-partner" });
            var response = await requisitions.CreateRequisitionAsync(request, deadline: Deadline, cancellationToken: cancellationToken);
            var requisition = response.Requisition;
            if (requisition.ServiceRequests.Count != 2)
            {
                throw new InvalidOperationException($"Requisition {requisition.Id} has {requisition.ServiceRequests.Count} service requests, not 2.");
            }
            placed[i] = new SetupRequisition(requisition.Id, [requisition.ServiceRequests[0].Id, requisition.ServiceRequests[1].Id]);
        });
        _requisitions.AddRange(placed[..^1]);
        var read = placed[^1];
        _readRequisitionId = read.Id;

        // The read target: two partial reports, one per ordered test.
        for (var i = 0; i < 2; i++)
        {
            await _results.SubmitResultsAsync(SubmitRequest(read.Id, read.ServiceRequestIds[i], _reports[i + 1]), deadline: Deadline);
        }
        var check = await _results.GetResultsAsync(new GetResultsRequest { RequisitionId = read.Id }, deadline: Deadline);
        if (check.Reports.Count != 2)
        {
            throw new InvalidOperationException($"GetResults of the read target returned {check.Reports.Count} reports, not 2.");
        }
        var interpreted = await _results.InterpretMarkersAsync(InterpretRequest(_reports[0]), deadline: Deadline);
        if (interpreted.Results.Count != _options.Markers)
        {
            throw new InvalidOperationException($"InterpretMarkers returned {interpreted.Results.Count} markers, not {_options.Markers}.");
        }
        _log(string.Format(CultureInfo.InvariantCulture,
            "   placed {0} requisitions (+1 read target with 2 reports) in {1:0.0} s, not measured",
            _options.Requisitions, Stopwatch.GetElapsedTime(started).TotalSeconds));
    }

    public async Task<EndToEndResult> RunAsync()
    {
        var interpret = await MeasureAsync("InterpretMarkers (baseline: validate + read)", InterpretAsync, _options.Warmup, _options.Duration);
        var submit = await MeasureAsync("SubmitResults (validate + read + store + outbox + peers)", SubmitAsync, _options.Warmup, _options.Duration);
        var critical = Interlocked.Read(ref _critical);
        var stored = Interlocked.Read(ref _stored);
        _log(string.Format(CultureInfo.InvariantCulture, "      ({0} reports stored in warm-up and window, {1:0}% of them critical)",
            stored, stored == 0 ? 0 : 100.0 * critical / stored));
        var getResults = await MeasureAsync("GetResults (read baseline: 1 requisition, 2 reports)", GetResultsAsync, _options.Warmup, _options.Duration);

        IReadOnlyList<RpcTotals>? breakdown = null;
        if (_options.BreakdownSeconds > 0)
        {
            using var listener = new RpcBreakdown();
            await ClosedLoop.RunAsync("breakdown", _options.Concurrency, SubmitAsync, TimeSpan.Zero, TimeSpan.FromSeconds(_options.BreakdownSeconds));
            breakdown = listener.Totals();
        }
        return new EndToEndResult(submit, interpret, getResults, breakdown);
    }

    public void Dispose() => _channel.Dispose();

    private async Task<LoadResult> MeasureAsync(string name, BenchCall call, TimeSpan warmup, TimeSpan duration)
    {
        var result = await ClosedLoop.RunAsync(name, _options.Concurrency, call, warmup, duration);
        _log(Report.LoadLine(result));
        return result;
    }

    // Worker w submits to requisitions w, w + C, w + 2C, ... in turn, so no two calls in flight share
    // a requisition; each call is a new partial report (new request_id) for one of its two tests.
    private async Task SubmitAsync(int worker, long sequence)
    {
        var own = (_requisitions.Count - worker + _options.Concurrency - 1) / _options.Concurrency;
        var requisition = _requisitions[worker + _options.Concurrency * (int)(sequence % own)];
        var serviceRequestId = requisition.ServiceRequestIds[(int)(sequence / own % 2)];
        var request = SubmitRequest(requisition.Id, serviceRequestId, Markers(worker, sequence));
        var response = await _results.SubmitResultsAsync(request, deadline: Deadline);
        if (!response.Created)
        {
            throw new InvalidOperationException("SubmitResults with a new request_id returned created = false.");
        }
        Interlocked.Increment(ref _stored);
        if (response.Report.Metadata.Interpretation == Interpretation.Critical)
        {
            Interlocked.Increment(ref _critical);
        }
    }

    private async Task InterpretAsync(int worker, long sequence)
    {
        var response = await _results.InterpretMarkersAsync(InterpretRequest(Markers(worker, sequence)), deadline: Deadline);
        if (response.Results.Count != _options.Markers)
        {
            throw new InvalidOperationException("InterpretMarkers returned a different number of markers.");
        }
    }

    private async Task GetResultsAsync(int worker, long sequence)
    {
        var response = await _results.GetResultsAsync(new GetResultsRequest { RequisitionId = _readRequisitionId }, deadline: Deadline);
        if (response.Reports.Count != 2)
        {
            throw new InvalidOperationException("GetResults returned a different number of reports.");
        }
    }

    private Marker[] Markers(int worker, long sequence) => _reports[(int)((worker * 17 + sequence) % _reports.Count)];

    private static SubmitResultsRequest SubmitRequest(string requisitionId, string serviceRequestId, Marker[] markers)
    {
        var request = new SubmitResultsRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            RequisitionId = requisitionId,
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
        request.ServiceRequestIds.Add(serviceRequestId);
        request.Results.AddRange(markers);
        return request;
    }

    private static InterpretMarkersRequest InterpretRequest(Marker[] markers)
    {
        var request = new InterpretMarkersRequest();
        request.Results.AddRange(markers);
        return request;
    }

    private sealed record SetupRequisition(string Id, string[] ServiceRequestIds);
}
