using Google.Rpc;
using Grpc.Core;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.ServiceDefaults.Hosting;
using LabMesh.Security.Identity;
using LabMesh.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.ServiceRequest.Tests;

/// <summary>The ServiceRequest service alone, as a host on a loopback port, with its store on <c>Backend</c>.</summary>
public abstract class ServiceRequestHostFixture(Backend backend) : HostFixture(backend)
{
    public ServiceRequestService.ServiceRequestServiceClient Client(string team, string? partner = null) => Client(Channel(), team, partner);

    public static ServiceRequestService.ServiceRequestServiceClient Client(Grpc.Net.Client.GrpcChannel channel, string team, string? partner = null) =>
        new(TestCaller.Invoker(channel, team, partner, partner is null ? "service:requisition" : "partner-user"));

    protected override Task<ServiceHost> StartAsync(IReadOnlyDictionary<string, string?> settings) => MeshHosts.StartServiceRequestsAsync(settings);
}

public sealed class SqliteHost() : ServiceRequestHostFixture(Backend.Sqlite);

public sealed class PostgresHost() : ServiceRequestHostFixture(Backend.Postgres);

public sealed class ServiceRequestServiceTests_Sqlite(SqliteHost fixture) : ServiceRequestServiceTests(fixture), IClassFixture<SqliteHost>;

public sealed class ServiceRequestServiceTests_Postgres(PostgresHost fixture) : ServiceRequestServiceTests(fixture), IClassFixture<PostgresHost>;

/// <summary>The ServiceRequest service through its generated client, on SQLite and PostgreSQL. Each test has its own team.</summary>
public abstract class ServiceRequestServiceTests(ServiceRequestHostFixture fixture)
{
    private readonly string _team = "team-" + Guid.NewGuid().ToString("N")[..8];

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    private ServiceRequestService.ServiceRequestServiceClient Owner => fixture.Client(_team);

    private ServiceRequestService.ServiceRequestServiceClient Partner => fixture.Client(_team, "partner-a");

    /// <summary>Creates and confirms service requests for a new requisition, as the Requisition service does.</summary>
    public static async Task<IReadOnlyList<Contracts.ServiceRequest.V1.ServiceRequest>> CreateConfirmedAsync(
        ServiceRequestService.ServiceRequestServiceClient owner, int count = 2)
    {
        var requisitionId = Guid.CreateVersion7().ToString();
        var create = new CreateServiceRequestsRequest { RequisitionId = requisitionId };
        for (var i = 0; i < count; i++)
        {
            create.ServiceRequests.Add(new NewServiceRequest { Code = $"CODE_{i}", PartnerId = "partner-a", TaskDescription = "fasting" });
        }

        await owner.CreateServiceRequestsAsync(create, deadline: Deadline);
        return (await owner.ConfirmServiceRequestsAsync(new ConfirmServiceRequestsRequest { RequisitionId = requisitionId }, deadline: Deadline))
            .ServiceRequests;
    }

    [Fact]
    public async Task UpdateTaskStatus_HappyPathWithASkip_CompletesAndKeepsHistory()
    {
        var serviceRequest = (await CreateConfirmedAsync(Owner))[0];

        var confirmed = await Update(serviceRequest.Id, TaskBusinessStatus.OrderConfirmed, serviceRequest.Etag);
        var partial = await Update(serviceRequest.Id, TaskBusinessStatus.PartialResultsReady, confirmed.ServiceRequest.Etag);
        var full = await Update(serviceRequest.Id, TaskBusinessStatus.FullResultsReady, partial.ServiceRequest.Etag);

        Assert.Equal(ServiceRequestStatus.Completed, full.ServiceRequest.Status);
        Assert.True(full.Changed);
        var history = await Owner.GetServiceRequestHistoryAsync(new GetServiceRequestHistoryRequest { Id = serviceRequest.Id }, deadline: Deadline);
        Assert.Equal(
            [TaskBusinessStatus.Unspecified, TaskBusinessStatus.OrderConfirmed, TaskBusinessStatus.PartialResultsReady, TaskBusinessStatus.FullResultsReady],
            history.Changes.Select(c => c.ToTaskBusinessStatus));
        Assert.Equal("partner:partner-a", history.Changes[^1].Actor);
        Assert.Equal(ServiceRequestStatus.Active, history.Changes[^1].FromStatus);
        Assert.Equal(ServiceRequestStatus.Completed, history.Changes[^1].ToStatus);
    }

