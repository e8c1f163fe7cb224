using System.Security.Cryptography;
using System.Text;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Notification.Webhooks;
using LabMesh.Security.Audit;
using LabMesh.Core.Errors;
using LabMesh.Messaging.Events;
using LabMesh.Security.Identity;
using LabMesh.Messaging.Storage;
using LabMesh.Core.Diagnostics;
using LabMesh.Core.Validation;
using Microsoft.Extensions.Options;

namespace LabMesh.Notification;

/// <summary>
/// <c>labmesh.notification.v1.NotificationService</c>: validates, scopes every call to the caller's
/// team, and hands the work to <see cref="EventStreams"/> and the <see cref="NotificationStore"/>.
/// Domain errors become gRPC statuses in <see cref="DomainExceptionInterceptor"/>.
/// </summary>
[AuditStore(NotificationStore.ServiceName)]
public sealed class NotificationApi(
    NotificationStore store,
    EventStreams streams,
    WebhookDeliveryWorker deliveries,
    RetrySchedule schedule,
    WebhookTargetPolicy targets,
    IOptions<NotificationOptions> options,
    TimeProvider time,
    [FromKeyedServices(NotificationStore.ServiceName)] OutboxRelay relay) : NotificationService.NotificationServiceBase
{
    private const int MaxListEvents = 1_000;
    private const int DefaultListEvents = 100;
    private static readonly TimeSpan MaxRotationOverlap = TimeSpan.FromDays(7);

    [Allow(Roles.TeamMembers)]
    [Reads]
    public override async Task Subscribe(SubscribeRequest request, IServerStreamWriter<SubscribeResponse> responseStream, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var selection = NotificationValidation.Selection(request.Filter, caller, "filter");
        var heartbeat = options.Value.HeartbeatInterval;
        if (ProtoTime.ToTimeSpan(request.HeartbeatInterval, "heartbeat_interval") is { } period)
        {
            if (period < TimeSpan.FromSeconds(1) || period > TimeSpan.FromMinutes(5))
            {
                throw new InvalidArgumentException("heartbeat_interval", "must be between 1 s and 5 min (or unset for the server's default).");
            }

            heartbeat = period;
        }

        var start = await streams.ResolveAsync(request.ResumeAfter, "resume_after", context.CancellationToken);
        await streams.RunAsync(selection, caller.Subject, start, heartbeat, responseStream, context);
    }

    [Allow(Roles.TeamMembers)]
    [Reads]
    public override async Task<ListEventsResponse> ListEvents(ListEventsRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var selection = NotificationValidation.Selection(request.Filter, caller, "filter");
        var size = request.PageSize switch
        {
            0 => DefaultListEvents,
            < 0 or > MaxListEvents => throw new InvalidArgumentException("page_size", $"must be between 1 and {MaxListEvents} (0 means {DefaultListEvents})."),
            _ => request.PageSize,
        };
        var after = await streams.ResolveAsync(request.After, "after", context.CancellationToken);
        return await streams.ListAsync(selection, after, size, PageBudget.MaxBytes, context.CancellationToken);
    }

    [Allow(Roles.Admin)]
    [Creates("WebhookEndpoint", "endpoint.id")]
    public override async Task<CreateWebhookEndpointResponse> CreateWebhookEndpoint(CreateWebhookEndpointRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var violations = new List<FieldViolation>();
        RequestIds.Check(request.RequestId, violations);
        var url = NotificationValidation.Url(request.Url, targets, "url", violations);
        NotificationValidation.Description(request.Description, "description", violations);
        var types = NotificationValidation.EventTypes(request.EventTypes, "event_types", violations);
        if (request.Secret.Length > 0 && !WebhookSecret.IsValid(request.Secret, out var secretError))
        {
            violations.Add(new FieldViolation("secret", secretError));
        }

        NotificationValidation.ThrowIfAny(violations);
        var secret = request.Secret.Length > 0 ? request.Secret : WebhookSecret.Generate();
        var now = DbTime.Now(time);
        var endpoint = new EndpointRecord(
            "whep_" + Guid.CreateVersion7().ToString("N"), caller.TeamId, url, request.Description, types, request.Escalation, true, "",
            secret, null, null, 1, now, now);
        var (stored, created) = await store.CreateEndpointAsync(endpoint, request.RequestId, RequestHash(request), context.CancellationToken);
        // The secret only at creation (and rotation): a repeated request_id is answered the endpoint without it, so
        // a replay by another admin, or after a rotation, learns nothing it did not send.
        return new CreateWebhookEndpointResponse { Endpoint = ToProto(stored), Secret = created ? stored.Secret : "" };
    }

    [Allow(Roles.Admin)]
    [Reads]
    public override async Task<GetWebhookEndpointResponse> GetWebhookEndpoint(GetWebhookEndpointRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        Ids.Require(request.Id, "id");
        return new GetWebhookEndpointResponse { Endpoint = ToProto(await store.GetEndpointAsync(caller.TeamId, request.Id, context.CancellationToken)) };
    }

    [Allow(Roles.Admin)]
    [Reads]
    public override async Task<ListWebhookEndpointsResponse> ListWebhookEndpoints(ListWebhookEndpointsRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var size = PageToken.Size(request.PageSize);
        var after = PageToken.Decode(request.PageToken);
        var endpoints = await store.ListEndpointsAsync(caller.TeamId, after, size + 1, context.CancellationToken);
        var response = new ListWebhookEndpointsResponse();
        response.Endpoints.AddRange(endpoints.Take(size).Select(ToProto));
        response.NextPageToken = PageToken.Next(endpoints, size, e => e.Id);
        return response;
    }

    [Allow(Roles.Admin)]
    [Changes("WebhookEndpoint", "id")]
    public override async Task<UpdateWebhookEndpointResponse> UpdateWebhookEndpoint(UpdateWebhookEndpointRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var violations = new List<FieldViolation>();
        if (string.IsNullOrEmpty(request.Id))
        {
            violations.Add(new FieldViolation("id", "is required."));
        }

        if (string.IsNullOrEmpty(request.Etag))
        {
            violations.Add(new FieldViolation("etag", "is required: read the endpoint and send its etag."));
        }

        if (!(request.UpdateUrl || request.UpdateDescription || request.UpdateEventTypes || request.UpdateEscalation || request.UpdateEnabled))
        {
            violations.Add(new FieldViolation("update_*", "name at least one field to change (update_url, update_description, ...)."));
        }

        var url = request.UpdateUrl ? NotificationValidation.Url(request.Url, targets, "url", violations) : "";
        if (request.UpdateDescription)
        {
            NotificationValidation.Description(request.Description, "description", violations);
        }

        var types = request.UpdateEventTypes ? NotificationValidation.EventTypes(request.EventTypes, "event_types", violations) : [];
        NotificationValidation.ThrowIfAny(violations);

        var updated = await store.UpdateEndpointAsync(caller.TeamId, request.Id, request.Etag, current =>
        {
            var next = current;
            if (request.UpdateUrl)
            {
                next = next with { Url = url };
            }

            if (request.UpdateDescription)
            {
                next = next with { Description = request.Description };
            }

            if (request.UpdateEventTypes)
            {
                next = next with { EventTypes = types };
            }

            if (request.UpdateEscalation)
            {
                next = next with { Escalation = request.Escalation };
            }

            if (request.UpdateEnabled)
            {
                next = next with { Enabled = request.Enabled, DisabledReason = request.Enabled ? "" : "disabled by " + caller.Actor };
            }

            return next;
        }, context.CancellationToken);
        if (updated.Enabled)
        {
            deliveries.Nudge();
        }

        return new UpdateWebhookEndpointResponse { Endpoint = ToProto(updated) };
    }

    [Allow(Roles.Admin)]
    [Changes("WebhookEndpoint", "id")]
    public override async Task<DeleteWebhookEndpointResponse> DeleteWebhookEndpoint(DeleteWebhookEndpointRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        Ids.Require(request.Id, "id");
        await store.DeleteEndpointAsync(caller.TeamId, request.Id, request.Etag, context.CancellationToken);
        return new DeleteWebhookEndpointResponse();
    }

    [Allow(Roles.Admin)]
    [Changes("WebhookEndpoint", "id")]
    public override async Task<RotateWebhookSecretResponse> RotateWebhookSecret(RotateWebhookSecretRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        Ids.Require(request.Id, "id");
        var overlap = ProtoTime.ToTimeSpan(request.Overlap, "overlap") ?? options.Value.DefaultRotationOverlap;
        if (overlap < TimeSpan.Zero || overlap > MaxRotationOverlap)
        {
            throw new InvalidArgumentException("overlap", "must be between 0 s and 7 days.");
        }

        var secret = WebhookSecret.Generate();
        var now = DbTime.Now(time);
        var updated = await store.UpdateEndpointAsync(caller.TeamId, request.Id, null, current => current with
        {
            Secret = secret,
            PreviousSecret = overlap > TimeSpan.Zero ? current.Secret : null,
            PreviousSecretExpiresAt = overlap > TimeSpan.Zero ? DbTime.AsStored(now + overlap) : null,
        }, context.CancellationToken);
        return new RotateWebhookSecretResponse { Endpoint = ToProto(updated), Secret = secret };
    }

    [Allow(Roles.Admin)]
    [Changes("WebhookEndpoint", "endpoint_id")]
    public override async Task<SendTestEventResponse> SendTestEvent(SendTestEventRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        Ids.Require(request.EndpointId, "endpoint_id");
        var endpoint = await store.GetEndpointAsync(caller.TeamId, request.EndpointId, context.CancellationToken);
        if (!endpoint.Enabled)
        {
            throw new IllegalTransitionException($"Webhook endpoint {endpoint.Id}", "disabled", "test delivery", ["enable the endpoint first (UpdateWebhookEndpoint enabled=true)"]);
        }

        var evt = new Event
        {
            Id = Guid.CreateVersion7().ToString(),
            Type = EventTypes.WebhookTest,
            CreatedAt = Timestamp.FromDateTimeOffset(time.GetUtcNow()),
            TeamId = caller.TeamId,
            Source = NotificationStore.ServiceName,
            WebhookTest = new WebhookTest { EndpointId = endpoint.Id },
        };
        var delivery = await store.CreateTestDeliveryAsync(endpoint, evt, schedule, context.CancellationToken);
        deliveries.Nudge();
        return new SendTestEventResponse { Delivery = ToProto(delivery) };
    }

    [Allow(Roles.Admin)]
    [Reads]
    public override async Task<ListDeliveriesResponse> ListDeliveries(ListDeliveriesRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var size = PageToken.Size(request.PageSize);
        var before = PageToken.Decode(request.PageToken);
        if (!System.Enum.IsDefined(request.State))
        {
            throw new InvalidArgumentException("state", "is not a DeliveryState.");
        }

        var rows = await store.ListDeliveriesAsync(
            caller.TeamId, NullIfEmpty(request.EndpointId), NullIfEmpty(request.EventId), request.State, before, size + 1, context.CancellationToken);
        var response = new ListDeliveriesResponse();
        response.Deliveries.AddRange(rows.Take(size).Select(ToProto));
        response.NextPageToken = PageToken.Next(rows, size, r => r.Id);
        return response;
    }

    [Allow(Roles.Admin)]
    [Creates("Delivery", "delivery.id")]
    public override async Task<RedeliverEventResponse> RedeliverEvent(RedeliverEventRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        string id;
        if (request.DeliveryId.Length > 0)
        {
            if (request.EndpointId.Length > 0 || request.EventId.Length > 0)
            {
                throw new InvalidArgumentException("delivery_id", "name either delivery_id, or endpoint_id and event_id, not both.");
            }

            Ids.Require(request.DeliveryId, "delivery_id");
            id = request.DeliveryId;
        }
        else
        {
            var violations = new List<FieldViolation>();
            if (request.EndpointId.Length == 0)
            {
                violations.Add(new FieldViolation("endpoint_id", "is required when delivery_id is not set."));
            }

            if (request.EventId.Length == 0)
            {
                violations.Add(new FieldViolation("event_id", "is required when delivery_id is not set."));
            }

            NotificationValidation.ThrowIfAny(violations);
            Ids.Require(request.EndpointId, "endpoint_id");
            Ids.Require(request.EventId, "event_id");
            id = (await store.GetDeliveryAsync(caller.TeamId, request.EndpointId, request.EventId, context.CancellationToken)).Id;
        }

        var delivery = await store.RedeliverAsync(caller.TeamId, id, schedule, context.CancellationToken);
        deliveries.Nudge();
        return new RedeliverEventResponse { Delivery = ToProto(delivery) };
    }

    [Allow(Roles.Clinician)]
    [Changes("CriticalResult", "id")]
    public override async Task<AcknowledgeCriticalResultResponse> AcknowledgeCriticalResult(AcknowledgeCriticalResultRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var violations = new List<FieldViolation>();
        if (request.Id.Length is 0 or > 128)
        {
            violations.Add(new FieldViolation("id", "is required (at most 128 characters): the labtest.result.critical event id."));
        }

        if (string.IsNullOrWhiteSpace(request.ReadBack))
        {
            violations.Add(new FieldViolation("read_back", "is required: what the receiver read back."));
        }
        else if (request.ReadBack.Length > 2000)
        {
            violations.Add(new FieldViolation("read_back", "is longer than 2,000 characters."));
        }

        if (request.Channel == AcknowledgementChannel.Unspecified || !System.Enum.IsDefined(request.Channel))
        {
            violations.Add(new FieldViolation("channel", "must name how the result reached the clinician (PHONE, IN_PERSON, APP, PAGER, SECURE_MESSAGE)."));
        }

        if (request.AcknowledgedBy.Length > 200)
        {
            violations.Add(new FieldViolation("acknowledged_by", "is longer than 200 characters."));
        }

        var now = DbTime.Now(time);
        var at = now;
        if (ProtoTime.ToDateTimeOffset(request.AcknowledgedAt, "acknowledged_at") is { } given)
        {
            at = given;
            if (at > now + TimeSpan.FromMinutes(1))
            {
                violations.Add(new FieldViolation("acknowledged_at", "is in the future."));
            }
        }

        NotificationValidation.ThrowIfAny(violations);
        var by = string.IsNullOrWhiteSpace(request.AcknowledgedBy) ? caller.Actor : request.AcknowledgedBy;
        var acknowledged = await store.AcknowledgeAsync(caller.TeamId, request.Id, by, at, request.Channel, request.ReadBack, context.CancellationToken);
        return new AcknowledgeCriticalResultResponse { CriticalResult = ToProto(acknowledged, includeReadBack: true) };
    }

    [Allow(Roles.Clinician)]
    [Changes("CriticalResult", "id")]
    public override async Task<DeclineCriticalResultResponse> DeclineCriticalResult(DeclineCriticalResultRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var violations = new List<FieldViolation>();
        if (request.Id.Length is 0 or > 128)
        {
            violations.Add(new FieldViolation("id", "is required (at most 128 characters): the labtest.result.critical event id."));
        }

        if (string.IsNullOrWhiteSpace(request.Reason) || request.Reason.Length > 500)
        {
            violations.Add(new FieldViolation("reason", "is required (at most 500 characters): why it is not your patient."));
        }

        if (request.DeclinedBy.Length > 200)
        {
            violations.Add(new FieldViolation("declined_by", "at most 200 characters."));
        }

        if (violations.Count > 0)
        {
            throw new InvalidArgumentException(violations);
        }

        var by = string.IsNullOrWhiteSpace(request.DeclinedBy) ? caller.Actor : request.DeclinedBy;
        var escalated = await store.DeclineAsync(caller.TeamId, request.Id, by, request.Reason, context.CancellationToken);
        LabMeshMetrics.CriticalEscalated.Add(1);
        relay.Nudge();
        return new DeclineCriticalResultResponse { CriticalResult = ToProto(escalated, includeReadBack: false) };
    }

    [Allow(Roles.TeamMembers)]
    [Reads]
    public override async Task<ListUnacknowledgedCriticalResultsResponse> ListUnacknowledgedCriticalResults(
        ListUnacknowledgedCriticalResultsRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var size = PageToken.Size(request.PageSize);
        var after = PageToken.Decode(request.PageToken);
        var rows = await store.ListOpenCriticalAsync(caller.TeamId, NullIfEmpty(request.RequisitionId), after, size + 1, context.CancellationToken);
        var response = new ListUnacknowledgedCriticalResultsResponse();
        // A critical result may name up to 500 analytes (about 35 KB): a page also stops at PageBudget.MaxBytes, so it stays
        // under the 4 MiB message limit whatever its page size.
        var budget = new PageBudget();
        foreach (var row in rows.Take(size))
        {
            var critical = ToProto(row, includeReadBack: false);
            if (!budget.TryAdd(critical))
            {
                break;
            }

            response.CriticalResults.Add(critical);
        }

        response.NextPageToken = response.CriticalResults.Count < rows.Count ? PageToken.Encode(response.CriticalResults[^1].Id) : "";
        return response;
    }

    [Allow(Roles.TeamMembers)]
    [Reads]
    public override async Task<GetCriticalResultResponse> GetCriticalResult(GetCriticalResultRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        Ids.Require(request.Id, "id");
        var critical = await store.GetCriticalAsync(caller.TeamId, request.Id, context.CancellationToken);
        var audit = await store.ListAuditAsync(critical.Id, context.CancellationToken);
        var response = new GetCriticalResultResponse { CriticalResult = ToProto(critical, includeReadBack: true) };
        response.Audit.AddRange(audit.Select(a => new AuditEntry
        {
            At = Timestamp.FromDateTimeOffset(a.At),
            Action = a.Action,
            Actor = a.Actor,
            Channel = a.Channel,
            Detail = a.Detail,
        }));
        return response;
    }

    internal static WebhookEndpoint ToProto(EndpointRecord endpoint)
    {
        var proto = new WebhookEndpoint
        {
            Id = endpoint.Id,
            TeamId = endpoint.TeamId,
            Url = endpoint.Url,
            Description = endpoint.Description,
            Escalation = endpoint.Escalation,
            Enabled = endpoint.Enabled,
            DisabledReason = endpoint.DisabledReason,
            CreatedAt = Timestamp.FromDateTimeOffset(endpoint.CreatedAt),
            UpdatedAt = Timestamp.FromDateTimeOffset(endpoint.UpdatedAt),
            Etag = endpoint.Etag,
            PreviousSecretExpiresAt = endpoint.PreviousSecretExpiresAt is { } expires ? Timestamp.FromDateTimeOffset(expires) : null,
        };
        proto.EventTypes.AddRange(endpoint.EventTypes);
        return proto;
    }

    internal static Delivery ToProto(DeliveryRecord delivery) => new()
    {
        Id = delivery.Id,
        EndpointId = delivery.EndpointId,
        EventId = delivery.EventId,
        EventType = delivery.EventType,
        State = delivery.State,
        Attempts = delivery.Attempts,
        CreatedAt = Timestamp.FromDateTimeOffset(delivery.CreatedAt),
        NextAttemptAt = delivery.State == DeliveryState.Pending && delivery.NextAttemptAt is { } next ? Timestamp.FromDateTimeOffset(next) : null,
        DeliveredAt = delivery.DeliveredAt is { } delivered ? Timestamp.FromDateTimeOffset(delivered) : null,
        LastStatusCode = delivery.LastStatusCode,
        LastError = delivery.LastError,
        LastAttemptAt = delivery.LastAttemptAt is { } last ? Timestamp.FromDateTimeOffset(last) : null,
    };

    internal static CriticalResultAcknowledgement ToProto(CriticalRecord critical, bool includeReadBack)
    {
        var proto = new CriticalResultAcknowledgement
        {
            Id = critical.Id,
            TeamId = critical.TeamId,
            RequisitionId = critical.RequisitionId,
            ReportId = critical.ReportId,
            ReportVersion = critical.ReportVersion,
            State = critical.State,
            OpenedAt = Timestamp.FromDateTimeOffset(critical.OpenedAt),
            DueAt = critical.AcknowledgedAt is null ? Timestamp.FromDateTimeOffset(critical.DueAt) : null,
            Escalations = critical.Escalations,
            AcknowledgedAt = critical.AcknowledgedAt is { } at ? Timestamp.FromDateTimeOffset(at) : null,
            AcknowledgedBy = critical.AcknowledgedBy ?? "",
            Channel = critical.Channel,
            ReadBack = includeReadBack ? critical.ReadBack ?? "" : "",
            Tier = critical.Tier,
            EscalatedTo = critical.EscalatedTo,
        };
        proto.CriticalAnalytes.AddRange(critical.CriticalAnalytes);
        proto.DeclinedBy.AddRange(critical.DeclinedBy);
        return proto;
    }

    private static string? NullIfEmpty(string value) => value.Length == 0 ? null : value;

    // What makes a repeated create "the same request" (RepeatRequests): every field but request_id, the secret by its
    // hash only. Not RepeatRequests.Hash: stored endpoints hold this hash, so a retry across an upgrade still matches.
    private static string RequestHash(CreateWebhookEndpointRequest request)
    {
        var text = string.Join('\n', request.Url, request.Description, string.Join(' ', request.EventTypes), request.Escalation ? "1" : "0", request.Secret);
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
    }
}
