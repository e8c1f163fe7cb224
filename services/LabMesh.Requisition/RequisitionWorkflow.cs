using Google.Protobuf;
using Grpc.Core;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Requisition.Domain;
using LabMesh.Messaging.Caching;
using LabMesh.Core.Errors;
using LabMesh.Messaging.Events;
using LabMesh.Security.Identity;
using LabMesh.ServiceDefaults.Peers;
using LabMesh.Core.Validation;

namespace LabMesh.Requisition;

/// <summary>
/// The Requisition service's operations across its store and the ServiceRequest service.
/// </summary>
/// <remarks>
/// Creating a requisition spans two services, so it runs in three idempotent steps keyed by the
/// caller's request_id: (1) insert the requisition uncommitted (invisible); (2) create its
/// service requests, pending (invisible), in the ServiceRequest service; (3) commit the
/// requisition with its events in one local transaction, then confirm the service requests. A
/// failure at any step leaves nothing visible, and the caller's retry with the same request_id
/// resumes where the first attempt stopped: it never makes a second requisition or second
/// service requests. Once committed, what the ServiceRequest service still has to hear (the
/// confirm, the latest order event) is recorded on the row and pushed by
/// <see cref="ServiceRequestSync"/> until it lands (or, refused again and again, is parked for an admin).
/// </remarks>
public sealed partial class RequisitionWorkflow(
    RequisitionStore store,
    ServiceRequestGateway serviceRequests,
    IStatusCache cache,
    [FromKeyedServices(RequisitionStore.ServiceName)] OutboxRelay relay,
    ServiceRequestSync sync,
    [FromKeyedServices(RequisitionStore.ServiceName)] PeerWork work,
    LifecycleRefresher lifecycles,
    ILogger<RequisitionWorkflow> logger)
{
    /// <summary>The status cache kind: keys are <c>labmesh:status:requisition:{id}</c>.</summary>
    public const string CacheKind = "requisition";

    public async Task<(Contracts.Requisition.V1.Requisition Requisition, bool Created)> CreateAsync(
        Caller caller, CreateRequisitionRequest request, DateTime deadline, CancellationToken cancellationToken)
    {
        var hash = RepeatRequests.Hash(request);
        var record = await store.FindByRequestAsync(caller.TeamId, request.RequestId, cancellationToken);
        if (record is not null)
        {
            EnsureSameOrder(record, request.RequestId, hash);
        }

        if (record is { Committed: true })
        {
            await EnsureConfirmedAsync(caller, record, deadline, cancellationToken);
            return (await ReadAsync(caller, record, deadline, cancellationToken), false);
        }

        if (!string.IsNullOrEmpty(request.ReplacesRequisitionId))
        {
            var replaced = await store.GetAsync(caller.TeamId, request.ReplacesRequisitionId, cancellationToken)
                ?? throw new InvalidArgumentException("replaces_requisition_id", "names no requisition of this team.");
            Replacements.Check(replaced, await serviceRequests.ListForRequisitionAsync(caller, replaced.Id, deadline, cancellationToken), request);
        }

        var order = new Contracts.Requisition.V1.Requisition
        {
            Patient = request.Patient,
            OrderingProvider = request.OrderingProvider,
            Lab = request.Lab,
            Modality = request.Modality,
            ReplacesRequisitionId = request.ReplacesRequisitionId,
        };
        order.Tests.AddRange(request.Tests);
        if (record is null)
        {
            // A concurrent twin may have inserted first: then its row comes back, and must be this order.
            record = await store.InsertUncommittedAsync(caller.TeamId, request.RequestId, hash, order, cancellationToken);
            EnsureSameOrder(record, request.RequestId, hash);
        }

        var created = await serviceRequests.CreateAsync(caller, record.Id, request.Tests.Select(t => new NewServiceRequest
        {
            Code = t.Code,
            TaskDescription = t.Description,
            PartnerId = t.PartnerId,
        }), deadline, cancellationToken);

        var (committed, changed) = await store.CommitAsync(caller.TeamId, record.Id, request.Place, LineItems(created), caller.Actor, cancellationToken);
        if (changed)
        {
            await AfterCommitAsync(committed);
            if (committed.Order.ReplacesRequisitionId is { Length: > 0 } replacedId &&
                await store.GetAsync(caller.TeamId, replacedId, CancellationToken.None) is { } replaced)
            {
                // The replaced requisition changed too (it carries the link now): its cached etag moves with it.
                await cache.SetAsync(CacheKind, replaced.Id, replaced.Version, MapStatus(replaced).ToByteArray(), CancellationToken.None);
            }
        }

        await EnsureConfirmedAsync(caller, committed, deadline, cancellationToken);
        return (await WithReplacementsAsync(caller, Map(committed, created), cancellationToken), changed);
    }

    public async Task<Contracts.Requisition.V1.Requisition> PlaceAsync(
        Caller caller, string id, string? etag, DateTime deadline, CancellationToken cancellationToken)
    {
        var existing = await store.GetAsync(caller.TeamId, id, cancellationToken) ?? throw new NotFoundException("requisition", id);
        var serviceRequestList = await serviceRequests.ListForRequisitionAsync(caller, id, deadline, cancellationToken);
        var placed = await store.PlaceAsync(caller.TeamId, existing.Id, etag, LineItems(serviceRequestList), caller.Actor, cancellationToken);
        await AfterCommitAsync(placed);
        return Map(placed, serviceRequestList);
    }

    /// <summary>
    /// Records an order event, then tells its service requests (consistency table). Once the event has
    /// committed the answer is the committed requisition, whatever the ServiceRequest service says: what it
    /// did not take is left to <see cref="ServiceRequestSync"/>, and when it cannot be read the requisition
    /// comes back without its service requests.
    /// </summary>
    public async Task<Contracts.Requisition.V1.Requisition> RecordEventAsync(
        Caller caller, string id, string? etag, string status, string note, DateTime deadline, CancellationToken cancellationToken)
    {
        var (record, changed) = await store.RecordEventAsync(caller.TeamId, id, etag, status, note, caller.Actor, cancellationToken);
        if (changed)
        {
            await AfterCommitAsync(record);
            try
            {
                var applied = await serviceRequests.ApplyOrderEventAsync(caller, record.Id, record.SubStatus, record.LastEventId, deadline, cancellationToken);
                await store.MarkServiceRequestsSyncedAsync(record.Id, record.LastEventId, CancellationToken.None);
                // Earlier order events the sync worker may have been retrying (or parked) are overtaken by this one.
                await work.SucceededAsync(ServiceRequestSync.WorkKind, record.Id, record.LastEventId, CancellationToken.None);
                // The event moved the service requests: the lifecycle derived with their new statuses is part of this change.
                (record, _) = await lifecycles.RefreshAsync(record, applied, CancellationToken.None);
            }
            catch (RpcException ex)
            {
                LogSyncDeferred(logger, record.Id, ex.StatusCode);
                sync.Nudge();
                return Map(record, null);
            }
        }

        try
        {
            return await ReadAsync(caller, record, deadline, cancellationToken);
        }
        catch (RpcException ex)
        {
            LogServiceRequestsUnread(logger, record.Id, ex.StatusCode);
            return Map(record, null);
        }
    }

    /// <summary>
    /// The owner's reschedule after an appointment issue (<see cref="Reschedules.Check"/>): the ServiceRequest service
    /// reopens the service requests in APPOINTMENT_ISSUE, with the owner and the reason in their history. The
    /// requisition itself does not change (its order events stay seed 004's; the lifecycle depends on no
    /// reopened status), so its etag stays. A retry is harmless: it reopens nothing more.
    /// </summary>
    public async Task<(Contracts.Requisition.V1.Requisition Requisition, IReadOnlyList<string> Rescheduled)> RescheduleAsync(
        Caller caller, string id, string? etag, string reason, DateTime deadline, CancellationToken cancellationToken)
    {
        var record = await store.GetAsync(caller.TeamId, id, cancellationToken) ?? throw new NotFoundException("requisition", id);
        if (!string.IsNullOrEmpty(etag) && etag != record.Etag)
        {
            throw new StaleEtagException("requisition", id);
        }

        var before = await serviceRequests.ListForRequisitionAsync(caller, record.Id, deadline, cancellationToken);
        Reschedules.Check(record, before);
        var response = await serviceRequests.RescheduleAsync(caller, record.Id, reason, deadline, cancellationToken);
        var list = response.ServiceRequests.OrderBy(s => s.Line).ToList();
        return (Map(record with { Lifecycle = LifecycleRefresher.Derive(record, list) }, list), response.RescheduledIds);
    }

    public async Task<Contracts.Requisition.V1.Requisition> GetAsync(Caller caller, string id, DateTime deadline, CancellationToken cancellationToken)
    {
        var record = await store.GetAsync(caller.TeamId, id, cancellationToken) ?? throw new NotFoundException("requisition", id);
        return await ReadAsync(caller, record, deadline, cancellationToken);
    }

    /// <summary>
    /// Records a results milestone, then refreshes the lifecycle view and the status cache. The lifecycle is derived
    /// from <paramref name="known"/> (every service request of the requisition, as the ServiceRequest service answered the
    /// results that moved this milestone) when given and this call recorded the milestone; otherwise (none given, or a
    /// repeat or late milestone, whose statuses may be older than the stored ones) they are read from the ServiceRequest service.
    /// </summary>
    public async Task<(RequisitionStatusView Status, bool Changed)> RecordResultsStageAsync(
        Caller caller, string id, LifecycleStatus stage, long sequence, IEnumerable<Contracts.ServiceRequest.V1.ServiceRequest>? known,
        DateTime deadline, CancellationToken cancellationToken)
    {
        var (record, changed) = await store.RecordResultsStageAsync(caller.TeamId, id, stage, sequence, cancellationToken);
        var list = changed && known is not null
            ? known.OrderBy(s => s.Line).ToList()
            : await serviceRequests.ListForRequisitionAsync(caller, record.Id, deadline, cancellationToken);
        var (refreshed, lifecycleChanged) = await lifecycles.RefreshAsync(record, list, cancellationToken);
        record = refreshed;
        if (changed && !lifecycleChanged)
        {
            await cache.SetAsync(CacheKind, record.Id, record.Version, MapStatus(record).ToByteArray(), CancellationToken.None);
        }

        return (MapStatus(record), changed);
    }

    /// <summary>The requisition's statuses: the cache first, the store on a miss (which fills the cache).</summary>
    public async Task<RequisitionStatusView> GetStatusAsync(Caller caller, string id, CancellationToken cancellationToken)
    {
        var cached = (await cache.GetManyAsync(CacheKind, [id], cancellationToken))[0];
        if (cached is not null)
        {
            var view = RequisitionStatusView.Parser.ParseFrom(cached);
            return view.TeamId == caller.TeamId ? view : throw new NotFoundException("requisition", id);
        }

        var record = await store.GetAsync(caller.TeamId, id, cancellationToken) ?? throw new NotFoundException("requisition", id);
        var fresh = MapStatus(record);
        await cache.SetAsync(CacheKind, record.Id, record.Version, fresh.ToByteArray(), CancellationToken.None);
        return fresh;
    }

    private async Task EnsureConfirmedAsync(Caller caller, RequisitionRecord record, DateTime deadline, CancellationToken cancellationToken)
    {
        if (record.ServiceRequestsConfirmed)
        {
            return;
        }

        try
        {
            await serviceRequests.ConfirmAsync(caller, record.Id, deadline, cancellationToken);
            await store.MarkServiceRequestsConfirmedAsync(record.Id, CancellationToken.None);
        }
        catch (RpcException ex) when (PeerErrors.IsTransient(ex))
        {
            // The requisition is committed and reads show its service requests (pending ones
            // included); partners see them once the sync worker's confirm lands.
            LogSyncDeferred(logger, record.Id, ex.StatusCode);
            sync.Nudge();
        }
    }

    /// <summary>
    /// A read: the requisition with its service requests, and the lifecycle view derived from what was just read
    /// (a partner's update of a service request shows at once). Nothing is stored: the stored view, the status
    /// cache and the etag move only with a change (<see cref="LifecycleRefresher"/>).
    /// </summary>
    private async Task<Contracts.Requisition.V1.Requisition> ReadAsync(
        Caller caller, RequisitionRecord record, DateTime deadline, CancellationToken cancellationToken)
    {
        var list = await serviceRequests.ListForRequisitionAsync(caller, record.Id, deadline, cancellationToken);
        return await WithReplacementsAsync(caller, Map(record with { Lifecycle = LifecycleRefresher.Derive(record, list) }, list),
            cancellationToken);
    }

    /// <summary>Fills in what replaces the requisition and its replacement chain (both ways, oldest first).</summary>
    private async Task<Contracts.Requisition.V1.Requisition> WithReplacementsAsync(
        Caller caller, Contracts.Requisition.V1.Requisition requisition, CancellationToken cancellationToken)
    {
        var (replacedBy, chain) = await store.GetReplacementsAsync(caller.TeamId, requisition.Id, cancellationToken);
        requisition.ReplacedByRequisitionIds.AddRange(replacedBy);
        requisition.ReplacementChain.AddRange(chain);
        return requisition;
    }

    private async Task AfterCommitAsync(RequisitionRecord record)
    {
        await cache.SetAsync(CacheKind, record.Id, record.Version, MapStatus(record).ToByteArray(), CancellationToken.None);
        relay.Nudge();
    }

    public static Contracts.Requisition.V1.Requisition Map(RequisitionRecord record, IEnumerable<Contracts.ServiceRequest.V1.ServiceRequest>? serviceRequests)
    {
        var requisition = record.Order.Clone();
        requisition.Id = record.Id;
        requisition.TeamId = record.TeamId;
        requisition.RequestId = record.RequestId;
        requisition.Status = record.Status;
        requisition.SubStatus = record.SubStatus;
        requisition.LifecycleStatus = record.Lifecycle;
        requisition.Etag = record.Etag;
        requisition.CreateTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(record.CreateTime);
        requisition.UpdateTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(record.UpdateTime);
        if (record.PlaceTime is { } placed)
        {
            requisition.PlaceTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(placed);
        }

        requisition.Events.AddRange(record.Events);
        if (serviceRequests is not null)
        {
            requisition.ServiceRequests.AddRange(serviceRequests);
        }

        return requisition;
    }

    public static RequisitionStatusView MapStatus(RequisitionRecord record) => new()
    {
        Id = record.Id,
        Status = record.Status,
        SubStatus = record.SubStatus,
        LifecycleStatus = record.Lifecycle,
        Etag = record.Etag,
        UpdateTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(record.UpdateTime),
        TeamId = record.TeamId,
    };

    private static void EnsureSameOrder(RequisitionRecord record, string requestId, string hash) =>
        RepeatRequests.EnsureSame(record.RequestHash, hash, "requisition", record.Id, "requisition", requestId);

    private static List<LineItem> LineItems(IEnumerable<Contracts.ServiceRequest.V1.ServiceRequest> serviceRequests) =>
        serviceRequests.Select(s => new LineItem { ServiceRequestId = s.Id, Code = s.Code, Type = "labs" }).ToList();

    [LoggerMessage(Level = LogLevel.Warning, Message = "Requisition {RequisitionId}: the ServiceRequest service did not take the change ({Status}); the sync worker will retry")]
    private static partial void LogSyncDeferred(ILogger logger, string requisitionId, StatusCode status);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Requisition {RequisitionId}: its service requests could not be read ({Status}); answered without them")]
    private static partial void LogServiceRequestsUnread(ILogger logger, string requisitionId, StatusCode status);
}
