using System.Diagnostics;
using Grpc.Core;
using LabMesh.Cli.Mesh;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Core.Vocabulary;

namespace LabMesh.Cli.Demo;

/// <summary>
/// A complete lab order against a running mesh, step by step: order, walk through the modality, a
/// critical partial result seen on the event stream and acknowledged by a clinician, the final report and
/// its amendment. After every step it reads the order back and shows its status in each vocabulary.
/// It stops at the first step that fails.
/// </summary>
internal sealed class DemoScenario(MeshClient mesh, ITimeline timeline, CancellationToken cancellationToken) : IAsyncDisposable
{
    private static readonly TimeSpan EventTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan AcknowledgeRetryFor = TimeSpan.FromSeconds(5);
    private const string CriticalType = "labtest.result.critical";

    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly string _runId = Guid.NewGuid().ToString("N")[..12];
    private readonly List<Arrival> _seen = [];
    private StreamTap? _tap;
    private Requisition _requisition = null!;
    private string _panel = "";
    private string _bloodCount = "";
    private Report _partial = null!;
    private long _partialReturnedAt;
    private Arrival _critical = null!;
    private Report _final = null!;

    /// <summary>True when every step succeeded.</summary>
    public async Task<bool> RunAsync()
    {
        var ok = await StepAsync("create_requisition", CreateAsync)
            && await StepAsync("subscribe", SubscribeAsync)
            && await StepAsync("place_requisition", PlaceAsync);
        foreach (var status in DemoOrder.BeforeResults)
        {
            ok = ok && await OrderEventStepAsync(status);
        }

        return ok
            && await StepAsync("submit_partial_results", SubmitPartialAsync)
            && await StepAsync("critical_result_event", CriticalEventAsync)
            && await OrderEventStepAsync(DemoOrder.PartialResults)
            && await StepAsync("acknowledge_critical_result", AcknowledgeAsync)
            && await StepAsync("submit_final_results", SubmitFinalAsync)
            && await OrderEventStepAsync(DemoOrder.Completed)
            && await StepAsync("amend_results", AmendAsync)
            && await StepAsync("summary", SummaryAsync);
    }

