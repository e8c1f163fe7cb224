using Grpc.Core;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Messaging.Events;
using LabMesh.Testing;

namespace LabMesh.Notification.Tests.Service;

public sealed class SqliteCriticalTierTests() : CriticalTierTests(Backend.Sqlite);

public sealed class PostgresCriticalTierTests() : CriticalTierTests(Backend.Postgres);

/// <summary>
/// CLSI GP47's tiers end to end through the gRPC APIs, the Notification store on SQLite and PostgreSQL:
/// ResultsInterpretation gives each critical result its tier (the catalog's, or the team's own), and
/// Notification follows it up with the team's window and escalation chain for that tier; "not my patient"
/// escalates at once. Unsolicited results are routed like any other event.
/// </summary>
public abstract class CriticalTierTests(Backend backend) : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = NotificationMesh.Timeout;
    private readonly string _team = "team-" + Guid.NewGuid().ToString("N")[..8];
    private NotificationMesh _mesh = null!;

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    public async Task InitializeAsync()
    {
        var results = new Dictionary<string, string?> { [$"LabMesh:Results:Teams:{_team}:Tiers:glucose"] = "significant_risk" };
        var tiers = new Dictionary<string, string?>
        {
            [$"LabMesh:Notification:Teams:{_team}:CriticalTiers:critical_risk:AcknowledgementWindow"] = "00:00:01",
            [$"LabMesh:Notification:Teams:{_team}:CriticalTiers:critical_risk:EscalationChain:0"] = "attending",
            [$"LabMesh:Notification:Teams:{_team}:CriticalTiers:critical_risk:EscalationChain:1"] = "on_call_physician",
            [$"LabMesh:Notification:Teams:{_team}:CriticalTiers:significant_risk:AcknowledgementWindow"] = "01:00:00",
            [$"LabMesh:Notification:Teams:{_team}:CriticalTiers:significant_risk:EscalationChain:0"] = "nurse_line",
            [$"LabMesh:Notification:Teams:{_team}:CriticalTiers:significant_risk:EscalationChain:1"] = "lab_director",
        };
        _mesh = await NotificationMesh.StartAsync(backend, null, results, tiers, "a").WaitAsync(TimeSpan.FromSeconds(120));
    }

    public async Task DisposeAsync()
    {
        var logs = _mesh.Logs.ToList();
        await _mesh.DisposeAsync();
        foreach (var log in logs)
        {
            log.AssertNoErrors();
        }
    }

    [Fact]
    public async Task EachTier_HasItsTeamsWindowAndChain_CriticalRiskEscalatesAlongIt_SignificantRiskWaits()
    {
        var clinician = _mesh.Notifications("a", _team, "dr-lee");
        var order = await Orders.PlaceAsync(_mesh.RequisitionClient(_team), "BMP", "GLU");
        await _mesh.ResultsClient(_team).SubmitResultsAsync(Orders.CriticalPotassium(order), deadline: Deadline);
        var glucose = Orders.CriticalPotassium(order);
        glucose.ServiceRequestIds[0] = order.ServiceRequests[1].Id;
        glucose.Results[0] = new Marker { Name = "Glucose", Slug = "glucose", Unit = "mg/dL", NumericValue = 30, MinRangeValue = 70, MaxRangeValue = 99 };
        var glucoseReport = (await _mesh.ResultsClient(_team).SubmitResultsAsync(glucose, deadline: Deadline)).Report;
        Assert.Equal(CriticalTier.SignificantRisk, glucoseReport.CriticalTier);

        var criticals = await Eventually.MatchAsync(
            async () => (await clinician.ListUnacknowledgedCriticalResultsAsync(new ListUnacknowledgedCriticalResultsRequest { RequisitionId = order.Id }, deadline: Deadline)).CriticalResults,
            c => c.Count == 2, Timeout, "both critical results opened");
        var potassium = Assert.Single(criticals, c => c.CriticalAnalytes.Contains("potassium"));
        var significant = Assert.Single(criticals, c => c.CriticalAnalytes.Contains("glucose"));
        Assert.Equal("critical_risk", potassium.Tier);
        Assert.Equal("significant_risk", significant.Tier);
        Assert.Equal(TimeSpan.FromHours(1), significant.DueAt.ToDateTimeOffset() - significant.OpenedAt.ToDateTimeOffset());

        // Critical-risk: every second, to the next step of the chain, the last step again after its end.
        var escalations = await Eventually.MatchAsync(
            () => EventsAsync(order.Id, EventTypes.CriticalResultEscalated), e => e.Count >= 3, Timeout, "three escalations of the potassium");
        Assert.All(escalations, e => Assert.Equal(potassium.Id, e.CriticalResultEscalated.CriticalResultId));
        Assert.Equal(
            [(1, "attending"), (2, "on_call_physician"), (3, "on_call_physician")],
            escalations.Take(3).Select(e => (e.CriticalResultEscalated.Escalation, e.CriticalResultEscalated.EscalatedTo)));
        Assert.All(escalations, e => Assert.Equal(("critical_risk", "unacknowledged", ""),
            (e.CriticalResultEscalated.Tier, e.CriticalResultEscalated.Reason, e.CriticalResultEscalated.DeclinedBy)));
        var criticalEvent = Assert.Single(await EventsAsync(order.Id, EventTypes.LabTestResultCritical), e => e.Id == potassium.Id);
        Assert.Equal("critical_risk", criticalEvent.CriticalResult.Tier);

        // Significant-risk: its hour has not passed, so nothing escalated it.
        var detail = await clinician.GetCriticalResultAsync(new GetCriticalResultRequest { Id = significant.Id }, deadline: Deadline);
        Assert.Equal((0, CriticalResultState.Open, ""), (detail.CriticalResult.Escalations, detail.CriticalResult.State, detail.CriticalResult.EscalatedTo));
        Assert.Contains("significant_risk; acknowledgement due within", Assert.Single(detail.Audit).Detail, StringComparison.Ordinal);

        var acknowledged = await clinician.AcknowledgeCriticalResultAsync(new AcknowledgeCriticalResultRequest
        {
            Id = potassium.Id, ReadBack = "Potassium critical high, read back", Channel = AcknowledgementChannel.Phone,
        }, deadline: Deadline);
        Assert.Equal("critical_risk", acknowledged.CriticalResult.Tier);
        var ack = await Eventually.MatchAsync(() => EventsAsync(order.Id, EventTypes.CriticalResultAcknowledged), e => e.Count == 1, Timeout, "the acknowledgement");
        Assert.Equal("critical_risk", ack[0].CriticalResultAcknowledged.Tier);
    }

    [Fact]
    public async Task NotMyPatient_RecordsWhoDeclined_AndEscalatesAtOnceToTheNextStep_UntilAcknowledged()
    {
        var order = await Orders.PlaceAsync(_mesh.RequisitionClient(_team), "GLU");
        var glucose = Orders.CriticalPotassium(order);
        glucose.Results[0] = new Marker { Name = "Glucose", Slug = "glucose", Unit = "mg/dL", NumericValue = 30, MinRangeValue = 70, MaxRangeValue = 99 };
        await _mesh.ResultsClient(_team).SubmitResultsAsync(glucose, deadline: Deadline);
        var lee = _mesh.Notifications("a", _team, "dr-lee");
        var critical = (await Eventually.MatchAsync(
            async () => (await lee.ListUnacknowledgedCriticalResultsAsync(new ListUnacknowledgedCriticalResultsRequest { RequisitionId = order.Id }, deadline: Deadline)).CriticalResults,
            c => c.Count == 1, Timeout, "the critical result opened"))[0];

        var declined = (await lee.DeclineCriticalResultAsync(
            new DeclineCriticalResultRequest { Id = critical.Id, Reason = "transferred to cardiology" }, deadline: Deadline)).CriticalResult;

        Assert.Equal((CriticalResultState.Escalated, 1, "nurse_line"), (declined.State, declined.Escalations, declined.EscalatedTo));
        Assert.Equal(["dr-lee"], declined.DeclinedBy);
        var kim = _mesh.Notifications("a", _team, "dr-kim");
        var again = (await kim.DeclineCriticalResultAsync(
            new DeclineCriticalResultRequest { Id = critical.Id, DeclinedBy = "dr.kim@clinic.example", Reason = "not on my list" }, deadline: Deadline)).CriticalResult;
        Assert.Equal((2, "lab_director"), (again.Escalations, again.EscalatedTo));
        Assert.Equal(["dr-lee", "dr.kim@clinic.example"], again.DeclinedBy);
        // The window starts again from the decline: the next step has its full hour.
        Assert.InRange(again.DueAt.ToDateTimeOffset() - DateTimeOffset.UtcNow, TimeSpan.FromMinutes(59), TimeSpan.FromHours(1));

        var events = await Eventually.MatchAsync(() => EventsAsync(order.Id, EventTypes.CriticalResultEscalated), e => e.Count == 2, Timeout, "both escalations");
        Assert.Equal(
            [(1, "nurse_line", "declined", "dr-lee"), (2, "lab_director", "declined", "dr.kim@clinic.example")],
            events.Select(e => (e.CriticalResultEscalated.Escalation, e.CriticalResultEscalated.EscalatedTo, e.CriticalResultEscalated.Reason, e.CriticalResultEscalated.DeclinedBy)));
        Assert.All(events, e => Assert.Equal("significant_risk", e.CriticalResultEscalated.Tier));
        Assert.DoesNotContain(events, e => e.ToString().Contains("cardiology", StringComparison.Ordinal));

        var audit = (await lee.GetCriticalResultAsync(new GetCriticalResultRequest { Id = critical.Id }, deadline: Deadline)).Audit;
        Assert.Equal(["opened", "declined", "escalated", "declined", "escalated"], audit.Where(a => a.Action != "notified").Select(a => a.Action));
        var first = audit.First(a => a.Action == "declined");
        Assert.Equal("dr-lee", first.Actor);
        Assert.Contains("transferred to cardiology", first.Detail, StringComparison.Ordinal);
        Assert.Contains("escalation 1 to nurse_line (significant_risk", audit.First(a => a.Action == "escalated").Detail, StringComparison.Ordinal);

        var invalid = await Assert.ThrowsAsync<RpcException>(() => lee.DeclineCriticalResultAsync(
            new DeclineCriticalResultRequest { Id = critical.Id, Reason = " " }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, invalid.StatusCode);
        Assert.Equal(["reason"], invalid.GetDetail<Google.Rpc.BadRequest>()!.FieldViolations.Select(v => v.Field));
        var unknown = await Assert.ThrowsAsync<RpcException>(() => lee.DeclineCriticalResultAsync(
            new DeclineCriticalResultRequest { Id = Guid.CreateVersion7().ToString(), Reason = "not mine" }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);

        await kim.AcknowledgeCriticalResultAsync(new AcknowledgeCriticalResultRequest
        {
            Id = critical.Id, ReadBack = "Glucose low, read back", Channel = AcknowledgementChannel.Phone,
        }, deadline: Deadline);
        var closed = await Assert.ThrowsAsync<RpcException>(() => lee.DeclineCriticalResultAsync(
            new DeclineCriticalResultRequest { Id = critical.Id, Reason = "not mine" }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, closed.StatusCode);
        var after = (await lee.GetCriticalResultAsync(new GetCriticalResultRequest { Id = critical.Id }, deadline: Deadline)).CriticalResult;
        Assert.Equal((CriticalResultState.Acknowledged, 2), (after.State, after.Escalations));
    }

    [Fact]
    public async Task UnsolicitedResult_IsIngestedAndRoutedLikeAnyEvent_ToSubscribersAndWebhooksThatAskForIt()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var admin = _mesh.Notifications("a", _team);
        await admin.CreateWebhookEndpointAsync(new CreateWebhookEndpointRequest
        {
            RequestId = "unsolicited", Url = receiver.Url, EventTypes = { EventTypes.LabTestResultUnsolicited },
        }, deadline: Deadline);
        var order = await Orders.PlaceAsync(_mesh.RequisitionClient(_team), "BMP");
        var report = Orders.CriticalPotassium(order);
        report.ServiceRequestIds.Clear();
        report.Results[0] = new Marker { Name = "Vitamin D", Slug = "vitamin_d", Unit = "ng/mL", NumericValue = 18, MinRangeValue = 30, MaxRangeValue = 100 };

        var stored = (await _mesh.ResultsClient(_team).SubmitResultsAsync(report, deadline: Deadline)).Report;

        var hooks = await Eventually.MatchAsync(() => Task.FromResult(receiver.Received.ToList()), r => r.Count >= 1, Timeout, "the unsolicited webhook");
        var hook = Assert.Single(hooks);
        Assert.Equal(EventTypes.LabTestResultUnsolicited, hook.Event.Type);
        Assert.Equal(stored.Id, hook.Event.UnsolicitedResult.ReportId);
        Assert.Equal(["vitamin_d"], hook.Event.UnsolicitedResult.Analytes);
        var listed = await EventsAsync(order.Id, EventTypes.LabTestResultUnsolicited);
        Assert.Equal(hook.Event.Id, Assert.Single(listed).Id);
    }

    [Fact]
    public async Task ListUnacknowledgedCriticalResultsAndListEvents_LargeCriticalResults_ComeInPagesUnderTheMessageLimit()
    {
        // Another team: the default 30-minute window, so nothing escalates meanwhile.
        var team = _team + "-large";
        var order = await Orders.PlaceAsync(_mesh.RequisitionClient(team), "BMP");
        // 130 of about 34 KB: past 4 MiB in one response if either list did not stop at its byte budget.
        const int reports = 130;
        for (var r = 0; r < reports; r++)
        {
            var request = Orders.CriticalPotassium(order);
            request.Results.Clear();
            // 500 markers the lab called critical, each with a 64-character slug: about 34 KB of analytes per critical result.
            request.Results.AddRange(Enumerable.Range(0, 500).Select(i => new Marker
            {
                Name = "m", Slug = $"{r:D3}_{i:D3}_".PadRight(64, 'x'), Unit = "mg/dL", NumericValue = 1, Interpretation = Interpretation.Critical,
            }));
            await _mesh.ResultsClient(team).SubmitResultsAsync(request, deadline: Deadline);
        }

        var client = _mesh.Notifications("a", team);
        await Eventually.MatchAsync(
            async () => (await client.ListUnacknowledgedCriticalResultsAsync(
                new ListUnacknowledgedCriticalResultsRequest { RequisitionId = order.Id, PageSize = 500 }, deadline: Deadline)).CriticalResults.Count,
            c => c > 0, Timeout, "the critical results opened");
        var seen = new List<string>();
        var request2 = new ListUnacknowledgedCriticalResultsRequest { RequisitionId = order.Id, PageSize = 500 };
        var pages = 0;
        var until = DateTime.UtcNow + Timeout;
        while (seen.Count < reports && DateTime.UtcNow < until)
        {
            var page = await client.ListUnacknowledgedCriticalResultsAsync(request2, deadline: Deadline);
            pages++;
            Assert.InRange(page.CalculateSize(), 0, 4 * 1024 * 1024 - 1);
            Assert.True(page.CriticalResults.Count <= 1 || page.CriticalResults.Sum(c => c.CalculateSize()) <= LabMesh.Messaging.Storage.PageBudget.MaxBytes);
            seen.AddRange(page.CriticalResults.Select(c => c.Id));
            // Ingest may still be opening the last ones: continue from the last id seen.
            request2.PageToken = page.NextPageToken.Length > 0 || seen.Count == 0 ? page.NextPageToken : Messaging.Storage.PageToken.Encode(seen[^1]);
        }

        Assert.Equal(reports, seen.Count);
        Assert.Equal(reports, seen.Distinct().Count());
        Assert.True(pages >= 2, $"{pages} page(s) for {reports} critical results of ~34 KB");

        // The critical events carry the same analytes: ListEvents at its largest page size pages by bytes as well.
        var events = await Eventually.MatchAsync(() => ListAllEventsAsync(team, order.Id, EventTypes.LabTestResultCritical),
            l => l.Events.Select(e => e.Event.CriticalResult.ReportId).Distinct().Count() >= reports, Timeout, "the critical events");
        Assert.Equal(events.Events.Count, events.Events.Select(e => e.Cursor).Distinct().Count());
        Assert.Equal(reports, events.Events.Select(e => e.Event.CriticalResult.ReportId).Distinct().Count());
        Assert.True(events.Pages >= 2, $"{events.Pages} page(s) for {events.Events.Count} critical events of ~34 KB");
    }

    /// <summary>Every page of a requisition's events of one type from the oldest kept, each checked against the message limit.</summary>
    private async Task<(List<StreamEvent> Events, int Pages)> ListAllEventsAsync(string team, string requisitionId, string type)
    {
        var client = _mesh.Notifications("a", team);
        var request = new ListEventsRequest { Filter = new EventFilter { RequisitionId = requisitionId }, PageSize = 1000 };
        request.Filter.Types_.Add(type);
        var events = new List<StreamEvent>();
        var pages = 0;
        while (true)
        {
            var page = await client.ListEventsAsync(request, deadline: Deadline);
            pages++;
            Assert.InRange(page.CalculateSize(), 0, 4 * 1024 * 1024 - 1);
            Assert.True(page.Events.Count <= 1 || page.Events.Sum(e => e.CalculateSize()) <= LabMesh.Messaging.Storage.PageBudget.MaxBytes);
            events.AddRange(page.Events);
            if (page.NextCursor.Length == 0 || page.NextCursor == request.After)
            {
                return (events, pages);
            }

            request.After = page.NextCursor;
        }
    }

    private async Task<List<Event>> EventsAsync(string requisitionId, string type)
    {
        var request = new ListEventsRequest { Filter = new EventFilter { RequisitionId = requisitionId }, PageSize = 1000 };
        request.Filter.Types_.Add(type);
        var page = await _mesh.Notifications("a", _team).ListEventsAsync(request, deadline: Deadline);
        return [.. page.Events.Select(e => e.Event)];
    }
}
