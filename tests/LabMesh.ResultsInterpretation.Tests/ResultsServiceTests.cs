using Grpc.Core;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Messaging.Events;
using LabMesh.Testing;

namespace LabMesh.ResultsInterpretation.Tests;

/// <summary>The three services on one backend, shared by a test class; each test works in its own team.</summary>
public abstract class ResultsMeshFixture(Backend backend) : IAsyncLifetime
{
    public ResultsMesh Mesh { get; private set; } = null!;

    public async Task InitializeAsync() => Mesh = await ResultsMesh.StartAsync(backend).WaitAsync(TimeSpan.FromSeconds(120));

    public async Task DisposeAsync()
    {
        var logs = Mesh.Logs.ToList();
        await Mesh.DisposeAsync();
        foreach (var log in logs)
        {
            log.AssertNoErrors();
        }
    }
}

public sealed class SqliteResultsMesh() : ResultsMeshFixture(Backend.Sqlite);

public sealed class PostgresResultsMesh() : ResultsMeshFixture(Backend.Postgres);

public sealed class SqliteResultsServiceTests(SqliteResultsMesh fixture) : ResultsServiceTests(fixture.Mesh), IClassFixture<SqliteResultsMesh>;

public sealed class PostgresResultsServiceTests(PostgresResultsMesh fixture) : ResultsServiceTests(fixture.Mesh), IClassFixture<PostgresResultsMesh>;

