using Grpc.Core;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.ResultsInterpretation.Domain;
using LabMesh.ResultsInterpretation.Fhir;
using LabMesh.Security.Audit;
using LabMesh.Core.Errors;
using LabMesh.Security.Identity;
using LabMesh.ServiceDefaults.Peers;
using LabMesh.Messaging.Storage;
using LabMesh.Core.Diagnostics;
using LabMesh.Core.Validation;
using LabMesh.Core.Vocabulary;

namespace LabMesh.ResultsInterpretation;

/// <summary>
/// <c>labmesh.results.v1.ResultsInterpretationService</c>: validates and maps; the work is in
/// <see cref="ResultsWorkflow"/>, the reading in <see cref="MarkerReader"/>.
/// </summary>
[AuditStore(ResultsStore.ServiceName)]
public sealed class ResultsApi(
    ResultsWorkflow workflow,
    ResultsStore store,
    MarkerReader reader,
    [FromKeyedServices(ResultsStore.ServiceName)] PeerWork work,
    ResultsEffects effects,
    FhirExport fhir)
    : ResultsInterpretationService.ResultsInterpretationServiceBase
{
    [Allow(Roles.Service)]
    [Creates("Report", "report.id")]
    public override async Task<SubmitResultsResponse> SubmitResults(SubmitResultsRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        ResultsValidation.Validate(request);
        var (report, created) = await workflow.SubmitAsync(caller, request, context.Deadline, context.CancellationToken);
        if (created)
        {
            foreach (var result in report.Results)
            {
                LabMeshMetrics.ResultsInterpreted.Add(1, new KeyValuePair<string, object?>(
                    "labmesh.interpretation", ResultsWords.Interpretation(result.Reading?.Interpretation ?? Interpretation.Unspecified) is { Length: > 0 } word ? word : "unread"));
            }
        }

        return new SubmitResultsResponse { Report = report, Created = created };
    }

    [Allow(Roles.Service)]
    [Changes("Report", "report_id")]
    public override async Task<AmendResultsResponse> AmendResults(AmendResultsRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        ResultsValidation.Validate(request);
        var (report, created) = await workflow.AmendAsync(caller, request, context.Deadline, context.CancellationToken);
        return new AmendResultsResponse { Report = report, Created = created };
    }

    [Allow(Roles.TeamMembers)]
    [Reads]
    public override async Task<GetResultsResponse> GetResults(GetResultsRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var violations = new List<FieldViolation>();
        Ids.Check(request.RequisitionId, "requisition_id", violations);
        var size = PageToken.CheckSize(request.PageSize, "page_size", violations);
        ResultsValidation.Throw(violations);
        var after = ReportKey.FromToken(request.PageToken, "GetResults");
        var view = await workflow.GetResultsAsync(caller, request.RequisitionId, request.IncludeHistory, after, size, context.Deadline, context.CancellationToken);
        var response = new GetResultsResponse
        {
            Interpretation = view.Interpretation,
            AllResultsReceived = view.AllResultsReceived,
            ResultsStatus = view.ResultsStatus,
            NextPageToken = view.Next?.ToToken() ?? "",
            UnsolicitedReports = view.UnsolicitedReports,
        };
        response.Reports.AddRange(view.Reports);
        return response;
    }

    [Allow(Roles.TeamMembers)]
    [Reads]
    public override async Task<GetReportResponse> GetReport(GetReportRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        Ids.Require(request.Id, "id");
        if (request.Version < 0)
        {
            throw new InvalidArgumentException("version", "must be 0 (the latest) or a version number.");
        }

        var record = await store.GetReportAsync(caller.TeamId, request.Id, request.Version, context.CancellationToken)
            ?? throw new NotFoundException("report", request.Version == 0 ? request.Id : $"{request.Id} v{request.Version}");
        return new GetReportResponse { Report = record.Report };
    }

    [Allow(Roles.Everyone)]
    [Reads]
    public override Task<InterpretMarkersResponse> InterpretMarkers(InterpretMarkersRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        ResultsValidation.Validate(request);
        var response = new InterpretMarkersResponse();
        foreach (var marker in request.Results)
        {
            var read = marker.Clone();
            read.Reading = reader.Read(marker);
            read.Reading.CriticalTier = CriticalTiers.Of(reader.Catalog, caller.TeamId, read.Reading);
            response.Results.Add(read);
        }

        response.Interpretation = MarkerReader.Overall(response.Results.Select(m => m.Reading.Interpretation));
        return Task.FromResult(response);
    }

    [Allow(Roles.Everyone)]
    [Reads]
    public override Task<GetCriticalLimitsResponse> GetCriticalLimits(GetCriticalLimitsRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var response = new GetCriticalLimitsResponse();
        response.Limits.AddRange(reader.Catalog.Entries.Select(e => Map(e, reader.Catalog.TierOf(caller.TeamId, e.Analyte))));
        response.Conversions.AddRange(reader.Catalog.Conversions.Select(c => new UnitConversion
        {
            Analyte = c.Analyte,
            FromUnit = c.FromUnit,
            ToUnit = c.ToUnit,
            Factor = c.Factor,
        }));
        return Task.FromResult(response);
    }

    [Allow(Roles.Clinician)]
    [Changes("Requisition", "requisition_id")]
    public override async Task<ShareInterpretationResponse> ShareInterpretation(ShareInterpretationRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var violations = new List<FieldViolation>();
        Ids.Check(request.RequisitionId, "requisition_id", violations);
        if (request.Note.Length > ResultsValidation.MaxShareNoteLength)
        {
            violations.Add(new FieldViolation("note", $"at most {ResultsValidation.MaxShareNoteLength} characters."));
        }

        ResultsValidation.Throw(violations);
        var (progress, changed) = await workflow.ShareAsync(caller, request.RequisitionId, request.Note, context.Deadline, context.CancellationToken);
        var response = new ShareInterpretationResponse { ResultsStatus = LifecycleWords.Word(progress.Stage), Changed = changed };
        if (progress.SharedTime is { } shared)
        {
            response.SharedTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(shared);
        }

        return response;
    }

    [Allow(Roles.TeamMembers)]
    [Reads]
    public override async Task<GetFhirBundleResponse> GetFhirBundle(GetFhirBundleRequest request, ServerCallContext context)
    {
        var caller = context.GetCaller();
        var violations = new List<FieldViolation>();
        Ids.Check(request.RequisitionId, "requisition_id", violations);
        var size = PageToken.CheckSize(request.PageSize, "page_size", violations);
        ResultsValidation.Throw(violations);
        var after = ReportKey.FromToken(request.PageToken, "GetFhirBundle");
        var page = await fhir.GetBundleAsync(caller, request.RequisitionId, after, size, context.Deadline, context.CancellationToken);
        return new GetFhirBundleResponse
        {
            BundleJson = System.Text.Encoding.UTF8.GetString(page.Json),
            ContentType = FhirBundleWriter.ContentType,
            NextPageToken = page.Next?.ToToken() ?? "",
        };
    }

    [Allow(Roles.Admin)]
    [Reads]
    public override Task<ListParkedWorkResponse> ListParkedWork(ListParkedWorkRequest request, ServerCallContext context) =>
        work.ListAsync(context.GetCaller(), request, context.CancellationToken);

    [Allow(Roles.Admin)]
    [Changes("ParkedWork", "item_id")]
    public override async Task<RetryParkedWorkResponse> RetryParkedWork(RetryParkedWorkRequest request, ServerCallContext context)
    {
        await work.RetryAsync(context.GetCaller(), request, [ResultsEffects.StatusesKind, ResultsEffects.StageKind], context.CancellationToken);
        effects.Nudge();
        return new RetryParkedWorkResponse();
    }

    /// <param name="entry">The catalog entry.</param>
    /// <param name="tier">The tier as the caller's team sees it (its own, else the entry's).</param>
    public static CriticalLimit Map(CriticalLimitEntry entry, CriticalTier tier)
    {
        ArgumentNullException.ThrowIfNull(entry);
        var limit = new CriticalLimit { Analyte = entry.Analyte, Unit = entry.Unit, Source = entry.Source, Tier = tier };
        limit.Aliases.AddRange(entry.Aliases);
        if (entry.Low is { } low)
        {
            limit.Low = low;
        }

        if (entry.High is { } high)
        {
            limit.High = high;
        }

        return limit;
    }
}
