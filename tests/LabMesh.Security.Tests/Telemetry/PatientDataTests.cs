using System.Text;
using System.Text.RegularExpressions;
using Grpc.Core;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Testing;
using LabMesh.Testing.Otlp;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Xunit.Abstractions;

namespace LabMesh.Security.Tests.Telemetry;

/// <summary>
/// Point 5 of the security issue: a whole workflow with a recognisable patient and recognisable result
/// values, then every log record (message, state, scopes, exception), every span (tags, events, status),
/// every metric's tags and every error a caller received is searched for the name, the birth date in the
/// usual spellings, and the values.
/// </summary>
public sealed partial class PatientDataTests(ITestOutputHelper output)
{
    private const string Team = "team-phi";
    private const string GivenName = "Zephyrine";
    private const string FamilyName = "Quillfeather";
    private const string BirthDate = "1958-03-14";

    private static readonly string[] Needles =
    [
        GivenName, FamilyName, BirthDate, "1958/03/14", "14/03/1958", "03/14/1958", "3/14/1958", "14.03.1958", "19580314",
        "Mar 14, 1958", "March 14, 1958", "14 Mar 1958", "14 March 1958",
    ];

    private readonly List<(string Where, string Text)> _errors = [];

    [Fact]
    public void Scan_FindsEachNeedle_InAnyCase_AndValuesOnlyAsWholeNumbers()
    {
        Assert.NotEmpty(Leaks([("x", "hello zephyrine")]));
        Assert.NotEmpty(Leaks([("x", "born 14.03.1958")]));
        Assert.NotEmpty(Leaks([("x", "value=6.37")]));
        Assert.NotEmpty(Leaks([("x", "211.4 mg/dL")]));
        Assert.Empty(Leaks([("x", "in 16.3712 ms, 6.375 s, 1211.45")]));
    }

    [Fact]
    public async Task FullWorkflow_WithRecognisablePatientData_LeavesNoneInLogsSpansMetricsOrErrors()
    {
        // Everything an operator could turn on, down to Debug and ASP.NET Core's per-request lines: patient data
        // must stay out of those too; and what the host exports over OTLP (issue 21) is decoded and searched as well.
        await using var otlp = await OtlpReceiver.StartAsync();
        var settings = new Dictionary<string, string?>(otlp.Settings)
        {
            ["Logging:LogLevel:Default"] = "Debug",
            [ServiceDefaults.Hosting.ServiceDefaultsExtensions.QuietRequestLogKey] = "Debug",
            [ServiceDefaults.Hosting.ServiceDefaultsExtensions.QuietGrpcLogKey] = "Debug",
        };
        await using var mesh = await AllInOne.StartAsync(settings);
        using var capture = new TelemetryCapture();
        mesh.Host.Services.GetRequiredService<ILoggerFactory>().AddProvider(capture);
        var clients = mesh.For(Team, subject: "dr-phi");
        var partner = new AllInOne.Clients(mesh.Invoker(Team, subject: "partner-user", partner: "partner-1"));
        var deadline = DateTime.UtcNow + AllInOne.Timeout;
        var patient = new Patient { Id = "pt-4471", GivenName = GivenName, FamilyName = FamilyName, BirthDate = BirthDate, Sex = "female" };

        // The order, a draft placed later, moved by the partner.
        var draftRequest = AllInOne.Order(patient, "BMP", "CBC");
        draftRequest.Place = false;
        var draft = (await clients.Requisitions.CreateRequisitionAsync(draftRequest, deadline: deadline)).Requisition;
        using var subscription = clients.Notifications.Subscribe(new SubscribeRequest { Filter = new EventFilter { RequisitionId = draft.Id } },
            deadline: deadline);
        var placed = (await clients.Requisitions.PlaceRequisitionAsync(new PlaceRequisitionRequest { Id = draft.Id, Etag = draft.Etag }, deadline: deadline)).Requisition;
        await clients.Requisitions.RecordOrderEventAsync(new RecordOrderEventRequest
        {
            Id = placed.Id,
            Status = "collecting_sample.testkit.transit_customer",
            Note = $"kit sent to {GivenName} {FamilyName}",
        }, deadline: deadline);
        var serviceRequest = placed.ServiceRequests[0];
        await partner.ServiceRequests.UpdateTaskStatusAsync(new UpdateTaskStatusRequest
        {
            Id = serviceRequest.Id,
            TaskBusinessStatus = TaskBusinessStatus.AppointmentAttended,
            Note = $"sample of {FamilyName}, born {BirthDate}",
        }, deadline: deadline);

        // Results with a critical potassium, read back and acknowledged by a clinician.
        var report = (await clients.Results.SubmitResultsAsync(Results(placed, final: false), deadline: deadline)).Report;
        var critical = await Eventually.MatchAsync(
            async () => (await clients.Notifications.ListUnacknowledgedCriticalResultsAsync(
                new ListUnacknowledgedCriticalResultsRequest { RequisitionId = placed.Id }, deadline: deadline)).CriticalResults,
            list => list.Count > 0, AllInOne.Timeout, "the critical potassium to be opened");
        await clients.Notifications.AcknowledgeCriticalResultAsync(new AcknowledgeCriticalResultRequest
        {
            Id = critical[0].Id,
            AcknowledgedBy = "dr-phi",
            Channel = AcknowledgementChannel.Phone,
            ReadBack = $"Potassium 6.37 mmol/L for {GivenName} {FamilyName}, {BirthDate}",
        }, deadline: deadline);
        var amend = new AmendResultsRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            ReportId = report.Id,
            Reason = $"glucose was 211.4 for {FamilyName}",
            Metadata = new ReportMetadata { Status = ReportStatus.Final },
        };
        amend.Results.AddRange(Results(placed, final: true).Results);
        await clients.Results.SubmitResultsAsync(Results(placed, final: true), deadline: deadline);
        await clients.Results.ShareInterpretationAsync(new ShareInterpretationRequest { RequisitionId = placed.Id, Note = $"shared with {GivenName}" },
            deadline: deadline);