    /// <summary>Ends the subscription.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_tap is not null)
        {
            await _tap.DisposeAsync();
        }
    }

    private async Task<StepOutcome> CreateAsync()
    {
        var response = await mesh.CallAsync("RequisitionService/CreateRequisition",
            o => mesh.Requisitions.CreateRequisitionAsync(DemoOrder.Draft(_runId), o), cancellationToken);
        _requisition = response.Requisition;
        _panel = _requisition.ServiceRequests.Single(s => s.Code == DemoOrder.Panel).Id;
        _bloodCount = _requisition.ServiceRequests.Single(s => s.Code == DemoOrder.BloodCount).Id;
        return new StepOutcome(
            $"CreateRequisition: draft {_requisition.Id}, {DemoOrder.Panel} + {DemoOrder.BloodCount}, at_home_phlebotomy, team {mesh.Identity.Team}",
            new() { ["requisition_id"] = _requisition.Id, ["modality"] = Words.Modality(_requisition.Modality), ["tests"] = new[] { DemoOrder.Panel, DemoOrder.BloodCount } });
    }

    private async Task<StepOutcome> SubscribeAsync()
    {
        var request = new SubscribeRequest
        {
            Filter = new EventFilter { RequisitionId = _requisition.Id },
            HeartbeatInterval = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromSeconds(1)),
        };
        // Resumptions are rare and harmless here (no gap, no repeat); the timeline says what matters.
        var follower = new EventFollower(mesh, request, maxRetries: 5, notice: n => Console.Error.WriteLine($"labmesh demo: {n}"));
        _tap = new StreamTap(follower, cancellationToken);
        var live = await Task.WhenAny(_tap.Live, Task.Delay(EventTimeout, cancellationToken));
        cancellationToken.ThrowIfCancellationRequested();
        if (live != _tap.Live)
        {
            throw new DemoStepException($"Subscribe at {mesh.Address} sent nothing (no heartbeat, no event) within {EventTimeout.TotalSeconds:0} s.");
        }

        await _tap.Live;
        return new StepOutcome("Subscribe: live, filtered to this requisition",
            new() { ["filter_requisition_id"] = _requisition.Id });
    }

    private async Task<StepOutcome> PlaceAsync()
    {
        var response = await mesh.CallAsync("RequisitionService/PlaceRequisition",
            o => mesh.Requisitions.PlaceRequisitionAsync(new PlaceRequisitionRequest { Id = _requisition.Id, Etag = _requisition.Etag }, o),
            cancellationToken);
        _requisition = response.Requisition;
        return new StepOutcome("PlaceRequisition", new() { ["order_event"] = _requisition.SubStatus });
    }

    private Task<bool> OrderEventStepAsync(string status) =>
        StepAsync("order_event." + (NamespacedStatus.TryParse(status, out var parsed) ? parsed.Low : status), async () =>
        {
            var response = await mesh.CallAsync("RequisitionService/RecordOrderEvent",
                o => mesh.Requisitions.RecordOrderEventAsync(new RecordOrderEventRequest { Id = _requisition.Id, Status = status }, o),
                cancellationToken);
            _requisition = response.Requisition;
            return new StepOutcome("RecordOrderEvent", new() { ["order_event"] = status });
        });

    private async Task<StepOutcome> SubmitPartialAsync()
    {
        var response = await mesh.CallAsync("ResultsInterpretationService/SubmitResults",
            o => mesh.Results.SubmitResultsAsync(DemoOrder.CriticalPartial(_runId, _requisition.Id, _panel), o), cancellationToken);
        _partialReturnedAt = Stopwatch.GetTimestamp();
        _partial = response.Report;
        return ReportOutcome("SubmitResults: partial report", _partial);
    }

    private async Task<StepOutcome> CriticalEventAsync()
    {
        var arrival = await WaitForEventAsync(a => a.Event.Type == CriticalType && a.Event.CriticalResult?.ReportId == _partial.Id,
            $"{CriticalType} for report {_partial.Id}");
        _critical = arrival;
        var latency = Stopwatch.GetElapsedTime(_partialReturnedAt, arrival.Timestamp);
        var critical = arrival.Event.CriticalResult;
        // Negative when the event overtook SubmitResults' response (the mesh publishes right after storing).
        var when = latency >= TimeSpan.Zero
            ? $"{latency.TotalMilliseconds:0.0} ms after SubmitResults returned"
            : $"{-latency.TotalMilliseconds:0.0} ms before SubmitResults returned";
        return new StepOutcome(
            $"{string.Join(", ", critical.CriticalAnalytes)} {critical.Interpretation} ({critical.Status} report) on the stream {when}",
            new()
            {
                ["event_id"] = arrival.Event.Id,
                ["cursor"] = arrival.Cursor,
                ["report_id"] = critical.ReportId,
                ["report_version"] = critical.ReportVersion,
                ["report_status"] = critical.Status,
                ["interpretation"] = critical.Interpretation,
                ["critical_analytes"] = critical.CriticalAnalytes.ToArray(),
                ["latency_ms"] = Output.Json.Ms(latency),
            });
    }

    private async Task<StepOutcome> AcknowledgeAsync()
    {
        var clinician = mesh.NotificationsAs(mesh.Identity.AsClinician(DemoOrder.Clinician));
        var request = new AcknowledgeCriticalResultRequest
        {
            Id = _critical.Event.Id,
            AcknowledgedBy = DemoOrder.Clinician,
            ReadBack = "Potassium 6.8 mmol/L, critical high, on the basic metabolic panel; read back by the ordering clinician.",
            Channel = AcknowledgementChannel.Phone,
        };
        var retryUntil = Stopwatch.GetTimestamp() + (long)(AcknowledgeRetryFor.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            try
            {
                var response = await mesh.CallAsync("NotificationService/AcknowledgeCriticalResult",
                    o => clinician.AcknowledgeCriticalResultAsync(request, o), cancellationToken);
                var acknowledged = response.CriticalResult;
                return new StepOutcome(
                    $"AcknowledgeCriticalResult: {Words.CriticalResult(acknowledged.State)} by {acknowledged.AcknowledgedBy} (clinician, by phone, with read-back)",
                    new()
                    {
                        ["critical_result_id"] = acknowledged.Id,
                        ["state"] = Words.CriticalResult(acknowledged.State),
                        ["acknowledged_by"] = acknowledged.AcknowledgedBy,
                        ["channel"] = "phone",
                        ["escalations"] = acknowledged.Escalations,
                    });
            }
            catch (CallFailedException e) when (e.StatusCode == StatusCode.NotFound && Stopwatch.GetTimestamp() < retryUntil)
            {
                // The Notification service opens a critical result from the event bus; a subscriber can
                // see the event a moment before that. Ask again shortly.
                await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken);
            }
        }
    }

    private async Task<StepOutcome> SubmitFinalAsync()
    {
        var response = await mesh.CallAsync("ResultsInterpretationService/SubmitResults",
            o => mesh.Results.SubmitResultsAsync(DemoOrder.Final(_runId, _requisition.Id, _panel, _bloodCount), o), cancellationToken);
        _final = response.Report;
        return ReportOutcome("SubmitResults: final report", _final);
    }

    private async Task<StepOutcome> AmendAsync()
    {
        var amendment = DemoOrder.Amendment(_runId, _final.Id, _panel, _bloodCount);
        var response = await mesh.CallAsync("ResultsInterpretationService/AmendResults",
            o => mesh.Results.AmendResultsAsync(amendment, o), cancellationToken);
        var outcome = ReportOutcome("AmendResults: report", response.Report);
        outcome.Detail["reason"] = amendment.Reason;
        return outcome;
    }

    private async Task<StepOutcome> SummaryAsync()
    {
        var results = await mesh.CallAsync("ResultsInterpretationService/GetResults",
            o => mesh.Results.GetResultsAsync(new GetResultsRequest { RequisitionId = _requisition.Id }, o), cancellationToken);
        var open = await mesh.CallAsync("NotificationService/ListUnacknowledgedCriticalResults",
            o => mesh.Notifications.ListUnacknowledgedCriticalResultsAsync(
                new ListUnacknowledgedCriticalResultsRequest { RequisitionId = _requisition.Id, PageSize = 100 }, o), cancellationToken);
        if (open.CriticalResults.Count > 0)
        {
            throw new DemoStepException($"{open.CriticalResults.Count} critical result(s) of requisition {_requisition.Id} still unacknowledged: "
                + string.Join(", ", open.CriticalResults.Select(c => c.Id)));
        }

        ShowArrivedEvents();
        var events = _seen.GroupBy(a => a.Event.Type).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count());
        return new StepOutcome(
            $"GetResults: {results.Reports.Count} reports, {Words.Interpretation(results.Interpretation)}, {results.ResultsStatus}; " +
            $"ListUnacknowledgedCriticalResults: none open; {_seen.Count} events seen on the stream",
            new()
            {
                ["requisition_id"] = _requisition.Id,
                ["reports"] = results.Reports.Count,
                ["interpretation"] = Words.Interpretation(results.Interpretation),
                ["results_status"] = results.ResultsStatus,
                ["all_results_received"] = results.AllResultsReceived,
                ["open_critical_results"] = 0,
                ["events_by_type"] = events,
            });
    }

    private static StepOutcome ReportOutcome(string what, Report report)
    {
        var interpretation = Words.Interpretation(report.Metadata.Interpretation);
        var critical = report.Results.Where(m => m.Reading?.Interpretation == Interpretation.Critical).Select(m => m.Slug).ToArray();
        return new StepOutcome(
            $"{what} v{report.Version}: {interpretation}" + (critical.Length > 0 ? $" ({string.Join(", ", critical)})" : ""),
            new()
            {
                ["report_id"] = report.Id,
                ["report_version"] = report.Version,
                ["report_status"] = Words.Report(report.Metadata.Status),
                ["interpretation"] = interpretation,
                ["markers"] = report.Results.Count,
                ["critical_analytes"] = critical,
            });
    }

    private async Task<bool> StepAsync(string step, Func<Task<StepOutcome>> run)
    {
        ShowArrivedEvents();
        timeline.Starting(step);
        var at = _clock.Elapsed;
        var started = Stopwatch.GetTimestamp();
        try
        {
            var outcome = await run();
            var elapsed = Stopwatch.GetElapsedTime(started);
            var read = await mesh.CallAsync("RequisitionService/GetRequisition",
                o => mesh.Requisitions.GetRequisitionAsync(new GetRequisitionRequest { Id = _requisition.Id }, o), cancellationToken);
            timeline.Step(new StepResult(step, at, elapsed, OrderSnapshot.Of(read.Requisition), outcome.Note, outcome.Detail, null));
            ShowArrivedEvents();
            return true;
        }
        catch (CallFailedException e)
        {
            timeline.Step(new StepResult(step, at, Stopwatch.GetElapsedTime(started), null, "", new Dictionary<string, object?>(), StepError.Of(e)));
        }
        catch (DemoStepException e)
        {
            timeline.Step(new StepResult(step, at, Stopwatch.GetElapsedTime(started), null, "", new Dictionary<string, object?>(),
                new StepError(e.Message, null, null, mesh.Address, [])));
        }

        return false;
    }

    /// <summary>The first event matching <paramref name="match"/>, whether it arrived already or arrives within <see cref="EventTimeout"/>.</summary>
    private async Task<Arrival> WaitForEventAsync(Func<Arrival, bool> match, string what)
    {
        ShowArrivedEvents();
        if (_seen.FirstOrDefault(match) is { } seen)
        {
            return seen;
        }

        var until = Stopwatch.GetTimestamp() + (long)(EventTimeout.TotalSeconds * Stopwatch.Frequency);
        while (Stopwatch.GetTimestamp() < until)
        {
            var remaining = TimeSpan.FromSeconds((double)(until - Stopwatch.GetTimestamp()) / Stopwatch.Frequency);
            if (await _tap!.NextAsync(remaining, cancellationToken) is not { } arrival)
            {
                break;
            }

            Show(arrival);
            if (match(arrival))
            {
                return arrival;
            }
        }

        throw new DemoStepException($"No {what} on the stream within {EventTimeout.TotalSeconds:0} s (Subscribe at {mesh.Address}, filter requisition {_requisition.Id}).");
    }

    private void ShowArrivedEvents()
    {
        foreach (var arrival in _tap?.Arrived() ?? [])
        {
            Show(arrival);
        }
    }

    private void Show(Arrival arrival)
    {
        _seen.Add(arrival);
        timeline.Event(arrival, _clock.Elapsed - Stopwatch.GetElapsedTime(arrival.Timestamp));
    }

    private sealed record StepOutcome(string Note, Dictionary<string, object?> Detail);
}

/// <summary>A demo step that found something other than what it expected (no event in time, an open critical result).</summary>
internal sealed class DemoStepException(string message) : Exception(message);
