using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Security.Audit;
using LabMesh.Messaging.Caching;
using LabMesh.Core.Errors;
using LabMesh.Messaging.Events;
using LabMesh.Security.Identity;
using LabMesh.Messaging.Storage;
using LabMesh.Core.Validation;

namespace LabMesh.ServiceRequest;

/// <summary>
/// <c>labmesh.servicerequest.v1.ServiceRequestService</c>: maps proto to the store and back. The
/// rules live in <see cref="Domain.TaskStatusMachine"/>; errors are domain exceptions that the
/// service-wide interceptor turns into statuses.
/// </summary>
[AuditStore(ServiceRequestStore.ServiceName)]
public sealed class ServiceRequestApi(
    ServiceRequestStore store,
    IStatusCache cache,
    [FromKeyedServices(ServiceRequestStore.ServiceName)] OutboxRelay relay) : ServiceRequestService.ServiceRequestServiceBase
{
    /// <summary>The status cache kind: keys are <c>labmesh:status:servicerequest:{id}</c>.</summary>
    public const string CacheKind = "servicerequest";

    private const int MaxBatch = 500;

    // The partner rule is the authorization interceptor's (SECURITY.md): it refuses a partner another's service request,
    // pending or not, before a handler runs, and hands the handlers that name one (PartnerRule.AssignedServiceRequest)
    // the partner scope it decided (GetPartnerScope). They read with that scope and decide nothing about partners: an id
    // unknown at the interceptor's check and confirmed for another partner before the read is still NOT_FOUND.

    [Allow(Roles.Everyone, Partner = PartnerRule.AssignedServiceRequest)]
    [Reads]
    public override async Task<GetServiceRequestResponse> GetServiceRequest(GetServiceRequestRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var id = Ids.Require(request.Id, "id");
        var record = await store.GetAsync(caller.TeamId, id, context.GetPartnerScope(), context.CancellationToken);
        return record is not null
            ? new GetServiceRequestResponse { ServiceRequest = Map(record) }
            : throw new NotFoundException("service request", id);
    }

    [Allow(Roles.Everyone, Partner = PartnerRule.OwnServiceRequestList)]
    [Reads]
    public override async Task<ListServiceRequestsResponse> ListServiceRequests(ListServiceRequestsRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var pageSize = PageToken.Size(request.PageSize);
        var after = PageToken.Decode(request.PageToken);
        if (request.IncludePending && string.IsNullOrEmpty(request.RequisitionId))
        {
            throw new InvalidArgumentException("requisition_id", "is required with include_pending.");
        }

        var filter = new ServiceRequestFilter(request.RequisitionId, request.PartnerId, request.Status, request.TaskBusinessStatus,
            request.Code, request.IncludePending);
        var records = await store.ListAsync(caller.TeamId, filter, after, pageSize, context.CancellationToken);
        var response = new ListServiceRequestsResponse();
        response.ServiceRequests.AddRange(records.Take(pageSize).Select(Map));
        response.NextPageToken = PageToken.Next(records, pageSize, r => r.Id);

        return response;
    }

    [Allow(Roles.Service | Roles.Partner, Partner = PartnerRule.AssignedServiceRequest)]
    [Changes("ServiceRequest", "id")]
    public override async Task<UpdateTaskStatusResponse> UpdateTaskStatus(UpdateTaskStatusRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var id = Ids.Require(request.Id, "id");
        if (request.TaskBusinessStatus == TaskBusinessStatus.Unspecified)
        {
            throw new InvalidArgumentException("task_business_status", "is required: one of ORDER_CONFIRMED, APPOINTMENT_ATTENDED, PARTIAL_RESULTS_READY, FULL_RESULTS_READY, APPOINTMENT_ISSUE, RESULTS_ISSUE, ORDER_ISSUE.");
        }

        if (request.HasTaskDescription && request.TaskDescription.Length > 1024)
        {
            throw new InvalidArgumentException("task_description", "must be at most 1024 characters.");
        }

        var change = await store.UpdateTaskStatusAsync(caller.TeamId, id, context.GetPartnerScope(), request.Etag, request.TaskBusinessStatus,
            request.HasTaskDescription ? request.TaskDescription : null, Truncate(request.Note), caller.Actor, context.CancellationToken);
        await AfterCommitAsync([change]);
        return new UpdateTaskStatusResponse { ServiceRequest = Map(change.Record), Changed = change.Changed };
    }

    [Allow(Roles.Service | Roles.Clinician | Roles.Admin)]
    [Changes("ServiceRequest", "id")]
    public override async Task<RevokeServiceRequestResponse> RevokeServiceRequest(RevokeServiceRequestRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var id = Ids.Require(request.Id, "id");
        var change = await store.RevokeAsync(caller.TeamId, id, request.Etag, Truncate(request.Reason), caller.Actor, context.CancellationToken);
        await AfterCommitAsync([change]);
        return new RevokeServiceRequestResponse { ServiceRequest = Map(change.Record), Changed = change.Changed };
    }

    [Allow(Roles.Everyone, Partner = PartnerRule.OwnServiceRequestBatch)]
    [Reads]
    public override async Task<BatchGetStatusResponse> BatchGetStatus(BatchGetStatusRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        if (request.Ids.Count is 0 or > MaxBatch)
        {
            throw new InvalidArgumentException("ids", $"must hold 1 to {MaxBatch} ids.");
        }

        var ids = request.Ids.Select((id, i) => Ids.Require(id, $"ids[{i}]")).ToList();
        var found = new Dictionary<string, ServiceRequestStatusView>(StringComparer.Ordinal);
        var cached = await cache.GetManyAsync(CacheKind, ids, context.CancellationToken);
        var misses = new List<string>();
        for (var i = 0; i < ids.Count; i++)
        {
            var view = cached[i] is { } bytes ? ServiceRequestStatusView.Parser.ParseFrom(bytes) : null;
            if (view is null)
            {
                misses.Add(ids[i]);
            }
            else if (view.TeamId == caller.TeamId)
            {
                found[ids[i]] = view;
            }
        }

        if (misses.Count > 0)
        {
            // Read through: the store answers what the cache did not, and fills the cache.
            foreach (var record in await store.GetManyAsync(caller.TeamId, misses.Distinct().ToList(), context.CancellationToken))
            {
                var view = MapStatus(record);
                found[record.Id] = view;
                await cache.SetAsync(CacheKind, record.Id, record.Version, view.ToByteArray(), CancellationToken.None);
            }
        }

        var response = new BatchGetStatusResponse();
        foreach (var id in ids)
        {
            if (found.TryGetValue(id, out var view))
            {
                response.Statuses.Add(view);
            }
            else
            {
                response.NotFoundIds.Add(id);
            }
        }

        return response;
    }

    [Allow(Roles.Everyone, Partner = PartnerRule.AssignedServiceRequest)]
    [Reads]
    public override async Task<GetServiceRequestHistoryResponse> GetServiceRequestHistory(GetServiceRequestHistoryRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        // The page size first: a List RPC's page_size above its cap is INVALID_ARGUMENT naming it whatever else is wrong.
        var size = PageToken.Size(request.PageSize);
        var id = Ids.Require(request.Id, "id");
        var after = PageToken.Decode(request.PageToken) is { } token
            ? long.TryParse(token, NumberStyles.None, CultureInfo.InvariantCulture, out var sequence) ? sequence
                : throw new InvalidArgumentException("page_token", "is not a page token returned by GetServiceRequestHistory.")
            : 0;
        var changes = await store.GetHistoryAsync(caller.TeamId, id, context.GetPartnerScope(), after, size + 1, context.CancellationToken);
        var response = new GetServiceRequestHistoryResponse();
        // Reschedules make a history grow without end: a page also stops at PageBudget.MaxBytes (at least one change), so it
        // stays under the 4 MiB message limit whatever its page size.
        var budget = new PageBudget();
        foreach (var change in changes.Take(size))
        {
            if (!budget.TryAdd(change))
            {
                break;
            }

            response.Changes.Add(change);
        }

        response.NextPageToken = response.Changes.Count < changes.Count
            ? PageToken.Encode(response.Changes[^1].Sequence.ToString(CultureInfo.InvariantCulture)) : "";
        return response;
    }

    // The batch calls of the Requisition and ResultsInterpretation services: services only, and the requisition whose
    // service requests they change is their audit target.
    [Allow(Roles.Service)]
    [Changes("Requisition", "requisition_id")]
    public override async Task<CreateServiceRequestsResponse> CreateServiceRequests(CreateServiceRequestsRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var requisitionId = Ids.Require(request.RequisitionId, "requisition_id");
        var violations = new List<FieldViolation>();
        if (request.ServiceRequests.Count is 0 or > 50)
        {
            violations.Add(new FieldViolation("service_requests", "must hold 1 to 50 service requests."));
        }

        for (var i = 0; i < request.ServiceRequests.Count; i++)
        {
            var item = request.ServiceRequests[i];
            if (!TestCodes.IsValid(item.Code))
            {
                violations.Add(new FieldViolation($"service_requests[{i}].code", TestCodes.Rule));
            }

            if (string.IsNullOrWhiteSpace(item.PartnerId) || item.PartnerId.Length > 64)
            {
                violations.Add(new FieldViolation($"service_requests[{i}].partner_id", "is required (at most 64 characters)."));
            }

            if (item.TaskDescription.Length > 1024)
            {
                violations.Add(new FieldViolation($"service_requests[{i}].task_description", "must be at most 1024 characters."));
            }
        }

        if (violations.Count > 0)
        {
            throw new InvalidArgumentException(violations);
        }

        var records = await store.CreateForRequisitionAsync(caller.TeamId, requisitionId, request.ServiceRequests, caller.Actor, context.CancellationToken);
        var response = new CreateServiceRequestsResponse();
        response.ServiceRequests.AddRange(records.Select(Map));
        return response;
    }

    [Allow(Roles.Service)]
    [Changes("Requisition", "requisition_id")]
    public override async Task<ConfirmServiceRequestsResponse> ConfirmServiceRequests(ConfirmServiceRequestsRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var requisitionId = Ids.Require(request.RequisitionId, "requisition_id");
        var changes = await store.ConfirmAsync(caller.TeamId, requisitionId, caller.Actor, context.CancellationToken);
        await AfterCommitAsync(changes);
        var response = new ConfirmServiceRequestsResponse();
        response.ServiceRequests.AddRange(changes.Select(c => Map(c.Record)));
        return response;
    }

    [Allow(Roles.Service)]
    [Changes("Requisition", "requisition_id")]
    public override async Task<ApplyOrderEventResponse> ApplyOrderEvent(ApplyOrderEventRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var requisitionId = Ids.Require(request.RequisitionId, "requisition_id");
        if (string.IsNullOrEmpty(request.OrderStatus) || request.OrderStatus.Count(c => c == '.') != 2)
        {
            throw new InvalidArgumentException("order_status", "must be a namespaced order status, e.g. \"completed.testkit.completed\".");
        }

        if (request.OrderEventId <= 0)
        {
            throw new InvalidArgumentException("order_event_id", "must be positive.");
        }

        var changes = await store.ApplyOrderEventAsync(caller.TeamId, requisitionId, request.OrderStatus, request.OrderEventId, caller.Actor,
            context.CancellationToken);
        await AfterCommitAsync(changes);
        var response = new ApplyOrderEventResponse();
        response.ServiceRequests.AddRange(changes.Select(c => Map(c.Record)));
        return response;
    }

    [Allow(Roles.Service)]
    [Changes("Requisition", "requisition_id")]
    public override async Task<RecordResultsResponse> RecordResults(RecordResultsRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var requisitionId = Ids.Require(request.RequisitionId, "requisition_id");
        if (request.ServiceRequestIds.Count is 0 or > MaxBatch)
        {
            throw new InvalidArgumentException("service_request_ids", $"must name 1 to {MaxBatch} service requests.");
        }

        var ids = request.ServiceRequestIds.Distinct(StringComparer.Ordinal).ToList();
        var (changes, all) = await store.ApplyResultsAsync(caller.TeamId, requisitionId, ids, request.Final,
            string.IsNullOrEmpty(request.Cause) ? "results" : request.Cause, caller.Actor, context.CancellationToken);
        await AfterCommitAsync(changes);
        var byId = changes.ToDictionary(c => c.Record.Id, c => c.Record, StringComparer.Ordinal);
        var response = new RecordResultsResponse();
        response.ServiceRequests.AddRange(request.ServiceRequestIds.Select(id => Map(byId[id])));
        response.RequisitionServiceRequests.AddRange(all.Select(Map));
        return response;
    }

    [Allow(Roles.Service)]
    [Changes("Requisition", "requisition_id")]
    public override async Task<RescheduleServiceRequestsResponse> RescheduleServiceRequests(
        RescheduleServiceRequestsRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var requisitionId = Ids.Require(request.RequisitionId, "requisition_id");
        if (string.IsNullOrWhiteSpace(request.Reason))
        {
            throw new InvalidArgumentException("reason", "is required: why the owner reschedules (kept in the history).");
        }

        // The history names who decided: the owner the Requisition service calls for, not the service itself.
        var changes = await store.RescheduleAsync(caller.TeamId, requisitionId, Truncate(request.Reason), caller.OnBehalfOf ?? caller.Actor,
            context.CancellationToken);
        await AfterCommitAsync(changes);
        var response = new RescheduleServiceRequestsResponse();
        response.ServiceRequests.AddRange(changes.Select(c => Map(c.Record)));
        response.RescheduledIds.AddRange(changes.Where(c => c.Changed).Select(c => c.Record.Id));
        return response;
    }

    /// <summary>After a commit: the new statuses go to the cache, and the relay is woken for the events.</summary>
    private async Task AfterCommitAsync(IEnumerable<Change> changes)
    {
        var any = false;
        foreach (var change in changes.Where(c => c.Changed && !c.Record.Pending))
        {
            any = true;
            await cache.SetAsync(CacheKind, change.Record.Id, change.Record.Version, MapStatus(change.Record).ToByteArray(), CancellationToken.None);
        }

        if (any)
        {
            relay.Nudge();
        }
    }

    public static LabMesh.Contracts.ServiceRequest.V1.ServiceRequest Map(ServiceRequestRecord record) => new()
    {
        Id = record.Id,
        RequisitionId = record.RequisitionId,
        TeamId = record.TeamId,
        Status = record.Status,
        Code = record.Code,
        TaskBusinessStatus = record.BusinessStatus,
        TaskDescription = record.TaskDescription,
        PartnerId = record.PartnerId,
        Etag = record.Etag,
        CreateTime = Timestamp.FromDateTimeOffset(record.CreateTime),
        UpdateTime = Timestamp.FromDateTimeOffset(record.UpdateTime),
        Line = record.Line,
    };

    public static ServiceRequestStatusView MapStatus(ServiceRequestRecord record) => new()
    {
        Id = record.Id,
        RequisitionId = record.RequisitionId,
        Status = record.Status,
        TaskBusinessStatus = record.BusinessStatus,
        Etag = record.Etag,
        UpdateTime = Timestamp.FromDateTimeOffset(record.UpdateTime),
        TeamId = record.TeamId,
        PartnerId = record.PartnerId,
    };

    private static string Truncate(string text) => text.Length <= 1024 ? text : text[..1024];
}
