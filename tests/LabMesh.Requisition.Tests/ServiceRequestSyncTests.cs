using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using Grpc.Core;
using LabMesh.Contracts.Common.V1;
using LabMesh.Testing;

namespace LabMesh.Requisition.Tests;

/// <summary>
/// The sync worker against a ServiceRequest service that refuses (a real host whose store lost the
/// requisition's service requests) and one that is down: attempts, backoff, parking, and the others going past.
/// </summary>
public sealed class ServiceRequestSyncTests
{
    private static readonly Dictionary<string, string?> QuickParking = new()
    {
        ["LabMesh:PeerWork:ParkAfter"] = "2",
        ["LabMesh:PeerWork:FirstBackoff"] = "00:00:00.050",
        ["LabMesh:PeerWork:MaxBackoff"] = "00:00:00.100",
        // One item a pass: a parked item that were still selected would hold back every other one.
        ["LabMesh:PeerWork:BatchSize"] = "1",
    };

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task SyncWorker_LandingAnOrderEventLater_StoresTheLifecycleItsServiceRequestsGive(Backend backend)
    {
        await using var mesh = await Mesh.StartAsync(backend).WaitAsync(TimeSpan.FromSeconds(120));
        var team = "team-" + Guid.NewGuid().ToString("N")[..8];
        var client = mesh.RequisitionClient(team);
        var created = (await client.CreateRequisitionAsync(RequisitionServiceTests.NewOrder(), deadline: Deadline)).Requisition;
        await mesh.ServiceRequestClient(team, "partner-a").UpdateTaskStatusAsync(new UpdateTaskStatusRequest
        {
            Id = created.ServiceRequests[0].Id, TaskBusinessStatus = TaskBusinessStatus.PartialResultsReady,
        }, deadline: Deadline);

        // The order event commits while the ServiceRequest service is down: the answer has no service requests to derive from.
        await mesh.StopServiceRequestsAsync();
        RecordOrderEventResponse recorded;
        try
        {
            recorded = await client.RecordOrderEventAsync(
                new RecordOrderEventRequest { Id = created.Id, Status = "received.testkit.requisition_created" }, deadline: Deadline);
        }
        finally
        {
            await mesh.RestartServiceRequestsAsync();
        }

        Assert.Equal(LifecycleStatus.Purchased, recorded.Requisition.LifecycleStatus);
        // When the worker lands it, the change derives the lifecycle with the service requests it left.
        var status = await Eventually.MatchAsync(
            async () => (await client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = created.Id }, deadline: Deadline)).Status,
            s => s.LifecycleStatus == LifecycleStatus.PartialResults, TimeSpan.FromSeconds(20), "the sync worker to store the lifecycle");
        Assert.NotEqual(recorded.Requisition.Etag, status.Etag);
        var read = (await client.GetRequisitionAsync(new GetRequisitionRequest { Id = created.Id }, deadline: Deadline)).Requisition;
        Assert.Equal((LifecycleStatus.PartialResults, status.Etag), (read.LifecycleStatus, read.Etag));
        mesh.Requisitions.Logs.AssertNoErrors();
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task SyncWorker_ParksARequisitionThePeerRefuses_AndTheOthersGoPastIt(Backend backend)
    {
        using var parked = new CounterCapture("labmesh.sync.parked", "labmesh.work.kind");
        await using var mesh = await Mesh.StartAsync(backend, requisitionSettings: QuickParking).WaitAsync(TimeSpan.FromSeconds(120));
        var team = "team-" + Guid.NewGuid().ToString("N")[..8];
        var client = mesh.RequisitionClient(team);
        var refused = (await client.CreateRequisitionAsync(RequisitionServiceTests.NewOrder(), deadline: Deadline)).Requisition;

        // The ServiceRequest service comes back without its store: it refuses refused's order events (NOT_FOUND) for good.
        await mesh.RestartServiceRequestsWithNewStoreAsync();
        var recorded = await client.RecordOrderEventAsync(
            new RecordOrderEventRequest { Id = refused.Id, Status = "received.testkit.requisition_created" }, deadline: Deadline);
        Assert.Equal("received.testkit.requisition_created", recorded.Requisition.SubStatus);

        await Eventually.HoldsAsync(
            () => mesh.Requisitions.Logs.Records.Any(r => r.Message.StartsWith($"Parked service_requests {refused.Id} ", StringComparison.Ordinal)),
            TimeSpan.FromSeconds(20), "the parked log line");
        var item = Assert.Single((await client.ListParkedWorkAsync(new ListParkedWorkRequest(), deadline: Deadline)).ParkedWork);
        Assert.Equal((ServiceRequestSync.WorkKind, refused.Id, 2, "NOT_FOUND"), (item.Kind, item.ItemId, item.Refusals, item.LastError));
        Assert.Equal(recorded.Requisition.Events[^1].Id, item.ItemVersion);
        Assert.Empty((await mesh.RequisitionClient("team-other").ListParkedWorkAsync(new ListParkedWorkRequest(), deadline: Deadline)).ParkedWork);
        Assert.True(parked.Sum(ServiceRequestSync.WorkKind) >= 1);

        // Another requisition whose order event waits for the worker (the peer was down) is brought in line past it.
        var other = (await client.CreateRequisitionAsync(RequisitionServiceTests.NewOrder(), deadline: Deadline)).Requisition;
        await mesh.StopServiceRequestsAsync();
        try
        {
            await client.RecordOrderEventAsync(
                new RecordOrderEventRequest { Id = other.Id, Status = "received.testkit.requisition_created" }, deadline: Deadline);
        }
        finally
        {
            await mesh.RestartServiceRequestsAsync();
        }

        await Eventually.MatchAsync(
            async () => (await mesh.ServiceRequestClient(team).ListServiceRequestsAsync(
                new ListServiceRequestsRequest { RequisitionId = other.Id }, deadline: Deadline)).ServiceRequests,
            list => list.Count == 2 && list.All(s => s.TaskBusinessStatus == TaskBusinessStatus.OrderConfirmed),
            TimeSpan.FromSeconds(20), "the sync worker to bring the other requisition in line");

        // Retried by an admin, the parked one is tried again (and, still refused, parked again).
        var retry = new RetryParkedWorkRequest { Kind = ServiceRequestSync.WorkKind, ItemId = refused.Id };
        await client.RetryParkedWorkAsync(retry, deadline: Deadline);
        await Eventually.MatchAsync(
            async () => (await client.ListParkedWorkAsync(new ListParkedWorkRequest(), deadline: Deadline)).ParkedWork,
            list => list.Count == 1 && list[0].Attempts > item.Attempts,
            TimeSpan.FromSeconds(20), "the retried item to be tried and parked again");
        mesh.Requisitions.Logs.AssertNoErrors();
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    public async Task RetryParkedWork_BadKindOrNoItem_IsInvalidArgument_NothingParked_IsNotFound_AndOnlyAdminsMayCall(Backend backend)
    {
        await using var mesh = await Mesh.StartAsync(backend).WaitAsync(TimeSpan.FromSeconds(120));
        var team = "team-" + Guid.NewGuid().ToString("N")[..8];
        var client = mesh.RequisitionClient(team);

        var kind = await Assert.ThrowsAsync<RpcException>(() => client.RetryParkedWorkAsync(
            new RetryParkedWorkRequest { Kind = "report_statuses", ItemId = "x" }, deadline: Deadline).ResponseAsync);
        Assert.Equal((StatusCode.InvalidArgument, "kind"), (kind.StatusCode, Assert.Single(kind.GetDetail<Google.Rpc.BadRequest>()!.FieldViolations).Field));
        var item = await Assert.ThrowsAsync<RpcException>(() => client.RetryParkedWorkAsync(
            new RetryParkedWorkRequest { Kind = ServiceRequestSync.WorkKind }, deadline: Deadline).ResponseAsync);
        Assert.Equal((StatusCode.InvalidArgument, "item_id"), (item.StatusCode, Assert.Single(item.GetDetail<Google.Rpc.BadRequest>()!.FieldViolations).Field));
        var missing = await Assert.ThrowsAsync<RpcException>(() => client.RetryParkedWorkAsync(
            new RetryParkedWorkRequest { Kind = ServiceRequestSync.WorkKind, ItemId = Guid.NewGuid().ToString() }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        var size = await Assert.ThrowsAsync<RpcException>(() => client.ListParkedWorkAsync(
            new ListParkedWorkRequest { PageSize = 501 }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, size.StatusCode);

        var channel = mesh.Requisitions.CreateChannel();
        var clinician = new RequisitionService.RequisitionServiceClient(TestCaller.InvokerAs(channel, team, LabMesh.Security.Identity.CallerRole.Clinician));
        var denied = await Assert.ThrowsAsync<RpcException>(() => clinician.ListParkedWorkAsync(new ListParkedWorkRequest(), deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        channel.Dispose();
        mesh.Requisitions.Logs.AssertNoErrors();
    }
}