    [Fact]
    public async Task UpdateTaskStatus_BackwardsMove_IsFailedPreconditionListingTheAllowedValues()
    {
        var serviceRequest = (await CreateConfirmedAsync(Owner))[0];
        await Update(serviceRequest.Id, TaskBusinessStatus.PartialResultsReady);

        var error = await Assert.ThrowsAsync<RpcException>(() => Update(serviceRequest.Id, TaskBusinessStatus.OrderConfirmed));

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        var info = error.GetDetail<ErrorInfo>()!;
        Assert.Equal("ILLEGAL_TRANSITION", info.Reason);
        Assert.Contains("FULL_RESULTS_READY", info.Metadata["allowed"], StringComparison.Ordinal);
        Assert.DoesNotContain("ORDER_CONFIRMED", info.Metadata["allowed"], StringComparison.Ordinal);
        var unchanged = await Owner.GetServiceRequestAsync(new GetServiceRequestRequest { Id = serviceRequest.Id }, deadline: Deadline);
        Assert.Equal(TaskBusinessStatus.PartialResultsReady, unchanged.ServiceRequest.TaskBusinessStatus);
    }

    [Fact]
    public async Task UpdateTaskStatus_RepeatOfTheCurrentValue_IsANoOp()
    {
        var serviceRequest = (await CreateConfirmedAsync(Owner))[0];
        var first = await Update(serviceRequest.Id, TaskBusinessStatus.OrderConfirmed);

        var repeat = await Update(serviceRequest.Id, TaskBusinessStatus.OrderConfirmed, first.ServiceRequest.Etag);

        Assert.False(repeat.Changed);
        Assert.Equal(first.ServiceRequest.Etag, repeat.ServiceRequest.Etag);
    }

    [Fact]
    public async Task UpdateTaskStatus_ConcurrentUpdatesWithOneEtag_ExactlyOneWins()
    {
        var serviceRequest = (await CreateConfirmedAsync(Owner))[0];
        var targets = new[] { TaskBusinessStatus.OrderConfirmed, TaskBusinessStatus.AppointmentAttended, TaskBusinessStatus.PartialResultsReady, TaskBusinessStatus.AppointmentIssue };

        var outcomes = await Task.WhenAll(Enumerable.Range(0, 8).Select(async i =>
        {
            try
            {
                await Update(serviceRequest.Id, targets[i % targets.Length], serviceRequest.Etag);
                return StatusCode.OK;
            }
            catch (RpcException ex)
            {
                return ex.StatusCode;
            }
        }));

        Assert.Equal(1, outcomes.Count(o => o == StatusCode.OK));
        Assert.All(outcomes.Where(o => o != StatusCode.OK), o => Assert.Equal(StatusCode.Aborted, o));
        var history = await Owner.GetServiceRequestHistoryAsync(new GetServiceRequestHistoryRequest { Id = serviceRequest.Id }, deadline: Deadline);
        Assert.Equal(2, history.Changes.Count);
    }