        // Reads of everything.
        await clients.Requisitions.GetRequisitionAsync(new GetRequisitionRequest { Id = placed.Id }, deadline: deadline);
        await clients.Requisitions.ListRequisitionsAsync(new ListRequisitionsRequest { PatientId = patient.Id }, deadline: deadline);
        await clients.Requisitions.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = placed.Id }, deadline: deadline);
        await clients.ServiceRequests.GetServiceRequestHistoryAsync(new GetServiceRequestHistoryRequest { Id = serviceRequest.Id }, deadline: deadline);
        await clients.Results.GetResultsAsync(new GetResultsRequest { RequisitionId = placed.Id, IncludeHistory = true }, deadline: deadline);
        await clients.Results.GetReportAsync(new GetReportRequest { Id = report.Id }, deadline: deadline);
        await clients.Results.GetFhirBundleAsync(new GetFhirBundleRequest { RequisitionId = placed.Id }, deadline: deadline);
        await clients.Results.InterpretMarkersAsync(new InterpretMarkersRequest { Results = { Potassium() } }, deadline: deadline);
        await clients.Notifications.GetCriticalResultAsync(new GetCriticalResultRequest { Id = critical[0].Id }, deadline: deadline);
        await clients.Notifications.ListEventsAsync(new ListEventsRequest { Filter = new EventFilter { RequisitionId = placed.Id } }, deadline: deadline);
        var streamed = 0;
        while (streamed < 3 && await subscription.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(AllInOne.Timeout))
        {
            streamed += subscription.ResponseStream.Current.ItemCase == SubscribeResponse.ItemOneofCase.Event ? 1 : 0;
        }

        // Mistakes that carry the patient's data.
        var bad = AllInOne.Order(new Patient { Id = "pt-4471", GivenName = GivenName + new string('x', 200), FamilyName = FamilyName, BirthDate = "14/03/1958", Sex = FamilyName });
        bad.Lab = GivenName + new string('y', 100);
        bad.Tests.Add(new OrderedTest { Code = FamilyName.ToLowerInvariant(), PartnerId = "", Description = BirthDate });
        await ExpectErrorAsync("CreateRequisition with bad patient fields", clients.Requisitions.CreateRequisitionAsync(bad, deadline: deadline).ResponseAsync);
        var reused = AllInOne.Order(new Patient(patient) { BirthDate = "1958-03-15" }, "BMP");
        reused.RequestId = draftRequest.RequestId;
        await ExpectErrorAsync("CreateRequisition reusing a request id", clients.Requisitions.CreateRequisitionAsync(reused, deadline: deadline).ResponseAsync);
        await ExpectErrorAsync("RecordOrderEvent with a status naming the patient", clients.Requisitions.RecordOrderEventAsync(
            new RecordOrderEventRequest { Id = placed.Id, Status = $"{GivenName}.{BirthDate}.6.37" }, deadline: deadline).ResponseAsync);
        var badResults = Results(placed, final: false);
        badResults.Results.Add(new Marker { Name = FamilyName, Slug = "potassium", Unit = BirthDate + new string('u', 40), TextValue = $"6.37 mmol/L {GivenName} {FamilyName} {BirthDate}" });
        badResults.Results.Add(new Marker { Name = "Glucose", Slug = GivenName, Unit = "mg/dL", NumericValue = double.NaN, Notes = FamilyName });
        badResults.Metadata.DateCollected = "14.03.1958";
        await ExpectErrorAsync("SubmitResults with bad markers", clients.Results.SubmitResultsAsync(badResults, deadline: deadline).ResponseAsync);
        await ExpectErrorAsync("InterpretMarkers with bad markers",
            clients.Results.InterpretMarkersAsync(new InterpretMarkersRequest { Results = { badResults.Results } }, deadline: deadline).ResponseAsync);
        await ExpectErrorAsync("AmendResults of a partial report", clients.Results.AmendResultsAsync(amend, deadline: deadline).ResponseAsync);
        await ExpectErrorAsync("AcknowledgeCriticalResult twice with a long read-back", clients.Notifications.AcknowledgeCriticalResultAsync(
            new AcknowledgeCriticalResultRequest { Id = critical[0].Id, ReadBack = $"6.37 {GivenName} " + new string('r', 2_000) }, deadline: deadline).ResponseAsync);
        await ExpectErrorAsync("AcknowledgeCriticalResult again", clients.Notifications.AcknowledgeCriticalResultAsync(
            new AcknowledgeCriticalResultRequest { Id = critical[0].Id, ReadBack = $"6.37 {GivenName}", Channel = AcknowledgementChannel.App }, deadline: deadline).ResponseAsync);
        await ExpectErrorAsync("ListEvents with event types naming the patient", clients.Notifications.ListEventsAsync(
            new ListEventsRequest { Filter = new EventFilter { Types_ = { $"{GivenName} {FamilyName}", BirthDate, "6.37" } } }, deadline: deadline).ResponseAsync);
        await ExpectErrorAsync("ShareInterpretation with a long note", clients.Results.ShareInterpretationAsync(
            new ShareInterpretationRequest { RequisitionId = placed.Id, Note = $"{GivenName} 6.37 " + new string('n', 4_000) }, deadline: deadline).ResponseAsync);
        await ExpectErrorAsync("UpdateTaskStatus backwards", partner.ServiceRequests.UpdateTaskStatusAsync(new UpdateTaskStatusRequest
        {
            Id = serviceRequest.Id,
            TaskBusinessStatus = TaskBusinessStatus.OrderConfirmed,
            TaskDescription = $"{FamilyName} {BirthDate}",
        }, deadline: deadline).ResponseAsync);

        // The asynchronous work (outbox relays, notification ingest, webhooks) done and exported: the critical result's
        // last hop, the workflow's metrics and log records. What the host did by then, the capture in it saw too.
        await Eventually.HoldsAsync(
            () => otlp.Spans.Any(span => span.Span.Name == "deliver labtest.result.critical")
                && otlp.Metrics.Any(m => m.Metric.Name == "labmesh.critical_results.acknowledged")
                && otlp.Logs.Count > 20,
            AllInOne.Timeout, "the workflow's spans, metrics and logs over OTLP");
        capture.CollectObservables();
        output.WriteLine($"{capture.Logs} log records, {capture.Spans} spans, {capture.Measurements} measurements, {_errors.Count} errors scanned");
        Assert.True(capture.Logs > 20 && capture.Spans > 20 && capture.Measurements > 20, "the capture saw too little to be a real scan");
        Assert.True(streamed > 0, "the subscriber saw no event");
        var exported = otlp.Text().ToList();
        output.WriteLine($"{otlp.Spans.Count} spans, {otlp.Metrics.Count} metrics, {otlp.Logs.Count} log records over OTLP: {exported.Count} lines scanned");

        var leaks = Leaks([.. capture.Lines, .. _errors, .. exported]);
        Assert.True(leaks.Count == 0, $"{leaks.Count} lines carry patient data:\n" + string.Join("\n", leaks.Take(30)));
        mesh.Host.Logs.AssertNoErrors();
    }

    private static List<string> Leaks(IEnumerable<(string Where, string Text)> lines) =>
        [.. lines.Where(l => Needles.Any(n => l.Text.Contains(n, StringComparison.OrdinalIgnoreCase)) || ResultValue().IsMatch(l.Text))
            .Select(l => $"{l.Where}: {(l.Text.Length > 400 ? l.Text[..400] + "..." : l.Text)}")];

    // 6.37 and 211.4 as numbers of their own (not inside 16.3712 or 1211.45), in either decimal separator.
    [GeneratedRegex(@"(?<![\d.,])(6[.,]37|211[.,]4)(?![\d])")]
    private static partial Regex ResultValue();

    private async Task ExpectErrorAsync<T>(string what, Task<T> call)
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => call.WaitAsync(AllInOne.Timeout));
        Assert.NotEqual(StatusCode.Internal, error.StatusCode);
        Assert.NotEqual(StatusCode.Unknown, error.StatusCode);
        _errors.Add(($"error of {what} ({error.StatusCode})", error.Status.Detail));
        foreach (var trailer in error.Trailers)
        {
            _errors.Add(($"error of {what}, trailer {trailer.Key}", trailer.IsBinary ? Encoding.UTF8.GetString(trailer.ValueBytes) : trailer.Value));
        }
    }

    private static Marker Potassium() =>
        new() { Name = "Potassium", Slug = "potassium", Unit = "mmol/L", NumericValue = 6.37, MinRangeValue = 3.5, MaxRangeValue = 5.1, Notes = $"hemolysed? {GivenName}" };

    private static SubmitResultsRequest Results(LabMesh.Contracts.Requisition.V1.Requisition requisition, bool final)
    {
        var request = new SubmitResultsRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            RequisitionId = requisition.Id,
            Metadata = new ReportMetadata
            {
                Laboratory = "LabCorp",
                SpecimenNumber = "W4123LKB3VTL",
                Status = final ? ReportStatus.Final : ReportStatus.Partial,
                DateCollected = "2026-11-20",
                DateReported = "2026-11-21",
                Provider = "Dr. Jack Smith",
            },
        };
        request.ServiceRequestIds.AddRange(final ? requisition.ServiceRequests.Select(r => r.Id) : [requisition.ServiceRequests[0].Id]);
        request.Results.Add(Potassium());
        request.Results.Add(new Marker { Name = "Glucose", Slug = "glucose", Unit = "mg/dL", NumericValue = 211.4, MinRangeValue = 70, MaxRangeValue = 99 });
        request.Results.Add(new Marker { Name = "Sodium", Slug = "sodium", Unit = "mmol/L", TextValue = "<211.4" });
        return request;
    }
}