/// <summary>ResultsInterpretation through its generated client, with the Requisition and ServiceRequest services it calls.</summary>
public abstract class ResultsServiceTests(ResultsMesh mesh)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);
    private readonly string _team = "team-" + Guid.NewGuid().ToString("N")[..8];

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    private ResultsInterpretationService.ResultsInterpretationServiceClient Client => mesh.ResultsClient(_team);

    public static Marker Numeric(string slug, double value, string unit, double? min = null, double? max = null)
    {
        var marker = new Marker { Name = slug, Slug = slug, Unit = unit, NumericValue = value };
        if (min is { } low)
        {
            marker.MinRangeValue = low;
        }

        if (max is { } high)
        {
            marker.MaxRangeValue = high;
        }

        return marker;
    }

    public static SubmitResultsRequest Report(string requisitionId, ReportStatus status, IEnumerable<string> serviceRequestIds, params Marker[] markers)
    {
        var request = new SubmitResultsRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            RequisitionId = requisitionId,
            Metadata = new ReportMetadata
            {
                Laboratory = "LabCorp",
                SpecimenNumber = "W4123LKB3VTL",
                Status = status,
                DateCollected = "2026-11-20",
                DateReported = "2026-11-21",
            },
        };
        request.ServiceRequestIds.AddRange(serviceRequestIds);
        request.Results.AddRange(markers);
        return request;
    }

    [Fact]
    public async Task SubmitResults_PartialWithCriticalPotassium_ReadsIt_MovesItsTest_AndPublishesOnce()
    {
        var order = await mesh.PlaceOrderAsync(_team, "BMP", "CBC");
        var bmp = order.ServiceRequests[0];
        var request = Report(order.Id, ReportStatus.Partial, [bmp.Id],
            Numeric("potassium", 6.8, "mmol/L", 3.5, 5.1),
            Numeric("sodium", 140, "mmol/L", 135, 145));

        var response = await Client.SubmitResultsAsync(request, deadline: Deadline);

        Assert.True(response.Created);
        var report = response.Report;
        Assert.Equal(1, report.Version);
        Assert.Equal(Interpretation.Critical, report.Metadata.Interpretation);
        Assert.Equal(Interpretation.Critical, report.Results[0].Reading.Interpretation);
        Assert.True(report.Results[0].Reading.IsAboveMaxRange);
        Assert.Equal("potassium", report.Results[0].Reading.CriticalLimitAnalyte);
        Assert.Equal(Interpretation.Normal, report.Results[1].Reading.Interpretation);

        var statuses = await mesh.ServiceRequestClient(_team).BatchGetStatusAsync(
            new BatchGetStatusRequest { Ids = { bmp.Id, order.ServiceRequests[1].Id } }, deadline: Deadline);
        Assert.Equal(TaskBusinessStatus.PartialResultsReady, statuses.Statuses[0].TaskBusinessStatus);
        Assert.Equal(TaskBusinessStatus.Unspecified, statuses.Statuses[1].TaskBusinessStatus);

        var requisition = await mesh.RequisitionClient(_team).GetRequisitionAsync(new GetRequisitionRequest { Id = order.Id }, deadline: Deadline);
        Assert.Equal(LifecycleStatus.PartialResults, requisition.Requisition.LifecycleStatus);

        var events = await Eventually.MatchAsync(() => mesh.ResultsEventsAsync(order.Id), e => e.Count >= 2, Timeout, "the report's events");
        var critical = Assert.Single(events, e => e.Type == EventTypes.LabTestResultCritical);
        Assert.Equal(order.Id, critical.CriticalResult.OrderId);
        Assert.Equal("W4123LKB3VTL", critical.CriticalResult.SampleId);
        Assert.Equal("partial", critical.CriticalResult.Status);
        Assert.Equal("critical", critical.CriticalResult.Interpretation);
        Assert.Equal(_team, critical.CriticalResult.TeamId);
        Assert.Equal("patient-7", critical.CriticalResult.UserId);
        Assert.Equal(["potassium"], critical.CriticalResult.CriticalAnalytes);
        var updated = Assert.Single(events, e => e.Type == EventTypes.LabOrderUpdated);
        Assert.Equal("results_received", updated.LabOrderUpdated.Status);
    }

    [Fact]
    public async Task SubmitResults_SameRequestIdAgain_ReturnsTheStoredReport_AndPublishesNothingTwice()
    {
        var order = await mesh.PlaceOrderAsync(_team, "BMP");
        var request = Report(order.Id, ReportStatus.Partial, [order.ServiceRequests[0].Id], Numeric("potassium", 2.1, "mmol/L", 3.5, 5.1));
        var first = await Client.SubmitResultsAsync(request, deadline: Deadline);
        await Eventually.MatchAsync(() => mesh.ResultsEventsAsync(order.Id), e => e.Count == 2, Timeout, "the first submission's events");

        var again = await Client.SubmitResultsAsync(request, deadline: Deadline);

        Assert.False(again.Created);
        Assert.Equal(first.Report, again.Report);
        await Eventually.HoldsAsync(async () => (await mesh.ResultsEventsAsync(order.Id)).Count == 2, TimeSpan.FromSeconds(1),
            "no event is published for the repeat");
        var results = await Client.GetResultsAsync(new GetResultsRequest { RequisitionId = order.Id }, deadline: Deadline);
        Assert.Single(results.Reports);
    }

    [Fact]
    public async Task SubmitResults_SameRequestIdForAnotherReport_IsAlreadyExists()
    {
        var order = await mesh.PlaceOrderAsync(_team, "BMP");
        var request = Report(order.Id, ReportStatus.Partial, [order.ServiceRequests[0].Id], Numeric("sodium", 140, "mmol/L"));
        await Client.SubmitResultsAsync(request, deadline: Deadline);
        request.Results[0].NumericValue = 141;

        var error = await Assert.ThrowsAsync<RpcException>(() => Client.SubmitResultsAsync(request, deadline: Deadline).ResponseAsync);

        Assert.Equal(StatusCode.AlreadyExists, error.StatusCode);
    }

    [Fact]
    public async Task SubmitResults_FinalForEveryTest_AllResultsReceived_AndTheInterpretationIsReady()
    {
        var order = await mesh.PlaceOrderAsync(_team, "BMP", "CBC");
        await Client.SubmitResultsAsync(
            Report(order.Id, ReportStatus.Final, [order.ServiceRequests[0].Id], Numeric("glucose", 95, "mg/dL", 70, 99)), deadline: Deadline);
        var afterOne = await Client.GetResultsAsync(new GetResultsRequest { RequisitionId = order.Id }, deadline: Deadline);
        Assert.False(afterOne.AllResultsReceived);
        Assert.Equal("partial_results", afterOne.ResultsStatus);

        await Client.SubmitResultsAsync(
            Report(order.Id, ReportStatus.Final, [order.ServiceRequests[1].Id], Numeric("hemoglobin", 125, "g/L", 120, 160)), deadline: Deadline);

        var results = await Client.GetResultsAsync(new GetResultsRequest { RequisitionId = order.Id }, deadline: Deadline);
        Assert.True(results.AllResultsReceived);
        Assert.Equal("interpretation_ready", results.ResultsStatus);
        Assert.Equal(Interpretation.Normal, results.Interpretation);
        Assert.Equal(2, results.Reports.Count);
        var requisition = await mesh.RequisitionClient(_team).GetRequisitionAsync(new GetRequisitionRequest { Id = order.Id }, deadline: Deadline);
        Assert.Equal(LifecycleStatus.InterpretationReady, requisition.Requisition.LifecycleStatus);
        Assert.All(requisition.Requisition.ServiceRequests, s =>
        {
            Assert.Equal(TaskBusinessStatus.FullResultsReady, s.TaskBusinessStatus);
            Assert.Equal(ServiceRequestStatus.Completed, s.Status);
        });
        var events = await Eventually.MatchAsync(() => mesh.ResultsEventsAsync(order.Id), e => e.Count == 2, Timeout, "both reports' events");
        Assert.Equal(["results_received", "all_results_received"], events.Select(e => e.LabOrderUpdated.Status));
        Assert.DoesNotContain(events, e => e.Type == EventTypes.LabTestResultCritical);
    }

    [Fact]
    public async Task SubmitResults_TheStoredLifecycle_FollowsEveryTestOfTheRequisition_NamedOrNot_AsTheResultsLeftThem()
    {
        var order = await mesh.PlaceOrderAsync(_team, "BMP", "CBC");
        var (bmp, cbc) = (order.ServiceRequests[0].Id, order.ServiceRequests[1].Id);
        var requisitions = mesh.RequisitionClient(_team);

        await Client.SubmitResultsAsync(Report(order.Id, ReportStatus.Final, [bmp], Numeric("glucose", 95, "mg/dL", 70, 99)), deadline: Deadline);
        var afterBmp = await requisitions.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = order.Id }, deadline: Deadline);

        // BMP's results are final, CBC has none: partial results, not RESULTS_READY (which BMP alone would give).
        Assert.Equal(LifecycleStatus.PartialResults, afterBmp.Status.LifecycleStatus);

        // The lab marks CBC's results ready without a report here; the next report (BMP's again) moves the milestone,
        // and the stored view takes CBC's status as it is now.
        await mesh.ServiceRequestClient(_team).UpdateTaskStatusAsync(
            new UpdateTaskStatusRequest { Id = cbc, TaskBusinessStatus = TaskBusinessStatus.FullResultsReady }, deadline: Deadline);
        await Client.SubmitResultsAsync(Report(order.Id, ReportStatus.Partial, [bmp], Numeric("sodium", 140, "mmol/L", 135, 145)), deadline: Deadline);
        var afterCbc = await requisitions.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = order.Id }, deadline: Deadline);

        Assert.Equal(LifecycleStatus.ResultsReady, afterCbc.Status.LifecycleStatus);
        var read = await requisitions.GetRequisitionAsync(new GetRequisitionRequest { Id = order.Id }, deadline: Deadline);
        Assert.Equal(LifecycleStatus.ResultsReady, read.Requisition.LifecycleStatus);
        Assert.Equal(afterCbc.Status.Etag, read.Requisition.Etag);
    }

    [Fact]
    public async Task AmendResults_KeepsBothVersions_PublishesResultsAmended_AndTheLifecycleShowsIt()
    {
        var order = await mesh.PlaceOrderAsync(_team, "BMP");
        var submitted = (await Client.SubmitResultsAsync(
            Report(order.Id, ReportStatus.Final, [order.ServiceRequests[0].Id], Numeric("calcium", 9.5, "mg/dL", 8.6, 10.3)),
            deadline: Deadline)).Report;
        var amend = new AmendResultsRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            ReportId = submitted.Id,
            Reason = "calcium re-run after a hemolysed sample",
            Metadata = submitted.Metadata.Clone(),
            ExpectedVersion = 1,
        };
        amend.Results.Add(Numeric("calcium", 13.4, "mg/dL", 8.6, 10.3));

        var amended = await Client.AmendResultsAsync(amend, deadline: Deadline);

        Assert.True(amended.Created);
        Assert.Equal(2, amended.Report.Version);
        Assert.Equal(submitted.Id, amended.Report.Id);
        Assert.Equal("calcium re-run after a hemolysed sample", amended.Report.AmendmentReason);
        Assert.Equal(Interpretation.Critical, amended.Report.Metadata.Interpretation);
        var history = await Client.GetResultsAsync(new GetResultsRequest { RequisitionId = order.Id, IncludeHistory = true }, deadline: Deadline);
        Assert.Equal([1, 2], history.Reports.Select(r => r.Version));
        Assert.True(history.Reports[0].Superseded);
        Assert.False(history.Reports[1].Superseded);
        var latest = await Client.GetResultsAsync(new GetResultsRequest { RequisitionId = order.Id }, deadline: Deadline);
        Assert.Equal(2, Assert.Single(latest.Reports).Version);
        Assert.Equal("results_amended", latest.ResultsStatus);
        var first = await Client.GetReportAsync(new GetReportRequest { Id = submitted.Id, Version = 1 }, deadline: Deadline);
        Assert.Equal(9.5, first.Report.Results[0].NumericValue);
        var requisition = await mesh.RequisitionClient(_team).GetRequisitionAsync(new GetRequisitionRequest { Id = order.Id }, deadline: Deadline);
        Assert.Equal(LifecycleStatus.ResultsAmended, requisition.Requisition.LifecycleStatus);

        var events = await Eventually.MatchAsync(() => mesh.ResultsEventsAsync(order.Id), e => e.Count == 3, Timeout, "the amendment's events");
        Assert.Equal(["all_results_received", "results_amended"],
            events.Where(e => e.Type == EventTypes.LabOrderUpdated).Select(e => e.LabOrderUpdated.Status));
        var critical = Assert.Single(events, e => e.Type == EventTypes.LabTestResultCritical);
        Assert.Equal(2, critical.CriticalResult.ReportVersion);

        amend.RequestId = Guid.NewGuid().ToString();
        var stale = await Assert.ThrowsAsync<RpcException>(() => Client.AmendResultsAsync(amend, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.Aborted, stale.StatusCode);
    }

    [Fact]
    public async Task AmendResults_TwoAtOnce_OneWins_TheOtherIsAbortedAsStale_NeverNotFound()
    {
        for (var round = 0; round < 10; round++)
        {
            var order = await mesh.PlaceOrderAsync(_team, "BMP");
            var submitted = (await Client.SubmitResultsAsync(
                Report(order.Id, ReportStatus.Final, [order.ServiceRequests[0].Id], Numeric("sodium", 140, "mmol/L")), deadline: Deadline)).Report;
            AmendResultsRequest Amendment(double value) => new()
            {
                RequestId = Guid.NewGuid().ToString(),
                ReportId = submitted.Id,
                Reason = "transcription error",
                Metadata = submitted.Metadata,
                Results = { Numeric("sodium", value, "mmol/L") },
                ExpectedVersion = 1,
            };

            var outcomes = await Task.WhenAll(new[] { 141.0, 142.0 }.Select(async value =>
            {
                try
                {
                    await Client.AmendResultsAsync(Amendment(value), deadline: Deadline);
                    return StatusCode.OK;
                }
                catch (RpcException ex)
                {
                    return ex.StatusCode;
                }
            }));

            Assert.Equal([StatusCode.OK, StatusCode.Aborted], outcomes.Order());
        }
    }

    [Fact]
    public async Task AmendResults_OfAPartialReport_IsFailedPrecondition_AndStoresNothing()
    {
        var order = await mesh.PlaceOrderAsync(_team, "BMP");
        var submitted = (await Client.SubmitResultsAsync(
            Report(order.Id, ReportStatus.Partial, [order.ServiceRequests[0].Id], Numeric("sodium", 140, "mmol/L")), deadline: Deadline)).Report;
        var amend = new AmendResultsRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            ReportId = submitted.Id,
            Reason = "typo",
            Metadata = new ReportMetadata(),
        };
        amend.Results.Add(Numeric("sodium", 141, "mmol/L"));

        var error = await Assert.ThrowsAsync<RpcException>(() => Client.AmendResultsAsync(amend, deadline: Deadline).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        Assert.NotNull(error.GetDetail<Google.Rpc.PreconditionFailure>());
        var history = await Client.GetResultsAsync(new GetResultsRequest { RequisitionId = order.Id, IncludeHistory = true }, deadline: Deadline);
        Assert.Single(history.Reports);
    }

    [Fact]
    public async Task ShareInterpretation_NeedsEveryResult_ThenShares_OnceAndWithoutEvent()
    {
        var order = await mesh.PlaceOrderAsync(_team, "BMP");
        var share = new ShareInterpretationRequest { RequisitionId = order.Id, Note = "all fine, see you in a year" };
        var early = await Assert.ThrowsAsync<RpcException>(() => Client.ShareInterpretationAsync(share, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, early.StatusCode);

        await Client.SubmitResultsAsync(
            Report(order.Id, ReportStatus.Final, [order.ServiceRequests[0].Id], Numeric("sodium", 140, "mmol/L", 135, 145)), deadline: Deadline);
        var shared = await Client.ShareInterpretationAsync(share, deadline: Deadline);
        var again = await Client.ShareInterpretationAsync(share, deadline: Deadline);

        Assert.True(shared.Changed);
        Assert.Equal("interpretation_shared", shared.ResultsStatus);
        Assert.NotNull(shared.SharedTime);
        Assert.False(again.Changed);
        var requisition = await mesh.RequisitionClient(_team).GetRequisitionAsync(new GetRequisitionRequest { Id = order.Id }, deadline: Deadline);
        Assert.Equal(LifecycleStatus.InterpretationShared, requisition.Requisition.LifecycleStatus);
        await Eventually.HoldsAsync(async () => (await mesh.ResultsEventsAsync(order.Id)).Count == 1, TimeSpan.FromSeconds(1),
            "sharing publishes no lab_order.updated (seed 003)");
    }

    [Fact]
    public async Task AmendResults_Repeated_ReturnsTheStoredVersion_AndUnknownTargetsAreNotFound()
    {
        var order = await mesh.PlaceOrderAsync(_team, "BMP");
        var submit = Report(order.Id, ReportStatus.Final, [order.ServiceRequests[0].Id], Numeric("sodium", 140, "mmol/L", 135, 145));
        var submitted = (await Client.SubmitResultsAsync(submit, deadline: Deadline)).Report;
        var amend = new AmendResultsRequest { RequestId = Guid.NewGuid().ToString(), ReportId = submitted.Id, Reason = "units", Metadata = new ReportMetadata() };
        amend.Results.Add(Numeric("sodium", 141, "mmol/L", 135, 145));

        var first = await Client.AmendResultsAsync(amend, deadline: Deadline);
        var again = await Client.AmendResultsAsync(amend, deadline: Deadline);

        Assert.True(first.Created);
        Assert.False(again.Created);
        Assert.Equal(first.Report, again.Report);
        var reused = amend.Clone();
        reused.RequestId = submit.RequestId;
        var conflict = await Assert.ThrowsAsync<RpcException>(() => Client.AmendResultsAsync(reused, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.AlreadyExists, conflict.StatusCode);

        var missing = amend.Clone();
        missing.RequestId = Guid.NewGuid().ToString();
        missing.ReportId = "no-such-report";
        var calls = new Func<Task>[]
        {
            () => Client.AmendResultsAsync(missing, deadline: Deadline).ResponseAsync,
            () => Client.GetReportAsync(new GetReportRequest { Id = "no-such-report" }, deadline: Deadline).ResponseAsync,
            () => Client.GetReportAsync(new GetReportRequest { Id = submitted.Id, Version = 9 }, deadline: Deadline).ResponseAsync,
            () => Client.ShareInterpretationAsync(new ShareInterpretationRequest { RequisitionId = "no-such-requisition" }, deadline: Deadline).ResponseAsync,
        };
        foreach (var call in calls)
        {
            Assert.Equal(StatusCode.NotFound, (await Assert.ThrowsAsync<RpcException>(call)).StatusCode);
        }
    }

    public static TheoryData<string, string> BadMarkers() => new()
    {
        { "NaN", "results[0].numeric_value" },
        { "infinity", "results[0].numeric_value" },
        { "min above max", "results[0].min_range_value" },
        { "duplicate slug", "results[1].slug" },
        { "no markers", "results" },
    };

    [Theory]
    [MemberData(nameof(BadMarkers))]
    public async Task SubmitResults_BadMarkers_IsInvalidArgumentNamingTheField_AndStoresNothing(string problem, string field)
    {
        var order = await mesh.PlaceOrderAsync(_team, "BMP");
        var request = Report(order.Id, ReportStatus.Final, [order.ServiceRequests[0].Id], Numeric("sodium", 140, "mmol/L", 135, 145));
        switch (problem)
        {
            case "NaN": request.Results[0].NumericValue = double.NaN; break;
            case "infinity": request.Results[0].NumericValue = double.PositiveInfinity; break;
            case "min above max": request.Results[0].MinRangeValue = 150; break;
            case "duplicate slug": request.Results.Add(Numeric("sodium", 141, "mmol/L")); break;
            case "no markers": request.Results.Clear(); break;
        }

        var error = await Assert.ThrowsAsync<RpcException>(() => Client.SubmitResultsAsync(request, deadline: Deadline).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains(error.GetDetail<Google.Rpc.BadRequest>()!.FieldViolations, v => v.Field == field);
        await AssertNothingStoredAsync(order);
    }

    [Fact]
    public async Task SubmitResults_ForAnotherRequisitionsTestOrAnUnknownOne_IsInvalidArgument_AndStoresNothing()
    {
        var order = await mesh.PlaceOrderAsync(_team, "BMP");
        var other = await mesh.PlaceOrderAsync(_team, "CBC");
        var request = Report(order.Id, ReportStatus.Final, [other.ServiceRequests[0].Id, "no-such-test"], Numeric("sodium", 140, "mmol/L"));

        var error = await Assert.ThrowsAsync<RpcException>(() => Client.SubmitResultsAsync(request, deadline: Deadline).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal(["service_request_ids[0]", "service_request_ids[1]"],
            error.GetDetail<Google.Rpc.BadRequest>()!.FieldViolations.Select(v => v.Field));
        await AssertNothingStoredAsync(order);
    }

    [Fact]
    public async Task SubmitResults_ForARevokedTest_IsFailedPrecondition_AndStoresNothing()
    {
        var order = await mesh.PlaceOrderAsync(_team, "BMP", "CBC");
        await mesh.ServiceRequestClient(_team).RevokeServiceRequestAsync(
            new RevokeServiceRequestRequest { Id = order.ServiceRequests[1].Id, Reason = "not needed" }, deadline: Deadline);
        var request = Report(order.Id, ReportStatus.Final, [order.ServiceRequests[1].Id], Numeric("hemoglobin", 14, "g/dL"));

        var error = await Assert.ThrowsAsync<RpcException>(() => Client.SubmitResultsAsync(request, deadline: Deadline).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        await AssertNothingStoredAsync(order);
    }

    [Fact]
    public async Task SubmitResults_ForAnUnknownOrAnotherTeamsRequisition_IsNotFound()
    {
        var theirs = await mesh.PlaceOrderAsync("other-" + _team, "BMP");
        foreach (var id in new[] { "no-such-requisition", theirs.Id })
        {
            var error = await Assert.ThrowsAsync<RpcException>(() =>
                Client.SubmitResultsAsync(Report(id, ReportStatus.Final, [], Numeric("sodium", 140, "mmol/L")), deadline: Deadline).ResponseAsync);
            Assert.Equal(StatusCode.NotFound, error.StatusCode);
        }

        var read = await Assert.ThrowsAsync<RpcException>(() =>
            Client.GetResultsAsync(new GetResultsRequest { RequisitionId = theirs.Id }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, read.StatusCode);
    }

    [Fact]
    public async Task SubmitResults_OverTheReportLimit_IsInvalidArgument_AndOverTheMessageLimit_IsResourceExhausted()
    {
        var order = await mesh.PlaceOrderAsync(_team, "BMP");
        var big = Report(order.Id, ReportStatus.Final, [order.ServiceRequests[0].Id], Numeric("sodium", 140, "mmol/L"));
        big.Results[0].Notes = new string('n', 2000);
        big.Metadata.Laboratory = "x";
        var overReport = big.Clone();
        overReport.Results.AddRange(Enumerable.Range(0, 499).Select(i =>
        {
            var marker = Numeric($"analyte_{i}", 1, "mg/dL");
            marker.Notes = new string('n', 2000);
            marker.Name = new string('a', 200);
            return marker;
        }));
        var tooLarge = await Assert.ThrowsAsync<RpcException>(() => Client.SubmitResultsAsync(overReport, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, tooLarge.StatusCode);
        Assert.Contains(tooLarge.GetDetail<Google.Rpc.BadRequest>()!.FieldViolations, v => v.Field == "results");

        var overMessage = big.Clone();
        overMessage.Results[0].Notes = new string('n', 5 * 1024 * 1024);
        var exhausted = await Assert.ThrowsAsync<RpcException>(() => Client.SubmitResultsAsync(overMessage, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, exhausted.StatusCode);
        await AssertNothingStoredAsync(order);
    }

    [Fact]
    public async Task SubmitResults_ForNoOrderedTest_IsKeptAgainstTheRequisitionAndFlagged_AndMovesNoTest()
    {
        var order = await mesh.PlaceOrderAsync(_team, "BMP");
        var report = (await Client.SubmitResultsAsync(
            Report(order.Id, ReportStatus.Final, [], Numeric("vitamin_d", 18, "ng/mL", 30, 100)), deadline: Deadline)).Report;

        Assert.Contains(MarkerFlag.NoOrderedTest, report.Results[0].Reading.Flags);
        Assert.Equal(Interpretation.Abnormal, report.Metadata.Interpretation);
        var results = await Client.GetResultsAsync(new GetResultsRequest { RequisitionId = order.Id }, deadline: Deadline);
        Assert.Equal(report.Id, Assert.Single(results.Reports).Id);
        Assert.False(results.AllResultsReceived);
        var status = await mesh.ServiceRequestClient(_team).GetServiceRequestAsync(
            new GetServiceRequestRequest { Id = order.ServiceRequests[0].Id }, deadline: Deadline);
        Assert.Equal(TaskBusinessStatus.Unspecified, status.ServiceRequest.TaskBusinessStatus);
    }

    [Fact]
    public async Task SubmitResults_ResultsForNoOrderedTest_AreUnsolicitedOnTheReport_AndRaiseAnEvent_OncePerVersion()
    {
        var order = await mesh.PlaceOrderAsync(_team, "BMP");
        var request = Report(order.Id, ReportStatus.Final, [], Numeric("vitamin_d", 18, "ng/mL", 30, 100), Numeric("ferritin", 80, "ng/mL"));
        var report = (await Client.SubmitResultsAsync(request, deadline: Deadline)).Report;

        Assert.True(report.Unsolicited);
        Assert.Equal(["vitamin_d", "ferritin"], report.UnsolicitedAnalytes);
        var events = await Eventually.MatchAsync(() => mesh.ResultsEventsAsync(order.Id), e => e.Count >= 2, Timeout, "the report's events");
        var unsolicited = Assert.Single(events, e => e.Type == EventTypes.LabTestResultUnsolicited).UnsolicitedResult;
        Assert.Equal((report.Id, 1, "final", "abnormal"), (unsolicited.ReportId, unsolicited.ReportVersion, unsolicited.Status, unsolicited.Interpretation));
        Assert.Equal(["vitamin_d", "ferritin"], unsolicited.Analytes);

        // A repeat publishes nothing again; an amendment is a new version, raised again.
        await Client.SubmitResultsAsync(request, deadline: Deadline);
        var amend = new AmendResultsRequest { RequestId = Guid.NewGuid().ToString(), ReportId = report.Id, Reason = "vitamin D re-run", Metadata = report.Metadata.Clone() };
        amend.Results.Add(Numeric("vitamin_d", 22, "ng/mL", 30, 100));
        var amended = (await Client.AmendResultsAsync(amend, deadline: Deadline)).Report;
        Assert.Equal(["vitamin_d"], amended.UnsolicitedAnalytes);
        events = await Eventually.MatchAsync(() => mesh.ResultsEventsAsync(order.Id),
            e => e.Count(x => x.Type == EventTypes.LabTestResultUnsolicited) >= 2, Timeout, "the amendment's unsolicited event");
        Assert.Equal([1, 2], events.Where(e => e.Type == EventTypes.LabTestResultUnsolicited).Select(e => e.UnsolicitedResult.ReportVersion));

        // A report that answers an ordered test is not unsolicited; GetResults counts the unsolicited ones.
        var solicited = (await Client.SubmitResultsAsync(
            Report(order.Id, ReportStatus.Final, [order.ServiceRequests[0].Id], Numeric("sodium", 140, "mmol/L", 135, 145)), deadline: Deadline)).Report;
        Assert.False(solicited.Unsolicited);
        Assert.Empty(solicited.UnsolicitedAnalytes);
        var results = await Client.GetResultsAsync(new GetResultsRequest { RequisitionId = order.Id }, deadline: Deadline);
        Assert.Equal(1, results.UnsolicitedReports);
    }

    [Fact]
    public async Task SubmitResults_CriticalMarkers_CarryTheirTier_AndTheReportAndEventTheMostUrgent()
    {
        var order = await mesh.PlaceOrderAsync(_team, "BMP");
        var report = (await Client.SubmitResultsAsync(Report(order.Id, ReportStatus.Partial, [order.ServiceRequests[0].Id],
            Numeric("potassium", 6.9, "mmol/L", 3.5, 5.1), Numeric("sodium", 140, "mmol/L", 135, 145)), deadline: Deadline)).Report;

        Assert.Equal(CriticalTier.CriticalRisk, report.Results[0].Reading.CriticalTier);
        Assert.Equal(CriticalTier.Unspecified, report.Results[1].Reading.CriticalTier);
        Assert.Equal(CriticalTier.CriticalRisk, report.CriticalTier);
        var events = await Eventually.MatchAsync(() => mesh.ResultsEventsAsync(order.Id), e => e.Any(x => x.Type == EventTypes.LabTestResultCritical), Timeout, "the critical event");
        Assert.Equal("critical_risk", events.Single(e => e.Type == EventTypes.LabTestResultCritical).CriticalResult.Tier);

        var limits = await Client.GetCriticalLimitsAsync(new GetCriticalLimitsRequest(), deadline: Deadline);
        Assert.All(limits.Limits, l => Assert.Equal(CriticalTier.CriticalRisk, l.Tier));
    }

    [Fact]
    public async Task GetResults_ReportsNear1MiB_ComeInPagesUnderTheMessageLimit_EachReportOnce()
    {
        var order = await mesh.PlaceOrderAsync(_team, "BMP");
        var submitted = new List<Report>();
        for (var i = 0; i < 5; i++)
        {
            var request = NearOneMiB(Report(order.Id, ReportStatus.Final, [order.ServiceRequests[0].Id]));
            Assert.InRange(request.CalculateSize(), ResultsValidation.MaxReportBytes - 8_000, ResultsValidation.MaxReportBytes);
            submitted.Add((await Client.SubmitResultsAsync(request, deadline: Deadline)).Report);
        }

        var amend = NearOneMiB(new AmendResultsRequest { RequestId = Guid.NewGuid().ToString(), ReportId = submitted[0].Id, Reason = "re-run", Metadata = submitted[0].Metadata.Clone() });
        await Client.AmendResultsAsync(amend, deadline: Deadline);

        foreach (var (history, pageSize, expected) in new[] { (false, 0, 5), (true, 0, 6), (true, 4, 6), (false, 1, 5) })
        {
            var seen = new List<(string, int)>();
            var pages = 0;
            var token = "";
            do
            {
                var page = await Client.GetResultsAsync(
                    new GetResultsRequest { RequisitionId = order.Id, IncludeHistory = history, PageSize = pageSize, PageToken = token }, deadline: Deadline);
                pages++;
                Assert.NotEmpty(page.Reports);
                Assert.InRange(page.CalculateSize(), 1, 4 * 1024 * 1024 - 1);
                Assert.True(page.Reports.Count == 1 || page.Reports.Sum(r => r.CalculateSize()) <= LabMesh.Messaging.Storage.PageBudget.MaxBytes);
                Assert.InRange(page.Reports.Count, 1, pageSize == 0 ? 50 : pageSize);
                Assert.Equal(Interpretation.Normal, page.Interpretation);
                seen.AddRange(page.Reports.Select(r => (r.Id, r.Version)));
                token = page.NextPageToken;
            }
            while (token.Length > 0 && pages < 20);

            Assert.Equal(expected, seen.Count);
            Assert.Equal(seen.Distinct().Count(), seen.Count);
            Assert.Equal(seen.OrderBy(k => k.Item1, StringComparer.Ordinal).ThenBy(k => k.Item2), seen);
            // About 1 MiB each: a page's byte budget (3 MiB) holds at most three of them.
            Assert.True(pages >= (pageSize == 1 ? expected : 2), $"{pages} pages for {expected} reports of ~1 MiB");
        }

        var bad = await Assert.ThrowsAsync<RpcException>(() => Client.GetResultsAsync(
            new GetResultsRequest { RequisitionId = order.Id, PageToken = "not-a-token" }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        Assert.Equal(["page_token"], bad.GetDetail<Google.Rpc.BadRequest>()!.FieldViolations.Select(v => v.Field));
        var tooMany = await Assert.ThrowsAsync<RpcException>(() => Client.GetResultsAsync(
            new GetResultsRequest { RequisitionId = order.Id, PageSize = 501 }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, tooMany.StatusCode);
    }

    [Fact]
    public async Task InterpretMarkers_OverTheReportLimit_IsInvalidArgument()
    {
        var request = new InterpretMarkersRequest();
        request.Results.AddRange(Enumerable.Range(0, 500).Select(i =>
        {
            var marker = Numeric($"analyte_{i}", 1, "mg/dL");
            marker.Notes = new string('n', 2000);
            marker.Name = new string('a', 200);
            return marker;
        }));

        var error = await Assert.ThrowsAsync<RpcException>(() => Client.InterpretMarkersAsync(request, deadline: Deadline).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains(error.GetDetail<Google.Rpc.BadRequest>()!.FieldViolations, v => v.Field == "results");
    }

    /// <summary>Fills a report with normal markers of long names and notes up to just under the 1 MiB report limit.</summary>
    private static T NearOneMiB<T>(T request) where T : Google.Protobuf.IMessage
    {
        var markers = (Google.Protobuf.Collections.RepeatedField<Marker>)request.Descriptor.FindFieldByName("results").Accessor.GetValue(request);
        for (var i = 0; request.CalculateSize() < ResultsValidation.MaxReportBytes - 5_000; i++)
        {
            var marker = Numeric($"analyte_{i}", 1, "mg/dL", 0, 2);
            marker.Notes = new string('n', 2000);
            marker.Name = new string('a', 200);
            markers.Add(marker);
        }

        return request;
    }

    [Fact]
    public async Task InterpretMarkers_ReadsWithoutStoring_AndGetCriticalLimits_ListsTheCatalog()
    {
        var request = new InterpretMarkersRequest { Results = { Numeric("glucose", 2.4, "mmol/L"), Numeric("inr", 2.1, "", 0.8, 1.2), Numeric("ferritin", 80, "ng/mL") } };

        var reading = await Client.InterpretMarkersAsync(request, deadline: Deadline);

        Assert.Equal(Interpretation.Critical, reading.Interpretation);
        Assert.Equal(Interpretation.Critical, reading.Results[0].Reading.Interpretation);
        Assert.NotEqual("", reading.Results[0].Reading.ConvertedValue);
        Assert.Equal(Interpretation.Abnormal, reading.Results[1].Reading.Interpretation);
        Assert.Equal(Interpretation.Unspecified, reading.Results[2].Reading.Interpretation);

        var catalog = await Client.GetCriticalLimitsAsync(new GetCriticalLimitsRequest(), deadline: Deadline);
        var potassium = Assert.Single(catalog.Limits, l => l.Analyte == "potassium");
        Assert.Equal((2.8, 6.2, "mmol/L"), (potassium.Low, potassium.High, potassium.Unit));
        var inr = Assert.Single(catalog.Limits, l => l.Analyte == "inr");
        Assert.False(inr.HasLow);
        Assert.Contains(catalog.Conversions, c => c.Analyte == "glucose" && c.FromUnit == "mmol/L" && c.ToUnit == "mg/dL");
    }

    private async Task AssertNothingStoredAsync(Contracts.Requisition.V1.Requisition order)
    {
        var results = await Client.GetResultsAsync(new GetResultsRequest { RequisitionId = order.Id, IncludeHistory = true }, deadline: Deadline);
        Assert.Empty(results.Reports);
        Assert.Empty(await mesh.ResultsEventsAsync(order.Id));
    }
}

/// <summary>Each test starts its own mesh, because it stops one of the services.</summary>
public sealed class ResultsEffectsTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly string _team = "team-" + Guid.NewGuid().ToString("N")[..8];
    private ResultsMesh _mesh = null!;

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    public async Task InitializeAsync() => _mesh = await ResultsMesh.StartAsync(Backend.Sqlite).WaitAsync(TimeSpan.FromSeconds(120));

    public async Task DisposeAsync()
    {
        var logs = _mesh.Logs.ToList();
        await _mesh.DisposeAsync();
        // The ServiceRequest service going away is the point: only the deferred-effects warnings may be logged.
        foreach (var log in logs)
        {
            log.AssertNoErrors();
        }
    }

    [Fact]
    public async Task WhileTheServiceRequestServiceIsDown_SubmitIsUnavailableAndStoresNothing_AnAmendmentIsStored_AndItsEffectLandsLater()
    {
        var order = await _mesh.PlaceOrderAsync(_team, "BMP");
        var client = _mesh.ResultsClient(_team);
        var submitted = (await client.SubmitResultsAsync(ResultsServiceTests.Report(order.Id, ReportStatus.Final, [order.ServiceRequests[0].Id],
            ResultsServiceTests.Numeric("sodium", 140, "mmol/L", 135, 145)), deadline: Deadline)).Report;
        await _mesh.StopServiceRequestsAsync();

        // A new report needs the requisition's tests, which the ServiceRequest service holds.
        var other = ResultsServiceTests.Report(order.Id, ReportStatus.Partial, [], ResultsServiceTests.Numeric("ferritin", 80, "ng/mL"));
        var failed = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => client.SubmitResultsAsync(other, deadline: Deadline).ResponseAsync);
        Assert.Equal(Grpc.Core.StatusCode.Unavailable, failed.StatusCode);

        // An amendment needs only this service's store; telling the requisition has to wait.
        var amend = new AmendResultsRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            ReportId = submitted.Id,
            Reason = "sodium re-measured",
            Metadata = submitted.Metadata.Clone(),
        };
        amend.Results.Add(ResultsServiceTests.Numeric("sodium", 118, "mmol/L", 135, 145));
        var amended = await client.AmendResultsAsync(amend, deadline: Deadline);
        Assert.Equal(Interpretation.Critical, amended.Report.Metadata.Interpretation);

        await _mesh.RestartServiceRequestsAsync();
        var requisition = await Eventually.MatchAsync(
            async () => (await _mesh.RequisitionClient(_team).GetRequisitionAsync(
                new Contracts.Requisition.V1.GetRequisitionRequest { Id = order.Id }, deadline: Deadline)).Requisition,
            r => r.LifecycleStatus == Contracts.Requisition.V1.LifecycleStatus.ResultsAmended, Timeout, "the requisition to hear of the amendment");
        Assert.Equal(TaskBusinessStatus.FullResultsReady, requisition.ServiceRequests[0].TaskBusinessStatus);
        var results = await client.GetResultsAsync(new GetResultsRequest { RequisitionId = order.Id, IncludeHistory = true }, deadline: Deadline);
        Assert.Equal([1, 2], results.Reports.Select(r => r.Version));
    }
}
