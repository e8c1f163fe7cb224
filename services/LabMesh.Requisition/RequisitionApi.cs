using System.Globalization;
using Grpc.Core;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Requisition.Domain;
using LabMesh.Security.Audit;
using LabMesh.Core.Errors;
using LabMesh.Security.Identity;
using LabMesh.ServiceDefaults.Peers;
using LabMesh.Messaging.Storage;
using LabMesh.Core.Validation;

namespace LabMesh.Requisition;

/// <summary>
/// <c>labmesh.requisition.v1.RequisitionService</c>: validates and maps; the work is in
/// <see cref="RequisitionWorkflow"/>, the rules in <see cref="Domain"/>.
/// </summary>
[AuditStore(RequisitionStore.ServiceName)]
public sealed class RequisitionApi(
    RequisitionWorkflow workflow,
    RequisitionStore store,
    OrderSimulator simulator,
    [FromKeyedServices(RequisitionStore.ServiceName)] PeerWork work,
    ServiceRequestSync sync)
    : RequisitionService.RequisitionServiceBase
{
    private static readonly TimeSpan MaxStepDelay = TimeSpan.FromSeconds(60);

    [Allow(Roles.Service | Roles.Clinician)]
    [Creates("Requisition", "requisition.id")]
    public override async Task<CreateRequisitionResponse> CreateRequisition(CreateRequisitionRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        Validate(request);
        var (requisition, created) = await workflow.CreateAsync(caller, request, context.Deadline, context.CancellationToken);
        return new CreateRequisitionResponse { Requisition = requisition, Created = created };
    }

    [Allow(Roles.Service | Roles.Clinician)]
    [Changes("Requisition", "id")]
    public override async Task<PlaceRequisitionResponse> PlaceRequisition(PlaceRequisitionRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var requisition = await workflow.PlaceAsync(caller, Ids.Require(request.Id), request.Etag, context.Deadline, context.CancellationToken);
        return new PlaceRequisitionResponse { Requisition = requisition };
    }

    [Allow(Roles.TeamMembers)]
    [Reads]
    public override async Task<GetRequisitionResponse> GetRequisition(GetRequisitionRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        return new GetRequisitionResponse
        {
            Requisition = await workflow.GetAsync(caller, Ids.Require(request.Id), context.Deadline, context.CancellationToken),
        };
    }

    [Allow(Roles.TeamMembers)]
    [Reads]
    public override async Task<ListRequisitionsResponse> ListRequisitions(ListRequisitionsRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var pageSize = PageToken.Size(request.PageSize);
        var after = PageToken.Decode(request.PageToken);
        var filter = new RequisitionFilter(request.Status, request.LifecycleStatus, request.Modality,
            request.PatientId, request.HasDraft ? request.Draft : null);
        var records = await store.ListAsync(caller.TeamId, filter, after, pageSize, context.CancellationToken);
        var response = new ListRequisitionsResponse();
        // A requisition may hold 50 tests with 1 KB descriptions, its order events and service requests: a page also
        // stops at PageBudget.MaxBytes, so it stays under the 4 MiB message limit whatever its page size.
        var budget = new PageBudget();
        foreach (var record in records.Take(pageSize))
        {
            var requisition = RequisitionWorkflow.Map(record, null);
            if (!budget.TryAdd(requisition))
            {
                break;
            }

            response.Requisitions.Add(requisition);
        }

        response.NextPageToken = response.Requisitions.Count < records.Count ? PageToken.Encode(response.Requisitions[^1].Id) : "";

        return response;
    }

    [Allow(Roles.Service)]
    [Changes("Requisition", "id")]
    public override async Task<RecordOrderEventResponse> RecordOrderEvent(RecordOrderEventRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var id = Ids.Require(request.Id);
        if (string.IsNullOrWhiteSpace(request.Status))
        {
            throw new InvalidArgumentException("status", "is required: a namespaced order status, e.g. \"collecting_sample.testkit.transit_customer\".");
        }

        var requisition = await workflow.RecordEventAsync(caller, id, request.Etag, request.Status, Truncate(request.Note),
            context.Deadline, context.CancellationToken);
        return new RecordOrderEventResponse { Requisition = requisition };
    }

    [Allow(Roles.Service | Roles.Clinician)]
    [Changes("Requisition", "id")]
    public override async Task<CancelRequisitionResponse> CancelRequisition(CancelRequisitionRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var id = Ids.Require(request.Id);
        var reason = string.IsNullOrEmpty(request.Reason) ? "cancelled" : request.Reason;
        if (reason is not ("cancelled" or "do_not_process"))
        {
            throw new InvalidArgumentException("reason", "must be \"cancelled\" or \"do_not_process\" (test kits only).");
        }

        var record = await store.GetAsync(caller.TeamId, id, context.CancellationToken) ?? throw new NotFoundException("requisition", id);
        if (reason == "do_not_process" && record.Modality != TestModality.Testkit)
        {
            throw new InvalidArgumentException("reason", "\"do_not_process\" is for test kits only; this requisition's modality is " +
                Modalities.Word(record.Modality) + ".");
        }

        var status = $"cancelled.{Modalities.Word(record.Modality)}.{reason}";
        var requisition = await workflow.RecordEventAsync(caller, id, request.Etag, status, "", context.Deadline, context.CancellationToken);
        return new CancelRequisitionResponse { Requisition = requisition };
    }

    [Allow(Roles.TeamMembers)]
    [Reads]
    public override async Task<GetRequisitionStatusResponse> GetRequisitionStatus(GetRequisitionStatusRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        return new GetRequisitionStatusResponse
        {
            Status = await workflow.GetStatusAsync(caller, Ids.Require(request.Id), context.CancellationToken),
        };
    }

    [Allow(Roles.Service | Roles.Admin)]
    [Changes("Requisition", "id")]
    public override async Task<SimulateOrderResponse> SimulateOrder(SimulateOrderRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var id = Ids.Require(request.Id);
        var delay = ProtoTime.ToTimeSpan(request.StepDelay, "step_delay") ?? TimeSpan.Zero;
        if (delay < TimeSpan.Zero || delay > MaxStepDelay)
        {
            throw new InvalidArgumentException("step_delay", "must be between 0 and 60 s.");
        }

        var record = await store.GetAsync(caller.TeamId, id, context.CancellationToken) ?? throw new NotFoundException("requisition", id);
        if (record.IsDraft)
        {
            throw new IllegalTransitionException("requisition", "draft", "simulation", ["PlaceRequisition"]);
        }

        var final = string.IsNullOrEmpty(request.FinalStatus) ? $"completed.{Modalities.Word(record.Modality)}.completed" : request.FinalStatus;
        var path = OrderStatusMachine.PathTo(record.Modality, record.Current, final);
        _ = simulator.Start(caller, record.Id, path, delay);
        var response = new SimulateOrderResponse();
        response.PlannedStatuses.AddRange(path);
        return response;
    }

    [Allow(Roles.Service)]
    [Changes("Requisition", "id")]
    public override async Task<RecordResultsStageResponse> RecordResultsStage(RecordResultsStageRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var violations = new List<FieldViolation>();
        if (request.Stage is not (LifecycleStatus.PartialResults or LifecycleStatus.ResultsReady or LifecycleStatus.ResultsAmended
            or LifecycleStatus.InterpretationReady or LifecycleStatus.InterpretationShared))
        {
            violations.Add(new FieldViolation("stage",
                "must be a results milestone: PARTIAL_RESULTS, RESULTS_READY, RESULTS_AMENDED, INTERPRETATION_READY or INTERPRETATION_SHARED."));
        }

        if (request.Sequence <= 0)
        {
            violations.Add(new FieldViolation("sequence", "must be positive."));
        }

        var id = Ids.Require(request.Id);
        for (var i = 0; i < request.ServiceRequests.Count; i++)
        {
            var serviceRequest = request.ServiceRequests[i];
            if (serviceRequest.RequisitionId != id || serviceRequest.TeamId != caller.TeamId)
            {
                violations.Add(new FieldViolation($"service_requests[{i}]",
                    $"must be a service request of requisition '{id}' of the caller's team, as RecordResults answered it."));
            }
        }

        if (violations.Count > 0)
        {
            throw new InvalidArgumentException(violations);
        }

        var (status, changed) = await workflow.RecordResultsStageAsync(caller, id, request.Stage, request.Sequence,
            request.ServiceRequests.Count > 0 ? request.ServiceRequests : null, context.Deadline, context.CancellationToken);
        return new RecordResultsStageResponse { Status = status, Changed = changed };
    }

    [Allow(Roles.Admin)]
    [Reads]
    public override Task<ListParkedWorkResponse> ListParkedWork(ListParkedWorkRequest request, ServerCallContext context) =>
        work.ListAsync(context.GetCaller(), request, context.CancellationToken);

    [Allow(Roles.Admin)]
    [Changes("ParkedWork", "item_id")]
    public override async Task<RetryParkedWorkResponse> RetryParkedWork(RetryParkedWorkRequest request, ServerCallContext context)
    {
        await work.RetryAsync(context.GetCaller(), request, [ServiceRequestSync.WorkKind], context.CancellationToken);
        sync.Nudge();
        return new RetryParkedWorkResponse();
    }

    [Allow(Roles.Service | Roles.Clinician)]
    [Changes("Requisition", "id")]
    public override async Task<RescheduleRequisitionResponse> RescheduleRequisition(RescheduleRequisitionRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var id = Ids.Require(request.Id);
        if (string.IsNullOrWhiteSpace(request.Reason) || request.Reason.Length > 1024)
        {
            throw new InvalidArgumentException("reason", "is required (1 to 1024 characters): why the order is rescheduled, kept in the history.");
        }

        var (requisition, rescheduled) = await workflow.RescheduleAsync(caller, id, request.Etag, request.Reason, context.Deadline,
            context.CancellationToken);
        var response = new RescheduleRequisitionResponse { Requisition = requisition };
        response.RescheduledServiceRequestIds.AddRange(rescheduled);
        return response;
    }

    /// <summary>Every field problem at once, so a caller fixes them in one round.</summary>
    private static void Validate(CreateRequisitionRequest request)
    {
        var violations = new List<FieldViolation>();
        RequestIds.Check(request.RequestId, violations);

        if (request.Patient is null)
        {
            violations.Add(new("patient", "is required."));
        }
        else
        {
            if (string.IsNullOrWhiteSpace(request.Patient.Id) || request.Patient.Id.Length > 64)
            {
                violations.Add(new("patient.id", "is required (at most 64 characters)."));
            }

            if (request.Patient.GivenName.Length > 200)
            {
                violations.Add(new("patient.given_name", "must be at most 200 characters."));
            }

            if (request.Patient.FamilyName.Length > 200)
            {
                violations.Add(new("patient.family_name", "must be at most 200 characters."));
            }

            if (request.Patient.BirthDate.Length > 0 &&
                (!DateOnly.TryParseExact(request.Patient.BirthDate, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var birth) ||
                 birth > DateOnly.FromDateTime(DateTime.UtcNow)))
            {
                violations.Add(new("patient.birth_date", "must be a past date as YYYY-MM-DD."));
            }

            if (request.Patient.Sex is not ("" or "female" or "male" or "other" or "unknown"))
            {
                violations.Add(new("patient.sex", "must be \"female\", \"male\", \"other\" or \"unknown\"."));
            }
        }

        if (request.OrderingProvider is { } provider)
        {
            if (provider.Npi.Length > 0 && (provider.Npi.Length != 10 || !provider.Npi.All(char.IsAsciiDigit)))
            {
                violations.Add(new("ordering_provider.npi", "must be 10 digits."));
            }

            if (provider.Name.Length > 200 || provider.Id.Length > 64)
            {
                violations.Add(new("ordering_provider", "name at most 200 and id at most 64 characters."));
            }
        }

        if (request.Lab.Length > 100)
        {
            violations.Add(new("lab", "must be at most 100 characters."));
        }

        if (request.Modality == TestModality.Unspecified || !Enum.IsDefined(request.Modality))
        {
            violations.Add(new("modality", "is required: TEST_MODALITY_TESTKIT, TEST_MODALITY_WALK_IN_TEST or TEST_MODALITY_AT_HOME_PHLEBOTOMY."));
        }

        if (request.Tests.Count is 0 or > 50)
        {
            violations.Add(new("tests", "must hold 1 to 50 tests."));
        }

        for (var i = 0; i < request.Tests.Count; i++)
        {
            var test = request.Tests[i];
            if (!TestCodes.IsValid(test.Code))
            {
                violations.Add(new($"tests[{i}].code", TestCodes.Rule));
            }

            if (string.IsNullOrWhiteSpace(test.PartnerId) || test.PartnerId.Length > 64)
            {
                violations.Add(new($"tests[{i}].partner_id", "is required (at most 64 characters): the lab partner that will work on it."));
            }

            if (test.Description.Length > 1024)
            {
                violations.Add(new($"tests[{i}].description", "must be at most 1024 characters."));
            }
        }

        if (request.ReplacesRequisitionId.Length > 64)
        {
            violations.Add(new("replaces_requisition_id", "must be at most 64 characters."));
        }

        if (violations.Count > 0)
        {
            throw new InvalidArgumentException(violations);
        }
    }

    private static string Truncate(string text) => text.Length <= 1024 ? text : text[..1024];
}