    [Fact]
    public async Task Partner_AnotherPartnersServiceRequest_IsNotFound_EvenWhenTheInterceptorsLookupSawNothing()
    {
        // A host whose interceptor check sees no service request at all, as it sees one created for partner-a and
        // confirmed between its check and the handler's read: the partner scope it decided and passed on must still
        // keep partner-b out of partner-a's (the handlers read with it).
        var settings = await TestSettings.CreateAsync(Backend.Sqlite);
        await using var host = await ServiceHost.StartAsync(settings,
            builder =>
            {
                builder.AddServiceDefaults();
                builder.Services.AddServiceRequestService();
                builder.Services.AddSingleton<IServiceRequestAssignments, NothingVisibleYet>();
            },
            app =>
            {
                app.MapServiceRequestService();
                app.MapDefaultEndpoints();
            }).WaitAsync(TimeSpan.FromSeconds(120));
        using var channel = host.CreateChannel();
        var serviceRequest = (await CreateConfirmedAsync(ServiceRequestHostFixture.Client(channel, _team), 1))[0];
        var other = ServiceRequestHostFixture.Client(channel, _team, "partner-b");

        var get = await Assert.ThrowsAsync<RpcException>(() =>
            other.GetServiceRequestAsync(new GetServiceRequestRequest { Id = serviceRequest.Id }, deadline: Deadline).ResponseAsync);
        var history = await Assert.ThrowsAsync<RpcException>(() =>
            other.GetServiceRequestHistoryAsync(new GetServiceRequestHistoryRequest { Id = serviceRequest.Id }, deadline: Deadline).ResponseAsync);
        var update = await Assert.ThrowsAsync<RpcException>(() => other.UpdateTaskStatusAsync(
            new UpdateTaskStatusRequest { Id = serviceRequest.Id, TaskBusinessStatus = TaskBusinessStatus.OrderIssue }, deadline: Deadline).ResponseAsync);

        Assert.Equal([StatusCode.NotFound, StatusCode.NotFound, StatusCode.NotFound], new[] { get.StatusCode, history.StatusCode, update.StatusCode });
        var mine = ServiceRequestHostFixture.Client(channel, _team, "partner-a");
        var unchanged = await mine.GetServiceRequestAsync(new GetServiceRequestRequest { Id = serviceRequest.Id }, deadline: Deadline);
        Assert.Equal(serviceRequest.Etag, unchanged.ServiceRequest.Etag);
    }

    private sealed class NothingVisibleYet : IServiceRequestAssignments
    {
        public Task<string?> PartnerOfAsync(string teamId, string id, CancellationToken cancellationToken) => Task.FromResult<string?>(null);
    }

