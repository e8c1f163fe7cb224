using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Messaging.Events;
using LabMesh.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.Requisition.Tests;

public abstract class MeshFixture(Backend backend) : IAsyncLifetime
{
    public Mesh Mesh { get; private set; } = null!;

    public async Task InitializeAsync() => Mesh = await Mesh.StartAsync(backend).WaitAsync(TimeSpan.FromSeconds(120));

    public async Task DisposeAsync()
    {
        var requisitionLogs = Mesh.Requisitions.Logs;
        var serviceRequestLogs = Mesh.ServiceRequests.Logs;
        await Mesh.DisposeAsync();
        requisitionLogs.AssertNoErrors();
        serviceRequestLogs.AssertNoErrors();
    }
}

public sealed class SqliteMesh() : MeshFixture(Backend.Sqlite);

public sealed class PostgresMesh() : MeshFixture(Backend.Postgres);

public sealed class RequisitionServiceTests_Sqlite(SqliteMesh fixture) : RequisitionServiceTests(fixture.Mesh), IClassFixture<SqliteMesh>;

public sealed class RequisitionServiceTests_Postgres(PostgresMesh fixture) : RequisitionServiceTests(fixture.Mesh), IClassFixture<PostgresMesh>;

/// <summary>
/// The Requisition service through its generated client over real sockets, calling the real
/// ServiceRequest service, on SQLite and on PostgreSQL. Each test uses its own team.
/// </summary>
public abstract class RequisitionServiceTests(Mesh mesh)
{
    private readonly string _team = "team-" + Guid.NewGuid().ToString("N")[..8];

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    private RequisitionService.RequisitionServiceClient Client => mesh.RequisitionClient(_team);

    public static CreateRequisitionRequest NewOrder(TestModality modality = TestModality.Testkit, bool place = true, int tests = 2)
    {
        var request = new CreateRequisitionRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            Patient = new Patient { Id = "patient-1", GivenName = "Ada", FamilyName = "Lovelace", BirthDate = "1985-12-10", Sex = "female" },
            OrderingProvider = new Provider { Id = "dr-1", Name = "Dr. Grace Hopper", Npi = "1234567890" },
            Lab = "LabCorp",
            Modality = modality,
            Place = place,
        };
        for (var i = 0; i < tests; i++)
        {
            request.Tests.Add(new OrderedTest { Code = i == 0 ? "LIPID_PANEL" : $"TEST_{i}", Description = $"test {i}", PartnerId = "partner-a" });
        }