    [Fact]
    public async Task Partner_AnotherPartnersServiceRequest_IsRefusedByTheInterceptor_BeforeTheHandlerRuns_PendingOrNot()
    {
        // The partner rule is decided by the authorization interceptor, whose lookup sees pending service requests too.
        // Requests the handlers answer INVALID_ARGUMENT before reading anything show who answered: NOT_FOUND means the
        // interceptor refused the call before the handler ran.
        var requisitionId = Guid.CreateVersion7().ToString();
        var create = new CreateServiceRequestsRequest { RequisitionId = requisitionId };
        create.ServiceRequests.Add(new NewServiceRequest { Code = "CBC", PartnerId = "partner-a" });
        var pending = (await Owner.CreateServiceRequestsAsync(create, deadline: Deadline)).ServiceRequests.Single();
        var other = fixture.Client(_team, "partner-b");

        async Task<(StatusCode Update, StatusCode History, string Detail)> InvalidCallsAsync(ServiceRequestService.ServiceRequestServiceClient client, string id)
        {
            var update = await Assert.ThrowsAsync<RpcException>(() => client.UpdateTaskStatusAsync(
                new UpdateTaskStatusRequest { Id = id, TaskBusinessStatus = TaskBusinessStatus.Unspecified }, deadline: Deadline).ResponseAsync);
            var history = await Assert.ThrowsAsync<RpcException>(() => client.GetServiceRequestHistoryAsync(
                new GetServiceRequestHistoryRequest { Id = id, PageSize = 100_000 }, deadline: Deadline).ResponseAsync);
            return (update.StatusCode, history.StatusCode, update.Status.Detail.Replace(id, "{id}", StringComparison.Ordinal));
        }

        var missing = await Assert.ThrowsAsync<RpcException>(() =>
            other.GetServiceRequestAsync(new GetServiceRequestRequest { Id = "no-such-id" }, deadline: Deadline).ResponseAsync);
        var missingDetail = missing.Status.Detail.Replace("no-such-id", "{id}", StringComparison.Ordinal);
        var othersPending = await InvalidCallsAsync(other, pending.Id);
        var ownPending = await InvalidCallsAsync(Partner, pending.Id);
        var unknown = await InvalidCallsAsync(other, "no-such-id");

        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        Assert.Equal((StatusCode.NotFound, StatusCode.NotFound, missingDetail), othersPending);
        Assert.Equal((StatusCode.InvalidArgument, StatusCode.InvalidArgument), (ownPending.Update, ownPending.History));
        Assert.Equal((StatusCode.InvalidArgument, StatusCode.InvalidArgument), (unknown.Update, unknown.History));

        await Owner.ConfirmServiceRequestsAsync(new ConfirmServiceRequestsRequest { RequisitionId = requisitionId }, deadline: Deadline);

        Assert.Equal(othersPending, await InvalidCallsAsync(other, pending.Id));
        var get = await Assert.ThrowsAsync<RpcException>(() =>
            other.GetServiceRequestAsync(new GetServiceRequestRequest { Id = pending.Id }, deadline: Deadline).ResponseAsync);
        var update = await Assert.ThrowsAsync<RpcException>(() => other.UpdateTaskStatusAsync(
            new UpdateTaskStatusRequest { Id = pending.Id, TaskBusinessStatus = TaskBusinessStatus.OrderIssue }, deadline: Deadline).ResponseAsync);
        Assert.Equal((StatusCode.NotFound, StatusCode.NotFound), (get.StatusCode, update.StatusCode));
        var mine = (await Partner.GetServiceRequestAsync(new GetServiceRequestRequest { Id = pending.Id }, deadline: Deadline)).ServiceRequest;
        Assert.Equal(TaskBusinessStatus.Unspecified, mine.TaskBusinessStatus);
        var history = await Owner.GetServiceRequestHistoryAsync(new GetServiceRequestHistoryRequest { Id = pending.Id }, deadline: Deadline);
        Assert.DoesNotContain(history.Changes, c => c.Actor.StartsWith("partner:", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ConcurrentOrderEvents_TheLaterEventWins_WhicheverCommitsFirst()
    {
        // Two order events for the same requisition at once (the request path and the sync worker, say): on
        // PostgreSQL both used to read the rows unlocked and the earlier event could overwrite the cancel.
        for (var round = 0; round < 20; round++)
        {
            var requisitionId = (await CreateConfirmedAsync(Owner, 2))[0].RequisitionId;

            await Task.WhenAll(
                Apply(requisitionId, "sample_with_lab.testkit.delivered_to_lab", 5),
                Apply(requisitionId, "cancelled.testkit.cancelled", 6));

            var serviceRequests = (await Owner.ListServiceRequestsAsync(
                new ListServiceRequestsRequest { RequisitionId = requisitionId }, deadline: Deadline)).ServiceRequests;
            Assert.All(serviceRequests, s => Assert.Equal(ServiceRequestStatus.Revoked, s.Status));
        }
    }

    [Fact]
    public async Task Pending_ServiceRequests_AreInvisibleUntilConfirmed()
    {
        var requisitionId = Guid.CreateVersion7().ToString();
        var create = new CreateServiceRequestsRequest { RequisitionId = requisitionId };
        create.ServiceRequests.Add(new NewServiceRequest { Code = "CBC", PartnerId = "partner-a" });
        var created = (await Owner.CreateServiceRequestsAsync(create, deadline: Deadline)).ServiceRequests.Single();
        var again = (await Owner.CreateServiceRequestsAsync(create, deadline: Deadline)).ServiceRequests.Single();
        Assert.Equal(created.Id, again.Id);

        var get = await Assert.ThrowsAsync<RpcException>(() => Partner.GetServiceRequestAsync(new GetServiceRequestRequest { Id = created.Id }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, get.StatusCode);
        Assert.Empty((await Partner.ListServiceRequestsAsync(new ListServiceRequestsRequest { RequisitionId = requisitionId }, deadline: Deadline)).ServiceRequests);
        Assert.Equal([created.Id], (await Partner.BatchGetStatusAsync(new BatchGetStatusRequest { Ids = { created.Id } }, deadline: Deadline)).NotFoundIds);
        var update = await Assert.ThrowsAsync<RpcException>(() => Update(created.Id, TaskBusinessStatus.OrderConfirmed));
        Assert.Equal(StatusCode.NotFound, update.StatusCode);

        await Owner.ConfirmServiceRequestsAsync(new ConfirmServiceRequestsRequest { RequisitionId = requisitionId }, deadline: Deadline);

        Assert.Equal(created.Id, (await Partner.GetServiceRequestAsync(new GetServiceRequestRequest { Id = created.Id }, deadline: Deadline)).ServiceRequest.Id);
        create.ServiceRequests[0].Code = "LIPID_PANEL";
        var different = await Assert.ThrowsAsync<RpcException>(() => Owner.CreateServiceRequestsAsync(create, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.AlreadyExists, different.StatusCode);
    }

    [Fact]
    public async Task BatchGetStatus_ReturnsInOrderAndNamesTheMissing()
    {
        var serviceRequests = await CreateConfirmedAsync(Owner, 3);
        await Update(serviceRequests[1].Id, TaskBusinessStatus.AppointmentAttended);
        var foreign = (await CreateConfirmedAsync(fixture.Client("team-other-" + Guid.NewGuid().ToString("N")[..6]), 1))[0];
        var missing = Guid.NewGuid().ToString();

        var response = await Partner.BatchGetStatusAsync(new BatchGetStatusRequest
        {
            Ids = { serviceRequests[2].Id, serviceRequests[1].Id, missing, foreign.Id, serviceRequests[0].Id },
        }, deadline: Deadline);

        Assert.Equal([serviceRequests[2].Id, serviceRequests[1].Id, serviceRequests[0].Id], response.Statuses.Select(s => s.Id));
        Assert.Equal(TaskBusinessStatus.AppointmentAttended, response.Statuses[1].TaskBusinessStatus);
        Assert.Equal([missing, foreign.Id], response.NotFoundIds);
        var again = await Partner.BatchGetStatusAsync(new BatchGetStatusRequest { Ids = { serviceRequests[1].Id } }, deadline: Deadline);
        Assert.Equal(response.Statuses[1], again.Statuses.Single());
        var empty = await Assert.ThrowsAsync<RpcException>(() => Partner.BatchGetStatusAsync(new BatchGetStatusRequest(), deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, empty.StatusCode);
    }

    [Fact]
    public async Task RevokeServiceRequest_IsTerminalForThePartner()
    {
        var serviceRequest = (await CreateConfirmedAsync(Owner))[0];

        var revoked = await Owner.RevokeServiceRequestAsync(new RevokeServiceRequestRequest { Id = serviceRequest.Id, Reason = "patient request" }, deadline: Deadline);
        var again = await Owner.RevokeServiceRequestAsync(new RevokeServiceRequestRequest { Id = serviceRequest.Id }, deadline: Deadline);

        Assert.Equal(ServiceRequestStatus.Revoked, revoked.ServiceRequest.Status);
        Assert.False(again.Changed);
        var error = await Assert.ThrowsAsync<RpcException>(() => Update(serviceRequest.Id, TaskBusinessStatus.OrderConfirmed));
        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
    }

    [Fact]
    public async Task ApplyOrderEvent_AppliesOnceByEventIdAndNeverMovesBack()
    {
        var serviceRequests = await CreateConfirmedAsync(Owner);
        var requisitionId = serviceRequests[0].RequisitionId;

        var attended = await Apply(requisitionId, "collecting_sample.testkit.transit_lab", 3);
        Assert.All(attended.ServiceRequests, s => Assert.Equal(TaskBusinessStatus.AppointmentAttended, s.TaskBusinessStatus));
        var older = await Apply(requisitionId, "received.testkit.requisition_created", 2);
        Assert.All(older.ServiceRequests, s => Assert.Equal(TaskBusinessStatus.AppointmentAttended, s.TaskBusinessStatus));
        var repeated = await Apply(requisitionId, "collecting_sample.testkit.transit_lab", 3);
        Assert.Equal(attended.ServiceRequests.Select(s => s.Etag), repeated.ServiceRequests.Select(s => s.Etag));

        var missing = await Assert.ThrowsAsync<RpcException>(() => Apply(Guid.NewGuid().ToString(), "completed.testkit.completed", 1));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
    }

    [Fact]
    public async Task RecordResults_MovesTheNamedTestsForwardOnly_AndRefusesAnotherRequisitionsTest()
    {
        var serviceRequests = await CreateConfirmedAsync(Owner, 3);
        var requisitionId = serviceRequests[0].RequisitionId;
        await Owner.RevokeServiceRequestAsync(new RevokeServiceRequestRequest { Id = serviceRequests[2].Id }, deadline: Deadline);

        var final = await Record(requisitionId, true, serviceRequests[0].Id, serviceRequests[2].Id);
        var partialAfterFinal = await Record(requisitionId, false, serviceRequests[0].Id, serviceRequests[1].Id);

        Assert.Equal(TaskBusinessStatus.FullResultsReady, final.ServiceRequests[0].TaskBusinessStatus);
        Assert.Equal(ServiceRequestStatus.Completed, final.ServiceRequests[0].Status);
        Assert.Equal(ServiceRequestStatus.Revoked, final.ServiceRequests[1].Status);
        Assert.Equal(TaskBusinessStatus.Unspecified, final.ServiceRequests[1].TaskBusinessStatus);
        Assert.Equal(TaskBusinessStatus.FullResultsReady, partialAfterFinal.ServiceRequests[0].TaskBusinessStatus);
        Assert.Equal(final.ServiceRequests[0].Etag, partialAfterFinal.ServiceRequests[0].Etag);
        Assert.Equal(TaskBusinessStatus.PartialResultsReady, partialAfterFinal.ServiceRequests[1].TaskBusinessStatus);
        var history = await Owner.GetServiceRequestHistoryAsync(new GetServiceRequestHistoryRequest { Id = serviceRequests[0].Id }, deadline: Deadline);
        Assert.Equal("results report r1 v1", history.Changes[^1].Cause);

        var other = (await CreateConfirmedAsync(Owner, 1))[0];
        var foreign = await Assert.ThrowsAsync<RpcException>(() => Record(requisitionId, true, other.Id));
        Assert.Equal(StatusCode.InvalidArgument, foreign.StatusCode);
        Assert.Equal("service_request_ids[0]", foreign.GetDetail<BadRequest>()!.FieldViolations.Single().Field);
    }

    [Fact]
    public async Task RecordResults_AnswersEveryServiceRequestOfTheRequisition_AsTheChangeLeftThem_InLineOrder()
    {
        var serviceRequests = await CreateConfirmedAsync(Owner, 3);
        var requisitionId = serviceRequests[0].RequisitionId;
        await Owner.RevokeServiceRequestAsync(new RevokeServiceRequestRequest { Id = serviceRequests[2].Id }, deadline: Deadline);
        await Partner.UpdateTaskStatusAsync(new UpdateTaskStatusRequest
        {
            Id = serviceRequests[0].Id,
            TaskBusinessStatus = TaskBusinessStatus.AppointmentAttended,
        }, deadline: Deadline);

        // Only the second test is named: the answer still holds all three, the unnamed ones as they are.
        var recorded = await Record(requisitionId, true, serviceRequests[1].Id);

        Assert.Equal([serviceRequests[1].Id], recorded.ServiceRequests.Select(s => s.Id));
        var listed = await Owner.ListServiceRequestsAsync(
            new ListServiceRequestsRequest { RequisitionId = requisitionId, IncludePending = true, PageSize = 500 }, deadline: Deadline);
        // As read back, update_time included: the change answers the time as the store keeps it.
        Assert.Equal(listed.ServiceRequests.OrderBy(s => s.Line), recorded.RequisitionServiceRequests);
        Assert.Equal(serviceRequests.Select(s => s.Id), recorded.RequisitionServiceRequests.Select(s => s.Id));
        Assert.Equal(
            [TaskBusinessStatus.AppointmentAttended, TaskBusinessStatus.FullResultsReady, TaskBusinessStatus.Unspecified],
            recorded.RequisitionServiceRequests.Select(s => s.TaskBusinessStatus));
        Assert.Equal(ServiceRequestStatus.Revoked, recorded.RequisitionServiceRequests[2].Status);
        Assert.Equal(recorded.ServiceRequests[0], recorded.RequisitionServiceRequests[1]);
    }

    [Fact]
    public async Task UnknownOrForeignId_IsNotFound_AndBadInputIsInvalidArgument()
    {
        var foreign = (await CreateConfirmedAsync(fixture.Client("team-other-" + Guid.NewGuid().ToString("N")[..6]), 1))[0];

        var notFound = await Assert.ThrowsAsync<RpcException>(() => Update(foreign.Id, TaskBusinessStatus.OrderConfirmed));
        Assert.Equal(StatusCode.NotFound, notFound.StatusCode);
        Assert.Equal(foreign.Id, notFound.GetDetail<ResourceInfo>()!.ResourceName);

        var unspecified = await Assert.ThrowsAsync<RpcException>(() => Update(foreign.Id, TaskBusinessStatus.Unspecified));
        Assert.Equal(StatusCode.InvalidArgument, unspecified.StatusCode);
        Assert.Equal("task_business_status", unspecified.GetDetail<BadRequest>()!.FieldViolations.Single().Field);
        var noId = await Assert.ThrowsAsync<RpcException>(() => Owner.GetServiceRequestAsync(new GetServiceRequestRequest(), deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, noId.StatusCode);
    }

    private async Task<UpdateTaskStatusResponse> Update(string id, TaskBusinessStatus status, string etag = "") =>
        await Partner.UpdateTaskStatusAsync(new UpdateTaskStatusRequest { Id = id, TaskBusinessStatus = status, Etag = etag }, deadline: Deadline);

    private async Task<RecordResultsResponse> Record(string requisitionId, bool final, params string[] ids) =>
        await Owner.RecordResultsAsync(new RecordResultsRequest
        {
            RequisitionId = requisitionId,
            ServiceRequestIds = { ids },
            Final = final,
            Cause = "results report r1 v1",
        }, deadline: Deadline);

    [Fact]
    public async Task RescheduleServiceRequests_ReopensOnlyAppointmentIssue_Once_AndOnlyForAService()
    {
        var serviceRequests = await CreateConfirmedAsync(Owner);
        var requisitionId = serviceRequests[0].RequisitionId;
        await Partner.UpdateTaskStatusAsync(new UpdateTaskStatusRequest { Id = serviceRequests[0].Id, TaskBusinessStatus = TaskBusinessStatus.AppointmentIssue }, deadline: Deadline);
        await Partner.UpdateTaskStatusAsync(new UpdateTaskStatusRequest { Id = serviceRequests[1].Id, TaskBusinessStatus = TaskBusinessStatus.ResultsIssue }, deadline: Deadline);

        var noReason = await Assert.ThrowsAsync<RpcException>(() => Owner.RescheduleServiceRequestsAsync(
            new RescheduleServiceRequestsRequest { RequisitionId = requisitionId }, deadline: Deadline).ResponseAsync);
        var partner = await Assert.ThrowsAsync<RpcException>(() => Partner.RescheduleServiceRequestsAsync(
            new RescheduleServiceRequestsRequest { RequisitionId = requisitionId, Reason = "rebooked" }, deadline: Deadline).ResponseAsync);
        var missing = await Assert.ThrowsAsync<RpcException>(() => Owner.RescheduleServiceRequestsAsync(
            new RescheduleServiceRequestsRequest { RequisitionId = Guid.NewGuid().ToString(), Reason = "rebooked" }, deadline: Deadline).ResponseAsync);
        var first = await Owner.RescheduleServiceRequestsAsync(
            new RescheduleServiceRequestsRequest { RequisitionId = requisitionId, Reason = "rebooked" }, deadline: Deadline);
        var repeat = await Owner.RescheduleServiceRequestsAsync(
            new RescheduleServiceRequestsRequest { RequisitionId = requisitionId, Reason = "rebooked" }, deadline: Deadline);

        Assert.Equal("reason", Assert.Single(noReason.GetDetail<BadRequest>()!.FieldViolations).Field);
        Assert.Equal(StatusCode.PermissionDenied, partner.StatusCode);
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        Assert.Equal([serviceRequests[0].Id], first.RescheduledIds);
        Assert.Equal([TaskBusinessStatus.OrderConfirmed, TaskBusinessStatus.ResultsIssue], first.ServiceRequests.Select(s => s.TaskBusinessStatus));
        Assert.Empty(repeat.RescheduledIds);
        Assert.Equal(first.ServiceRequests.Select(s => s.Etag), repeat.ServiceRequests.Select(s => s.Etag));
        var history = await Owner.GetServiceRequestHistoryAsync(new GetServiceRequestHistoryRequest { Id = serviceRequests[0].Id }, deadline: Deadline);
        Assert.Equal(("service:requisition", "rebooked", "rescheduled"), (history.Changes[^1].Actor, history.Changes[^1].Note, history.Changes[^1].Cause));
        var status = await Owner.BatchGetStatusAsync(new BatchGetStatusRequest { Ids = { serviceRequests[0].Id } }, deadline: Deadline);
        Assert.Equal(TaskBusinessStatus.OrderConfirmed, status.Statuses[0].TaskBusinessStatus);
    }

    [Fact]
    public async Task GetServiceRequestHistory_RescheduledOverAndOver_ComesInPagesWithEachChangeOnce()
    {
        var serviceRequest = (await CreateConfirmedAsync(Owner, count: 1))[0];
        const int cycles = 30;
        for (var i = 0; i < cycles; i++)
        {
            await Partner.UpdateTaskStatusAsync(new UpdateTaskStatusRequest
            {
                Id = serviceRequest.Id, TaskBusinessStatus = TaskBusinessStatus.AppointmentIssue, Note = $"cancelled {i} ".PadRight(1024, 'n'),
            }, deadline: Deadline);
            await Owner.RescheduleServiceRequestsAsync(
                new RescheduleServiceRequestsRequest { RequisitionId = serviceRequest.RequisitionId, Reason = $"rebooked {i} ".PadRight(1024, 'r') },
                deadline: Deadline);
        }

        // Its creation and two changes a cycle.
        const int changes = 1 + 2 * cycles;
        var first = await Owner.GetServiceRequestHistoryAsync(new GetServiceRequestHistoryRequest { Id = serviceRequest.Id }, deadline: Deadline);
        Assert.Equal(50, first.Changes.Count);
        Assert.NotEmpty(first.NextPageToken);

        var sequences = new List<long>();
        var request = new GetServiceRequestHistoryRequest { Id = serviceRequest.Id, PageSize = 7 };
        var pages = 0;
        do
        {
            var page = await Owner.GetServiceRequestHistoryAsync(request, deadline: Deadline);
            pages++;
            Assert.InRange(page.Changes.Count, 1, 7);
            Assert.True(page.Changes.Sum(c => c.CalculateSize()) <= LabMesh.Messaging.Storage.PageBudget.MaxBytes);
            sequences.AddRange(page.Changes.Select(c => c.Sequence));
            request.PageToken = page.NextPageToken;
        }
        while (request.PageToken.Length > 0 && pages < 20);

        Assert.Equal(Enumerable.Range(1, changes).Select(i => (long)i), sequences);
        Assert.Equal((changes + 6) / 7, pages);

        var badToken = await Assert.ThrowsAsync<RpcException>(() => Owner.GetServiceRequestHistoryAsync(
            new GetServiceRequestHistoryRequest { Id = serviceRequest.Id, PageToken = Messaging.Storage.PageToken.Encode("x") }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, badToken.StatusCode);
        Assert.Equal("page_token", Assert.Single(badToken.GetDetail<BadRequest>()!.FieldViolations).Field);
    }

    private async Task<ApplyOrderEventResponse> Apply(string requisitionId, string status, long eventId) =>
        await Owner.ApplyOrderEventAsync(new ApplyOrderEventRequest { RequisitionId = requisitionId, OrderStatus = status, OrderEventId = eventId }, deadline: Deadline);
}