        return request;
    }

    [Fact]
    public async Task ListRequisitions_LargeRequisitions_ComeInPagesUnderTheMessageLimit()
    {
        // 420 drafts of 10 tests with 1 KB descriptions, about 10.5 KB each: past 4 MiB in one page of 500 if
        // ListRequisitions did not stop at its byte budget.
        const int count = 420;
        var created = new List<string>();
        foreach (var batch in Enumerable.Range(0, count).Chunk(20))
        {
            var responses = await Task.WhenAll(batch.Select(i =>
            {
                var request = NewOrder(place: false, tests: 10);
                foreach (var test in request.Tests)
                {
                    test.Description = $"{i:D3} {test.Code} ".PadRight(1024, 'd');
                }

                return Client.CreateRequisitionAsync(request, deadline: Deadline).ResponseAsync;
            }));
            created.AddRange(responses.Select(r => r.Requisition.Id));
        }

        var seen = new List<string>();
        var request = new ListRequisitionsRequest { PageSize = 500 };
        var pages = 0;
        do
        {
            var page = await Client.ListRequisitionsAsync(request, deadline: Deadline);
            pages++;
            Assert.InRange(page.CalculateSize(), 0, 4 * 1024 * 1024 - 1);
            Assert.True(page.Requisitions.Count <= 1 || page.Requisitions.Sum(r => r.CalculateSize()) <= LabMesh.Messaging.Storage.PageBudget.MaxBytes);
            Assert.True(page.Requisitions.Count > 0 || page.NextPageToken.Length == 0, "an empty page that says there is more");
            seen.AddRange(page.Requisitions.Select(r => r.Id));
            request.PageToken = page.NextPageToken;
        }
        while (request.PageToken.Length > 0 && pages < 10);

        Assert.Equal(count, seen.Count);
        Assert.Equal(created.Order(StringComparer.Ordinal), seen.Order(StringComparer.Ordinal));
        Assert.True(pages >= 2, $"{pages} page(s) for {count} requisitions of ~10.5 KB");
    }

    [Fact]
    public async Task RecordResultsStage_LatestSequenceWins_AndAnOlderOneIsIgnored()
    {
        var id = (await Client.CreateRequisitionAsync(NewOrder(), deadline: Deadline)).Requisition.Id;

        var shared = await Client.RecordResultsStageAsync(
            new RecordResultsStageRequest { Id = id, Stage = LifecycleStatus.InterpretationShared, Sequence = 3 }, deadline: Deadline);
        var late = await Client.RecordResultsStageAsync(
            new RecordResultsStageRequest { Id = id, Stage = LifecycleStatus.PartialResults, Sequence = 1 }, deadline: Deadline);
        var amended = await Client.RecordResultsStageAsync(
            new RecordResultsStageRequest { Id = id, Stage = LifecycleStatus.ResultsAmended, Sequence = 4 }, deadline: Deadline);

        Assert.True(shared.Changed);
        Assert.Equal(LifecycleStatus.InterpretationShared, shared.Status.LifecycleStatus);
        Assert.False(late.Changed);
        Assert.Equal(shared.Status.Etag, late.Status.Etag);
        Assert.Equal(LifecycleStatus.ResultsAmended, amended.Status.LifecycleStatus);
        var cached = await Client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = id }, deadline: Deadline);
        Assert.Equal(LifecycleStatus.ResultsAmended, cached.Status.LifecycleStatus);

        var bad = await Assert.ThrowsAsync<RpcException>(() => Client.RecordResultsStageAsync(
            new RecordResultsStageRequest { Id = id, Stage = LifecycleStatus.Processing, Sequence = 0 }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        Assert.Equal(["stage", "sequence"], bad.GetDetail<Google.Rpc.BadRequest>()!.FieldViolations.Select(v => v.Field));
    }

    [Fact]
    public async Task RecordResultsStage_WithItsServiceRequests_DerivesTheLifecycleFromThem_AndARepeatReadsThemAgain()
    {
        var requisition = (await Client.CreateRequisitionAsync(NewOrder(), deadline: Deadline)).Requisition;
        // The statuses as a RecordResults of a final report for both tests would answer them; the ServiceRequest service
        // still has both at ORDER_CONFIRMED, so a lifecycle of RESULTS_READY can only come from the ones given.
        var given = requisition.ServiceRequests.Select(s =>
        {
            var copy = s.Clone();
            copy.TaskBusinessStatus = TaskBusinessStatus.FullResultsReady;
            copy.Status = ServiceRequestStatus.Completed;
            return copy;
        }).Reverse().ToList();

        var recorded = await Client.RecordResultsStageAsync(
            new RecordResultsStageRequest { Id = requisition.Id, Stage = LifecycleStatus.PartialResults, Sequence = 1, ServiceRequests = { given } },
            deadline: Deadline);
        var cached = await Client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = requisition.Id }, deadline: Deadline);

        Assert.True(recorded.Changed);
        Assert.Equal(LifecycleStatus.ResultsReady, recorded.Status.LifecycleStatus);
        Assert.Equal(LifecycleStatus.ResultsReady, cached.Status.LifecycleStatus);

        // A repeat records nothing and may carry statuses older than the stored ones: it reads them from the service.
        var repeat = await Client.RecordResultsStageAsync(
            new RecordResultsStageRequest { Id = requisition.Id, Stage = LifecycleStatus.PartialResults, Sequence = 1, ServiceRequests = { given } },
            deadline: Deadline);
        cached = await Client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = requisition.Id }, deadline: Deadline);

        Assert.False(repeat.Changed);
        Assert.Equal(LifecycleStatus.PartialResults, repeat.Status.LifecycleStatus);
        Assert.Equal(LifecycleStatus.PartialResults, cached.Status.LifecycleStatus);
    }

    [Fact]
    public async Task RecordResultsStage_WithAnotherRequisitionsServiceRequest_IsInvalidArgument_AndRecordsNothing()
    {
        var requisition = (await Client.CreateRequisitionAsync(NewOrder(), deadline: Deadline)).Requisition;
        var other = (await Client.CreateRequisitionAsync(NewOrder(tests: 1), deadline: Deadline)).Requisition;
        var before = await Client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = requisition.Id }, deadline: Deadline);
        var foreignTeam = requisition.ServiceRequests[1].Clone();
        foreignTeam.TeamId = "team-other";

        var error = await Assert.ThrowsAsync<RpcException>(() => Client.RecordResultsStageAsync(new RecordResultsStageRequest
        {
            Id = requisition.Id,
            Stage = LifecycleStatus.PartialResults,
            Sequence = 1,
            ServiceRequests = { requisition.ServiceRequests[0], other.ServiceRequests[0], foreignTeam },
        }, deadline: Deadline).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal(["service_requests[1]", "service_requests[2]"], error.GetDetail<Google.Rpc.BadRequest>()!.FieldViolations.Select(v => v.Field));
        var after = await Client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = requisition.Id }, deadline: Deadline);
        Assert.Equal(before.Status.Etag, after.Status.Etag);
        var read = await Client.GetRequisitionAsync(new GetRequisitionRequest { Id = requisition.Id }, deadline: Deadline);
        Assert.Equal(LifecycleStatus.Purchased, read.Requisition.LifecycleStatus);
    }

    [Fact]
    public async Task CreateRequisition_Placed_ReturnsItWithItsServiceRequestsAndFiresOrderPlaced()
    {
        var request = NewOrder();
        var response = await Client.CreateRequisitionAsync(request, deadline: Deadline);

        var requisition = response.Requisition;
        Assert.True(response.Created);
        Assert.Equal(OrderStatus.Received, requisition.Status);
        Assert.Equal("received.testkit.ordered", requisition.SubStatus);
        Assert.Equal(LifecycleStatus.Purchased, requisition.LifecycleStatus);
        Assert.Equal(_team, requisition.TeamId);
        Assert.Equal(["LIPID_PANEL", "TEST_1"], requisition.ServiceRequests.Select(s => s.Code));
        Assert.All(requisition.ServiceRequests, s => Assert.Equal(ServiceRequestStatus.Active, s.Status));

        var read = await Client.GetRequisitionAsync(new GetRequisitionRequest { Id = requisition.Id }, deadline: Deadline);
        Assert.Equal(requisition.ServiceRequests.Select(s => s.Id), read.Requisition.ServiceRequests.Select(s => s.Id));
        Assert.Equal("Ada", read.Requisition.Patient.GivenName);

        var events = await Eventually.MatchAsync(() => mesh.RequisitionEventsAsync(requisition.Id), e => e.Count >= 2, what: "order events");
        var placed = Assert.Single(events, e => e.Type == EventTypes.OrderPlaced);
        Assert.Equal("testkit", placed.OrderPlaced.Modality);
        Assert.Equal(requisition.ServiceRequests.Select(s => s.Id), placed.OrderPlaced.LineItems.Select(l => l.ServiceRequestId));
        Assert.Contains(events, e => e.Type == EventTypes.OrderStatusChanged && e.OrderStatusChanged.Status == "received.testkit.ordered");
        Assert.All(events, e => Assert.Equal(_team, e.TeamId));
    }

    [Fact]
    public async Task CreateRequisition_SameRequestIdTwice_ReturnsTheFirstAndCreatesNothing()
    {
        var request = NewOrder();
        var first = await Client.CreateRequisitionAsync(request, deadline: Deadline);
        var second = await Client.CreateRequisitionAsync(request, deadline: Deadline);

        Assert.True(first.Created);
        Assert.False(second.Created);
        Assert.Equal(first.Requisition.Id, second.Requisition.Id);
        Assert.Equal(first.Requisition.ServiceRequests.Select(s => s.Id), second.Requisition.ServiceRequests.Select(s => s.Id));
        var listed = await Client.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline);
        Assert.Single(listed.Requisitions);
        var serviceRequests = await mesh.ServiceRequestClient(_team).ListServiceRequestsAsync(
            new ListServiceRequestsRequest { RequisitionId = first.Requisition.Id }, deadline: Deadline);
        Assert.Equal(2, serviceRequests.ServiceRequests.Count);
    }

    [Fact]
    public async Task CreateRequisition_ConcurrentRetries_CreateOneRequisition()
    {
        var request = NewOrder();
        var responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => Client.CreateRequisitionAsync(request, deadline: Deadline).ResponseAsync));

        Assert.Single(responses.Select(r => r.Requisition.Id).Distinct());
        var listed = await Client.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline);
        Assert.Single(listed.Requisitions);
        var serviceRequests = await mesh.ServiceRequestClient(_team).ListServiceRequestsAsync(
            new ListServiceRequestsRequest { RequisitionId = responses[0].Requisition.Id }, deadline: Deadline);
        Assert.Equal(2, serviceRequests.ServiceRequests.Count);
    }

    [Fact]
    public async Task CreateRequisition_SameRequestIdOtherOrder_IsAlreadyExists()
    {
        var request = NewOrder();
        await Client.CreateRequisitionAsync(request, deadline: Deadline);
        request.Tests[0].Code = "CBC";

        var error = await Assert.ThrowsAsync<RpcException>(() => Client.CreateRequisitionAsync(request, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.AlreadyExists, error.StatusCode);
    }

    [Fact]
    public async Task CreateRequisition_BadFields_IsInvalidArgumentListingEveryViolation()
    {
        var request = NewOrder();
        request.RequestId = "";
        request.Patient.BirthDate = "10/12/1985";
        request.Modality = TestModality.Unspecified;
        request.Tests[1].Code = "lower case";
        request.Tests[1].PartnerId = "";

        var error = await Assert.ThrowsAsync<RpcException>(() => Client.CreateRequisitionAsync(request, deadline: Deadline).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        var badRequest = error.GetDetail<BadRequest>();
        Assert.NotNull(badRequest);
        Assert.Equal(
            ["request_id", "patient.birth_date", "modality", "tests[1].code", "tests[1].partner_id"],
            badRequest.FieldViolations.Select(v => v.Field));
        Assert.DoesNotContain("Ada", error.Status.Detail, StringComparison.Ordinal);
        var listed = await Client.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline);
        Assert.Empty(listed.Requisitions);
    }

    [Fact]
    public async Task CreateRequisition_ServiceRequestServiceDown_LeavesNothingVisibleAndTheRetryCompletesIt()
    {
        var request = NewOrder();
        await mesh.StopServiceRequestsAsync();
        try
        {
            var error = await Assert.ThrowsAsync<RpcException>(() => Client.CreateRequisitionAsync(request, deadline: Deadline).ResponseAsync);
            Assert.Equal(StatusCode.Unavailable, error.StatusCode);
            var listed = await Client.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline);
            Assert.Empty(listed.Requisitions);
        }
        finally
        {
            await mesh.RestartServiceRequestsAsync();
        }

        var retried = await Client.CreateRequisitionAsync(request, deadline: Deadline);
        Assert.Equal(2, retried.Requisition.ServiceRequests.Count);
        var again = await Client.CreateRequisitionAsync(request, deadline: Deadline);
        Assert.Equal(retried.Requisition.Id, again.Requisition.Id);
        var listedAfter = await Client.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline);
        Assert.Single(listedAfter.Requisitions);
        var serviceRequests = await mesh.ServiceRequestClient(_team).ListServiceRequestsAsync(
            new ListServiceRequestsRequest { RequisitionId = retried.Requisition.Id }, deadline: Deadline);
        Assert.Equal(2, serviceRequests.ServiceRequests.Count);
    }

    [Fact]
    public async Task RecordOrderEvent_ServiceRequestServiceDown_IsOkWithTheCommittedState_TheRetryIsANoOp_AndTheSyncWorkerCatchesUp()
    {
        var created = (await Client.CreateRequisitionAsync(NewOrder(), deadline: Deadline)).Requisition;
        var request = new RecordOrderEventRequest
        {
            Id = created.Id, Status = "received.testkit.requisition_created", Etag = created.Etag, Note = "requisition sent",
        };
        await mesh.StopServiceRequestsAsync();
        try
        {
            // The event commits, so the answer is OK with it, though the service requests could neither be told nor read.
            var first = (await Client.RecordOrderEventAsync(request, deadline: Deadline)).Requisition;
            Assert.Equal("received.testkit.requisition_created", first.SubStatus);
            Assert.Equal(2, first.Events.Count);
            Assert.NotEqual(created.Etag, first.Etag);
            Assert.Empty(first.ServiceRequests);

            // The caller's retry of the same request (same etag, read before the commit) is the same answer, not ABORTED.
            var retry = (await Client.RecordOrderEventAsync(request, deadline: Deadline)).Requisition;
            Assert.Equal(first.Etag, retry.Etag);
            Assert.Equal(2, retry.Events.Count);

            // Another status with that stale etag is still a conflict.
            var stale = await Assert.ThrowsAsync<RpcException>(() => Client.RecordOrderEventAsync(new RecordOrderEventRequest
            {
                Id = created.Id, Status = "collecting_sample.testkit.transit_customer", Etag = created.Etag,
            }, deadline: Deadline).ResponseAsync);
            Assert.Equal(StatusCode.Aborted, stale.StatusCode);
        }
        finally
        {
            await mesh.RestartServiceRequestsAsync();
        }

        await Eventually.MatchAsync(
            async () => (await mesh.ServiceRequestClient(_team).ListServiceRequestsAsync(
                new ListServiceRequestsRequest { RequisitionId = created.Id }, deadline: Deadline)).ServiceRequests,
            list => list.Count == 2 && list.All(s => s.TaskBusinessStatus == TaskBusinessStatus.OrderConfirmed),
            TimeSpan.FromSeconds(20), "the sync worker to apply the order event");
        var read = (await Client.GetRequisitionAsync(new GetRequisitionRequest { Id = created.Id }, deadline: Deadline)).Requisition;
        Assert.Equal(2, read.ServiceRequests.Count);
        Assert.Equal(2, read.Events.Count);
    }

    [Fact]
    public async Task Draft_IsNotPurchasedUntilPlaced_ThenFiresOrderPlaced()
    {
        var created = await Client.CreateRequisitionAsync(NewOrder(place: false), deadline: Deadline);
        Assert.Equal(OrderStatus.Unspecified, created.Requisition.Status);
        Assert.Equal(LifecycleStatus.NotPurchased, created.Requisition.LifecycleStatus);
        var recordOnDraft = await Assert.ThrowsAsync<RpcException>(() => Client.RecordOrderEventAsync(
            new RecordOrderEventRequest { Id = created.Requisition.Id, Status = "received.testkit.requisition_created" }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, recordOnDraft.StatusCode);

        var placed = await Client.PlaceRequisitionAsync(
            new PlaceRequisitionRequest { Id = created.Requisition.Id, Etag = created.Requisition.Etag }, deadline: Deadline);

        Assert.Equal("received.testkit.ordered", placed.Requisition.SubStatus);
        Assert.NotNull(placed.Requisition.PlaceTime);
        var placeAgain = await Assert.ThrowsAsync<RpcException>(() => Client.PlaceRequisitionAsync(
            new PlaceRequisitionRequest { Id = created.Requisition.Id }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, placeAgain.StatusCode);
        await Eventually.MatchAsync(() => mesh.RequisitionEventsAsync(created.Requisition.Id),
            e => e.Any(x => x.Type == EventTypes.OrderPlaced), what: "order.placed");
    }

    [Fact]
    public async Task GetRequisition_ReadTwice_StoresNothing_AndTheEtagMovesOnlyWithAChange()
    {
        var created = (await Client.CreateRequisitionAsync(NewOrder(), deadline: Deadline)).Requisition;
        var partner = mesh.ServiceRequestClient(_team, "partner-a");
        // The lab reports partial results for one test: seed 003's lifecycle view moves to partial_results.
        foreach (var status in new[] { TaskBusinessStatus.OrderConfirmed, TaskBusinessStatus.AppointmentAttended, TaskBusinessStatus.PartialResultsReady })
        {
            await partner.UpdateTaskStatusAsync(new UpdateTaskStatusRequest { Id = created.ServiceRequests[0].Id, TaskBusinessStatus = status }, deadline: Deadline);
        }

        var first = (await Client.GetRequisitionAsync(new GetRequisitionRequest { Id = created.Id }, deadline: Deadline)).Requisition;
        var second = (await Client.GetRequisitionAsync(new GetRequisitionRequest { Id = created.Id }, deadline: Deadline)).Requisition;
        var cachedAfterReads = await Client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = created.Id }, deadline: Deadline);
        var stored = (await mesh.Requisitions.Services.GetRequiredService<RequisitionStore>().GetAsync(_team, created.Id, CancellationToken.None))!;

        // A read answers the view derived from what it read, and writes nothing: same etag, same version.
        Assert.Equal(LifecycleStatus.PartialResults, first.LifecycleStatus);
        Assert.Equal(LifecycleStatus.PartialResults, second.LifecycleStatus);
        Assert.Equal(created.Etag, first.Etag);
        Assert.Equal(created.Etag, second.Etag);
        Assert.Equal(created.Etag, cachedAfterReads.Status.Etag);
        Assert.Equal(created.Etag, stored.Etag);

        // A change derives the lifecycle with it: the etag moves and the status cache shows the view.
        var changed = (await Client.RecordOrderEventAsync(new RecordOrderEventRequest
        {
            Id = created.Id, Status = "received.testkit.requisition_created", Etag = second.Etag,
        }, deadline: Deadline)).Requisition;
        var cachedAfterChange = await Client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = created.Id }, deadline: Deadline);
        var third = (await Client.GetRequisitionAsync(new GetRequisitionRequest { Id = created.Id }, deadline: Deadline)).Requisition;

        Assert.NotEqual(second.Etag, changed.Etag);
        Assert.Equal(LifecycleStatus.PartialResults, changed.LifecycleStatus);
        Assert.Equal((LifecycleStatus.PartialResults, changed.Etag), (cachedAfterChange.Status.LifecycleStatus, cachedAfterChange.Status.Etag));
        Assert.Equal(changed.Etag, third.Etag);
    }

    [Fact]
    public async Task LifecycleUpdate_DerivedFromAnOlderVersion_StoresNothing()
    {
        var created = (await Client.CreateRequisitionAsync(NewOrder(), deadline: Deadline)).Requisition;
        var version = long.Parse(created.Etag, System.Globalization.CultureInfo.InvariantCulture);
        var store = mesh.Requisitions.Services.GetRequiredService<RequisitionStore>();

        // A reader derived a lifecycle from version - 1 while a change made the current one: it must not land.
        var stale = await store.UpdateLifecycleAsync(created.Id, version - 1, LifecycleStatus.PartialResults, CancellationToken.None);
        var afterStale = (await store.GetAsync(_team, created.Id, CancellationToken.None))!;
        var current = await store.UpdateLifecycleAsync(created.Id, version, LifecycleStatus.PartialResults, CancellationToken.None);
        var again = await store.UpdateLifecycleAsync(created.Id, version + 1, LifecycleStatus.PartialResults, CancellationToken.None);

        Assert.Null(stale);
        Assert.Equal((LifecycleStatus.Purchased, version), (afterStale.Lifecycle, afterStale.Version));
        Assert.Equal(version + 1, current);
        Assert.Null(again); // already that lifecycle
    }

    [Fact]
    public async Task RecordOrderEvent_FollowsTheConsistencyTableOnItsServiceRequests()
    {
        var id = (await Client.CreateRequisitionAsync(NewOrder(), deadline: Deadline)).Requisition.Id;

        var confirmed = await Record(id, "received.testkit.requisition_created");
        Assert.All(confirmed.ServiceRequests, s => Assert.Equal(TaskBusinessStatus.OrderConfirmed, s.TaskBusinessStatus));
        var transit = await Record(id, "collecting_sample.testkit.transit_lab");
        Assert.All(transit.ServiceRequests, s => Assert.Equal(TaskBusinessStatus.AppointmentAttended, s.TaskBusinessStatus));
        Assert.Equal(LifecycleStatus.Processing, transit.LifecycleStatus);
        var completed = await Record(id, "completed.testkit.completed");

        Assert.Equal(OrderStatus.Completed, completed.Status);
        Assert.Equal(LifecycleStatus.ResultsReady, completed.LifecycleStatus);
        Assert.All(completed.ServiceRequests, s =>
        {
            Assert.Equal(TaskBusinessStatus.FullResultsReady, s.TaskBusinessStatus);
            Assert.Equal(ServiceRequestStatus.Completed, s.Status);
        });
        Assert.Equal([1L, 2, 3, 4], completed.Events.Select(e => e.Id));
        var serviceRequestEvents = await Eventually.MatchAsync(() => mesh.ServiceRequestEventsAsync(id),
            e => e.Count(x => x.ServiceRequestStatusChanged?.TaskBusinessStatus == "FULL_RESULTS_READY") == 2, what: "service request events");
        Assert.All(serviceRequestEvents, e => Assert.Equal(EventTypes.ServiceRequestStatusChanged, e.Type));
    }

    [Fact]
    public async Task RecordOrderEvent_BackwardsStage_IsFailedPreconditionListingAllowedMoves()
    {
        var id = (await Client.CreateRequisitionAsync(NewOrder(), deadline: Deadline)).Requisition.Id;
        await Record(id, "sample_with_lab.testkit.delivered_to_lab");

        var error = await Assert.ThrowsAsync<RpcException>(() => Client.RecordOrderEventAsync(
            new RecordOrderEventRequest { Id = id, Status = "collecting_sample.testkit.transit_customer" }, deadline: Deadline).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        var info = error.GetDetail<ErrorInfo>();
        Assert.NotNull(info);
        Assert.Contains("completed.testkit.completed", info.Metadata["allowed"], StringComparison.Ordinal);
        Assert.DoesNotContain("collecting_sample", info.Metadata["allowed"], StringComparison.Ordinal);
        Assert.NotNull(error.GetDetail<PreconditionFailure>());
    }

    [Fact]
    public async Task RecordOrderEvent_OtherModalitysStatus_IsInvalidArgument()
    {
        var id = (await Client.CreateRequisitionAsync(NewOrder(TestModality.WalkInTest), deadline: Deadline)).Requisition.Id;

        var error = await Assert.ThrowsAsync<RpcException>(() => Client.RecordOrderEventAsync(
            new RecordOrderEventRequest { Id = id, Status = "collecting_sample.testkit.transit_customer" }, deadline: Deadline).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal("status", Assert.Single(error.GetDetail<BadRequest>()!.FieldViolations).Field);
    }

    [Fact]
    public async Task RecordOrderEvent_StaleEtag_IsAborted_AndTheRepeatIsANoOp()
    {
        var created = (await Client.CreateRequisitionAsync(NewOrder(), deadline: Deadline)).Requisition;
        var first = await Client.RecordOrderEventAsync(new RecordOrderEventRequest
        {
            Id = created.Id, Status = "received.testkit.requisition_created", Etag = created.Etag,
        }, deadline: Deadline);

        var stale = await Assert.ThrowsAsync<RpcException>(() => Client.RecordOrderEventAsync(new RecordOrderEventRequest
        {
            Id = created.Id, Status = "collecting_sample.testkit.transit_customer", Etag = created.Etag,
        }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.Aborted, stale.StatusCode);

        var repeat = await Client.RecordOrderEventAsync(new RecordOrderEventRequest
        {
            Id = created.Id, Status = "received.testkit.requisition_created",
        }, deadline: Deadline);
        Assert.Equal(first.Requisition.Etag, repeat.Requisition.Etag);
        Assert.Equal(2, repeat.Requisition.Events.Count);
    }

    [Fact]
    public async Task CancelRequisition_RevokesItsServiceRequests()
    {
        var id = (await Client.CreateRequisitionAsync(NewOrder(TestModality.AtHomePhlebotomy), deadline: Deadline)).Requisition.Id;
        Assert.Equal(LifecycleStatus.ScheduleAppointment, (await Record(id, "received.at_home_phlebotomy.requisition_created")).LifecycleStatus);

        var cancelled = await Client.CancelRequisitionAsync(new CancelRequisitionRequest { Id = id }, deadline: Deadline);

        Assert.Equal(OrderStatus.Cancelled, cancelled.Requisition.Status);
        Assert.Equal("cancelled.at_home_phlebotomy.cancelled", cancelled.Requisition.SubStatus);
        Assert.All(cancelled.Requisition.ServiceRequests, s => Assert.Equal(ServiceRequestStatus.Revoked, s.Status));
        var afterTerminal = await Assert.ThrowsAsync<RpcException>(() => Client.RecordOrderEventAsync(
            new RecordOrderEventRequest { Id = id, Status = "completed.at_home_phlebotomy.completed" }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, afterTerminal.StatusCode);
        var doNotProcess = await Assert.ThrowsAsync<RpcException>(() => Client.CancelRequisitionAsync(
            new CancelRequisitionRequest { Id = id, Reason = "because" }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, doNotProcess.StatusCode);
    }

    [Fact]
    public async Task Draft_CancelledWithAStatusOutsideItsVocabulary_IsInvalidArgument_AndStaysUsable()
    {
        var draft = (await Client.CreateRequisitionAsync(NewOrder(place: false), deadline: Deadline)).Requisition;
        var walkIn = (await Client.CreateRequisitionAsync(NewOrder(TestModality.WalkInTest, place: false), deadline: Deadline)).Requisition;

        var freeText = await Assert.ThrowsAsync<RpcException>(() => Client.RecordOrderEventAsync(
            new RecordOrderEventRequest { Id = draft.Id, Status = "cancelled.testkit.JaneDoe_1980-01-01" }, deadline: Deadline).ResponseAsync);
        var notForWalkIns = await Assert.ThrowsAsync<RpcException>(() => Client.CancelRequisitionAsync(
            new CancelRequisitionRequest { Id = walkIn.Id, Reason = "do_not_process" }, deadline: Deadline).ResponseAsync);
        var placed = await Client.PlaceRequisitionAsync(new PlaceRequisitionRequest { Id = draft.Id }, deadline: Deadline);

        Assert.Equal(StatusCode.InvalidArgument, freeText.StatusCode);
        Assert.Equal("status", Assert.Single(freeText.GetDetail<BadRequest>()!.FieldViolations).Field);
        Assert.DoesNotContain("JaneDoe", freeText.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(StatusCode.InvalidArgument, notForWalkIns.StatusCode);
        Assert.Equal("reason", Assert.Single(notForWalkIns.GetDetail<BadRequest>()!.FieldViolations).Field);
        Assert.Equal("received.testkit.ordered", placed.Requisition.SubStatus);
    }

    [Fact]
    public async Task CancelRequisition_Draft_IsCancelledWithoutBeingPlaced()
    {
        var draft = (await Client.CreateRequisitionAsync(NewOrder(place: false), deadline: Deadline)).Requisition;

        var cancelled = await Client.CancelRequisitionAsync(new CancelRequisitionRequest { Id = draft.Id, Etag = draft.Etag }, deadline: Deadline);

        Assert.Equal(OrderStatus.Cancelled, cancelled.Requisition.Status);
        Assert.Equal(["cancelled.testkit.cancelled"], cancelled.Requisition.Events.Select(e => e.Status));
        Assert.Null(cancelled.Requisition.PlaceTime);
        Assert.All(cancelled.Requisition.ServiceRequests, s => Assert.Equal(ServiceRequestStatus.Revoked, s.Status));
        var place = await Assert.ThrowsAsync<RpcException>(() => Client.PlaceRequisitionAsync(
            new PlaceRequisitionRequest { Id = draft.Id }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, place.StatusCode);
        var events = await Eventually.MatchAsync(() => mesh.RequisitionEventsAsync(draft.Id), e => e.Count >= 1, what: "the cancellation event");
        Assert.DoesNotContain(events, e => e.Type == EventTypes.OrderPlaced);
    }

    [Fact]
    public async Task SimulateOrder_WhileOneRuns_IsAlreadyExists()
    {
        var id = (await Client.CreateRequisitionAsync(NewOrder(), deadline: Deadline)).Requisition.Id;
        var slow = new SimulateOrderRequest { Id = id, StepDelay = Duration.FromTimeSpan(TimeSpan.FromSeconds(2)) };
        await Client.SimulateOrderAsync(slow, deadline: Deadline);

        var second = await Assert.ThrowsAsync<RpcException>(() => Client.SimulateOrderAsync(slow, deadline: Deadline).ResponseAsync);

        Assert.Equal(StatusCode.AlreadyExists, second.StatusCode);
        var cancelled = await Client.CancelRequisitionAsync(new CancelRequisitionRequest { Id = id }, deadline: Deadline);
        Assert.Equal(OrderStatus.Cancelled, cancelled.Requisition.Status);
    }

    [Fact]
    public async Task OtherTeam_CannotReadListOrChangeIt()
    {
        var id = (await Client.CreateRequisitionAsync(NewOrder(), deadline: Deadline)).Requisition.Id;
        var other = mesh.RequisitionClient("team-other-" + Guid.NewGuid().ToString("N")[..6]);

        var get = await Assert.ThrowsAsync<RpcException>(() => other.GetRequisitionAsync(new GetRequisitionRequest { Id = id }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, get.StatusCode);
        var status = await Assert.ThrowsAsync<RpcException>(() => other.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = id }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, status.StatusCode);
        var cancel = await Assert.ThrowsAsync<RpcException>(() => other.CancelRequisitionAsync(new CancelRequisitionRequest { Id = id }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, cancel.StatusCode);
        Assert.Empty((await other.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline)).Requisitions);
    }

    [Fact]
    public async Task Call_WithoutTeam_IsUnauthenticated()
    {
        using var channel = mesh.Requisitions.CreateChannel();
        var anonymous = new RequisitionService.RequisitionServiceClient(channel);

        var error = await Assert.ThrowsAsync<RpcException>(() => anonymous.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
    }

    [Fact]
    public async Task ListRequisitions_PagesNewestFirstAndFilters()
    {
        var ids = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            ids.Add((await Client.CreateRequisitionAsync(NewOrder(place: i != 2, tests: 1), deadline: Deadline)).Requisition.Id);
        }

        var seen = new List<string>();
        var token = "";
        do
        {
            var page = await Client.ListRequisitionsAsync(new ListRequisitionsRequest { PageSize = 2, PageToken = token }, deadline: Deadline);
            Assert.True(page.Requisitions.Count <= 2);
            seen.AddRange(page.Requisitions.Select(r => r.Id));
            token = page.NextPageToken;
        }
        while (token.Length > 0);

        Assert.Equal(Enumerable.Reverse(ids), seen);
        var drafts = await Client.ListRequisitionsAsync(new ListRequisitionsRequest { Draft = true }, deadline: Deadline);
        Assert.Equal([ids[2]], drafts.Requisitions.Select(r => r.Id));
        var tooBig = await Assert.ThrowsAsync<RpcException>(() => Client.ListRequisitionsAsync(new ListRequisitionsRequest { PageSize = 501 }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, tooBig.StatusCode);
        var badToken = await Assert.ThrowsAsync<RpcException>(() => Client.ListRequisitionsAsync(new ListRequisitionsRequest { PageToken = "nope" }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, badToken.StatusCode);
    }

    [Fact]
    public async Task GetRequisitionStatus_FollowsEveryChange()
    {
        var id = (await Client.CreateRequisitionAsync(NewOrder(), deadline: Deadline)).Requisition.Id;
        var before = await Client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = id }, deadline: Deadline);
        Assert.Equal("received.testkit.ordered", before.Status.SubStatus);

        var after = await Record(id, "collecting_sample.testkit.transit_customer");
        var status = await Client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = id }, deadline: Deadline);

        Assert.Equal(OrderStatus.CollectingSample, status.Status.Status);
        Assert.Equal("collecting_sample.testkit.transit_customer", status.Status.SubStatus);
        Assert.Equal(after.Etag, status.Status.Etag);
        var missing = await Assert.ThrowsAsync<RpcException>(() => Client.GetRequisitionStatusAsync(
            new GetRequisitionStatusRequest { Id = Guid.NewGuid().ToString() }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task SimulateOrder_WalksToTheFinalStatusFiringEveryEvent()
    {
        var id = (await Client.CreateRequisitionAsync(NewOrder(TestModality.AtHomePhlebotomy), deadline: Deadline)).Requisition.Id;

        var plan = await Client.SimulateOrderAsync(new SimulateOrderRequest
        {
            Id = id, FinalStatus = "completed.at_home_phlebotomy.completed", StepDelay = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(20)),
        }, deadline: Deadline);

        Assert.Equal("completed.at_home_phlebotomy.completed", plan.PlannedStatuses[^1]);
        var done = await Eventually.MatchAsync(
            async () => (await Client.GetRequisitionAsync(new GetRequisitionRequest { Id = id }, deadline: Deadline)).Requisition,
            r => r.Status == OrderStatus.Completed && r.ServiceRequests.All(s => s.Status == ServiceRequestStatus.Completed),
            what: "the simulated order to complete");
        Assert.Equal(["received.at_home_phlebotomy.ordered", .. plan.PlannedStatuses], done.Events.Select(e => e.Status));
        var events = await Eventually.MatchAsync(() => mesh.RequisitionEventsAsync(id),
            e => e.Count(x => x.Type == EventTypes.OrderStatusChanged) == plan.PlannedStatuses.Count + 1, what: "every simulated event");
        Assert.Equal(done.Events.Select(e => e.Status), events.Where(e => e.Type == EventTypes.OrderStatusChanged).Select(e => e.OrderStatusChanged.Status));

        var unreachable = await Assert.ThrowsAsync<RpcException>(() => Client.SimulateOrderAsync(new SimulateOrderRequest
        {
            Id = id, FinalStatus = "failed.testkit.lost",
        }, deadline: Deadline).ResponseAsync);
        Assert.True(unreachable.StatusCode is StatusCode.InvalidArgument or StatusCode.FailedPrecondition, unreachable.Status.ToString());
    }

    [Fact]
    public async Task RescheduleRequisition_AfterAppointmentCancelled_ReopensTheServiceRequests_AndTheOrderGoesOn()
    {
        var created = (await Client.CreateRequisitionAsync(NewOrder(TestModality.AtHomePhlebotomy), deadline: Deadline)).Requisition;
        await Record(created.Id, "received.at_home_phlebotomy.requisition_created");
        await Record(created.Id, "collecting_sample.at_home_phlebotomy.appointment_scheduled");
        var cancelled = await Record(created.Id, "collecting_sample.at_home_phlebotomy.appointment_cancelled");
        Assert.All(cancelled.ServiceRequests, s => Assert.Equal(TaskBusinessStatus.AppointmentIssue, s.TaskBusinessStatus));
        Assert.Equal(LifecycleStatus.ScheduleAppointment, cancelled.LifecycleStatus);

        // The partner still cannot leave the issue status, nor call the owner's reschedule.
        var partner = mesh.ServiceRequestClient(_team, "partner-a");
        var stuck = await Assert.ThrowsAsync<RpcException>(() => partner.UpdateTaskStatusAsync(new UpdateTaskStatusRequest
        {
            Id = cancelled.ServiceRequests[0].Id, TaskBusinessStatus = TaskBusinessStatus.OrderConfirmed,
        }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, stuck.StatusCode);
        using var channel = mesh.Requisitions.CreateChannel();
        var partnerRequisitions = new RequisitionService.RequisitionServiceClient(
            TestCaller.InvokerAs(channel, _team, LabMesh.Security.Identity.CallerRole.Partner, partner: "partner-a"));
        var denied = await Assert.ThrowsAsync<RpcException>(() => partnerRequisitions.RescheduleRequisitionAsync(
            new RescheduleRequisitionRequest { Id = created.Id, Reason = "patient asked" }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);

        var noReason = await Assert.ThrowsAsync<RpcException>(() => Client.RescheduleRequisitionAsync(
            new RescheduleRequisitionRequest { Id = created.Id }, deadline: Deadline).ResponseAsync);
        Assert.Equal("reason", Assert.Single(noReason.GetDetail<BadRequest>()!.FieldViolations).Field);

        var owner = new RequisitionService.RequisitionServiceClient(
            TestCaller.InvokerAs(channel, _team, LabMesh.Security.Identity.CallerRole.Clinician, subject: "dr-hopper"));
        var rescheduled = await owner.RescheduleRequisitionAsync(
            new RescheduleRequisitionRequest { Id = created.Id, Reason = "patient rebooked for Friday", Etag = cancelled.Etag }, deadline: Deadline);
        var again = await Assert.ThrowsAsync<RpcException>(() => owner.RescheduleRequisitionAsync(
            new RescheduleRequisitionRequest { Id = created.Id, Reason = "patient rebooked for Friday" }, deadline: Deadline).ResponseAsync);

        Assert.Equal(cancelled.ServiceRequests.Select(s => s.Id), rescheduled.RescheduledServiceRequestIds);
        Assert.All(rescheduled.Requisition.ServiceRequests, s => Assert.Equal(TaskBusinessStatus.OrderConfirmed, s.TaskBusinessStatus));
        Assert.Equal(cancelled.Etag, rescheduled.Requisition.Etag); // the requisition itself did not change
        // Nothing is in APPOINTMENT_ISSUE any more: a second reschedule is refused with the order's allowed moves.
        Assert.Equal(StatusCode.FailedPrecondition, again.StatusCode);
        Assert.Contains("collecting_sample.at_home_phlebotomy.appointment_scheduled", again.GetDetail<ErrorInfo>()!.Metadata["allowed"], StringComparison.Ordinal);

        var history = await mesh.ServiceRequestClient(_team).GetServiceRequestHistoryAsync(
            new GetServiceRequestHistoryRequest { Id = created.ServiceRequests[0].Id }, deadline: Deadline);
        var reopen = history.Changes[^1];
        Assert.Equal(("dr-hopper", "patient rebooked for Friday", "rescheduled"), (reopen.Actor, reopen.Note, reopen.Cause));
        Assert.Equal((TaskBusinessStatus.AppointmentIssue, TaskBusinessStatus.OrderConfirmed),
            (reopen.FromTaskBusinessStatus, reopen.ToTaskBusinessStatus));
        var audit = await Eventually.MatchAsync(() => mesh.ServiceRequestEventsAsync(created.Id),
            e => e.Count(x => x.ServiceRequestStatusChanged?.PreviousTaskBusinessStatus == "APPOINTMENT_ISSUE") == 2, what: "reopening events");
        Assert.All(audit.Where(x => x.ServiceRequestStatusChanged?.PreviousTaskBusinessStatus == "APPOINTMENT_ISSUE"),
            x => Assert.Equal("dr-hopper", x.ServiceRequestStatusChanged.Actor));

        // Seed 004's appointment_scheduled is accepted again, seed 003's lifecycle is upcoming_appointment again,
        // and the draw moves the reopened service requests on.
        var scheduled = await Record(created.Id, "collecting_sample.at_home_phlebotomy.appointment_scheduled");
        Assert.Equal(LifecycleStatus.UpcomingAppointment, scheduled.LifecycleStatus);
        var drawn = await Record(created.Id, "collecting_sample.at_home_phlebotomy.draw_completed");
        Assert.All(drawn.ServiceRequests, s => Assert.Equal(TaskBusinessStatus.AppointmentAttended, s.TaskBusinessStatus));
        Assert.Equal(LifecycleStatus.Processing, drawn.LifecycleStatus);
    }

    [Fact]
    public async Task RescheduleRequisition_WithoutAppointmentIssue_OrOnAnEndedOrder_IsFailedPrecondition()
    {
        var open = (await Client.CreateRequisitionAsync(NewOrder(TestModality.AtHomePhlebotomy), deadline: Deadline)).Requisition;
        var nothing = await Assert.ThrowsAsync<RpcException>(() => Client.RescheduleRequisitionAsync(
            new RescheduleRequisitionRequest { Id = open.Id, Reason = "why not" }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, nothing.StatusCode);

        await Record(open.Id, "collecting_sample.at_home_phlebotomy.appointment_scheduled");
        await Record(open.Id, "collecting_sample.at_home_phlebotomy.appointment_cancelled");
        await Client.CancelRequisitionAsync(new CancelRequisitionRequest { Id = open.Id }, deadline: Deadline);
        var ended = await Assert.ThrowsAsync<RpcException>(() => Client.RescheduleRequisitionAsync(
            new RescheduleRequisitionRequest { Id = open.Id, Reason = "too late" }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, ended.StatusCode);
        Assert.Equal("CreateRequisition with replaces_requisition_id", ended.GetDetail<ErrorInfo>()!.Metadata["allowed"]);

        var missing = await Assert.ThrowsAsync<RpcException>(() => Client.RescheduleRequisitionAsync(
            new RescheduleRequisitionRequest { Id = Guid.NewGuid().ToString(), Reason = "x" }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task CancelRequisition_FollowsTheCancellationTable_AndListsTheAllowedMovesOtherwise()
    {
        var kit = (await Client.CreateRequisitionAsync(NewOrder(), deadline: Deadline)).Requisition;
        var inTransit = await Record(kit.Id, "collecting_sample.testkit.transit_lab");

        // The sample is on its way to the lab: it can no longer be cancelled, only not processed.
        var cancel = await Assert.ThrowsAsync<RpcException>(() => Client.CancelRequisitionAsync(
            new CancelRequisitionRequest { Id = kit.Id }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, cancel.StatusCode);
        var allowed = cancel.GetDetail<ErrorInfo>()!.Metadata["allowed"].Split(',');
        Assert.Contains("cancelled.testkit.do_not_process", allowed);
        Assert.DoesNotContain("cancelled.testkit.cancelled", allowed);
        Assert.NotNull(cancel.GetDetail<PreconditionFailure>());
        var unchanged = (await Client.GetRequisitionAsync(new GetRequisitionRequest { Id = kit.Id }, deadline: Deadline)).Requisition;
        Assert.Equal((inTransit.SubStatus, inTransit.Etag), (unchanged.SubStatus, unchanged.Etag));

        var doNotProcess = await Client.CancelRequisitionAsync(new CancelRequisitionRequest { Id = kit.Id, Reason = "do_not_process" }, deadline: Deadline);
        Assert.Equal("cancelled.testkit.do_not_process", doNotProcess.Requisition.SubStatus);
        Assert.All(doNotProcess.Requisition.ServiceRequests, s => Assert.Equal(ServiceRequestStatus.Revoked, s.Status));

        // A walk-in test whose sample the lab has (partial results) and an at-home draw done: nothing to cancel.
        var walkIn = (await Client.CreateRequisitionAsync(NewOrder(TestModality.WalkInTest), deadline: Deadline)).Requisition;
        await Record(walkIn.Id, "sample_with_lab.walk_in_test.partial_results");
        var atHome = (await Client.CreateRequisitionAsync(NewOrder(TestModality.AtHomePhlebotomy), deadline: Deadline)).Requisition;
        await Record(atHome.Id, "collecting_sample.at_home_phlebotomy.draw_completed");
        foreach (var id in new[] { walkIn.Id, atHome.Id })
        {
            var refused = await Assert.ThrowsAsync<RpcException>(() => Client.CancelRequisitionAsync(
                new CancelRequisitionRequest { Id = id }, deadline: Deadline).ResponseAsync);
            Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
            Assert.DoesNotContain("cancelled.", refused.GetDetail<ErrorInfo>()!.Metadata["allowed"], StringComparison.Ordinal);
        }

        // The order feed follows the same table.
        var fed = await Assert.ThrowsAsync<RpcException>(() => Client.RecordOrderEventAsync(
            new RecordOrderEventRequest { Id = walkIn.Id, Status = "cancelled.walk_in_test.cancelled" }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, fed.StatusCode);
    }

    [Fact]
    public async Task ReplacementOrder_ForTheTestsWithResultsIssue_LinksBothWays_AndGetRequisitionShowsTheChain()
    {
        var failed = (await Client.CreateRequisitionAsync(NewOrder(), deadline: Deadline)).Requisition;
        await Record(failed.Id, "sample_with_lab.testkit.delivered_to_lab");
        var sampleError = await Record(failed.Id, "failed.testkit.sample_error");
        Assert.All(sampleError.ServiceRequests, s => Assert.Equal(TaskBusinessStatus.ResultsIssue, s.TaskBusinessStatus));

        // A redraw of one of its two tests.
        var redraw = NewOrder(TestModality.AtHomePhlebotomy, tests: 1);
        redraw.ReplacesRequisitionId = failed.Id;
        var replacement = (await Client.CreateRequisitionAsync(redraw, deadline: Deadline)).Requisition;
        var old = (await Client.GetRequisitionAsync(new GetRequisitionRequest { Id = failed.Id }, deadline: Deadline)).Requisition;
        var oldStatus = await Client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = failed.Id }, deadline: Deadline);

        Assert.Equal(failed.Id, replacement.ReplacesRequisitionId);
        Assert.Equal([failed.Id, replacement.Id], replacement.ReplacementChain);
        Assert.Equal([replacement.Id], old.ReplacedByRequisitionIds);
        Assert.Equal([failed.Id, replacement.Id], old.ReplacementChain);
        Assert.NotEqual(sampleError.Etag, old.Etag); // the replaced requisition changed: it carries the link
        Assert.Equal(old.Etag, oldStatus.Status.Etag);
        var placed = await Eventually.MatchAsync(() => mesh.RequisitionEventsAsync(replacement.Id),
            e => e.Any(x => x.Type == EventTypes.OrderPlaced), what: "order.placed of the replacement");
        Assert.Equal(failed.Id, Assert.Single(placed, e => e.Type == EventTypes.OrderPlaced).OrderPlaced.ReplacesRequisitionId);

        // A second replacement of the replacement extends the chain; every member shows all of it.
        await Record(replacement.Id, "received.at_home_phlebotomy.requisition_created");
        await Record(replacement.Id, "collecting_sample.at_home_phlebotomy.appointment_scheduled");
        await Record(replacement.Id, "collecting_sample.at_home_phlebotomy.appointment_cancelled");
        var again = NewOrder(TestModality.AtHomePhlebotomy, tests: 1);
        again.ReplacesRequisitionId = replacement.Id;
        var third = (await Client.CreateRequisitionAsync(again, deadline: Deadline)).Requisition;
        var first = (await Client.GetRequisitionAsync(new GetRequisitionRequest { Id = failed.Id }, deadline: Deadline)).Requisition;
        Assert.Equal([failed.Id, replacement.Id, third.Id], first.ReplacementChain);
        Assert.Equal([replacement.Id], first.ReplacedByRequisitionIds);
        Assert.Equal(first.ReplacementChain, third.ReplacementChain);
    }

    [Fact]
    public async Task ReplacementOrder_OfAnOrderWithoutFailureOrIssue_OrWithOtherTestsOrPatient_IsRefused()
    {
        var open = (await Client.CreateRequisitionAsync(NewOrder(), deadline: Deadline)).Requisition;
        var replacing = NewOrder();
        replacing.ReplacesRequisitionId = open.Id;
        var notFailed = await Assert.ThrowsAsync<RpcException>(() => Client.CreateRequisitionAsync(replacing, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, notFailed.StatusCode);
        Assert.Equal("CancelRequisition", notFailed.GetDetail<ErrorInfo>()!.Metadata["allowed"]);

        await Record(open.Id, "failed.testkit.failure_to_deliver_to_customer");
        var other = NewOrder(tests: 3);
        other.Patient.Id = "patient-2";
        other.ReplacesRequisitionId = open.Id;
        var wrong = await Assert.ThrowsAsync<RpcException>(() => Client.CreateRequisitionAsync(other, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, wrong.StatusCode);
        Assert.Equal(["patient.id", "tests[2].code"], wrong.GetDetail<BadRequest>()!.FieldViolations.Select(v => v.Field));

        var unknown = NewOrder();
        unknown.ReplacesRequisitionId = Guid.NewGuid().ToString();
        var missing = await Assert.ThrowsAsync<RpcException>(() => Client.CreateRequisitionAsync(unknown, deadline: Deadline).ResponseAsync);
        Assert.Equal("replaces_requisition_id", Assert.Single(missing.GetDetail<BadRequest>()!.FieldViolations).Field);
        var read = (await Client.GetRequisitionAsync(new GetRequisitionRequest { Id = open.Id }, deadline: Deadline)).Requisition;
        Assert.Empty(read.ReplacedByRequisitionIds);
        Assert.Empty(read.ReplacementChain);
    }

    private async Task<LabMesh.Contracts.Requisition.V1.Requisition> Record(string id, string status) =>
        (await Client.RecordOrderEventAsync(new RecordOrderEventRequest { Id = id, Status = status }, deadline: Deadline)).Requisition;
}
