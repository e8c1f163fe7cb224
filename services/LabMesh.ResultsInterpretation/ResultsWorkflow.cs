using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.ResultsInterpretation.Domain;
using LabMesh.Core.Errors;
using LabMesh.Messaging.Events;
using LabMesh.Security.Identity;
using LabMesh.Messaging.Storage;
using LabMesh.Core.Validation;
using LabMesh.Core.Vocabulary;

namespace LabMesh.ResultsInterpretation;

/// <summary>What GetResults answers for one requisition: a page of its reports and totals over all of them.</summary>
public sealed record ResultsView(
    IReadOnlyList<Report> Reports, Interpretation Interpretation, bool AllResultsReceived, string ResultsStatus, ReportKey? Next, int UnsolicitedReports);

/// <summary>
/// The ResultsInterpretation service's operations across its store and its peers.
/// </summary>
/// <remarks>
/// A report is stored with its readings, its progress and its events in one local transaction
/// (so <c>labtest.result.critical</c> leaves through the outbox the moment the report commits).
/// What the other services must hear (the service requests' statuses, the requisition's results
/// milestone) is recorded on the rows and pushed right after the commit, with the caller's
/// deadline; when a peer is down or slow, <see cref="ResultsEffects"/> keeps pushing until it lands (or, refused again and again, parks it for an admin).
/// Both calls are idempotent, so a replay is harmless.
/// </remarks>
public sealed partial class ResultsWorkflow(
    ResultsStore store,
    MeshGateway peers,
    MarkerReader reader,
    [FromKeyedServices(ResultsStore.ServiceName)] OutboxRelay relay,
    ResultsEffects effects,
    ILogger<ResultsWorkflow> logger)
{
    public async Task<(Report Report, bool Created)> SubmitAsync(
        Caller caller, SubmitResultsRequest request, DateTime deadline, CancellationToken cancellationToken)
    {
        var hash = RepeatRequests.Hash(request);
        var existing = await store.FindByRequestAsync(caller.TeamId, request.RequestId, cancellationToken);
        if (existing is not null)
        {
            return (await RepeatAsync(existing, request.RequestId, hash, deadline, cancellationToken), false);
        }

        var requisition = await peers.GetRequisitionAsync(caller, request.RequisitionId, deadline, cancellationToken);
        EnsureAcceptsResults(requisition, request.ServiceRequestIds);

        var report = new Report
        {
            RequisitionId = requisition.Id,
            TeamId = caller.TeamId,
            RequestId = request.RequestId,
            SubmittedBy = caller.Actor,
            Metadata = request.Metadata.Clone(),
        };
        report.ServiceRequestIds.AddRange(request.ServiceRequestIds);
        Read(report, request.Results);

        var active = requisition.ServiceRequests.Where(s => s.Status != ServiceRequestStatus.Revoked).Select(s => s.Id).ToList();
        ReportRecord stored;
        Event? critical;
        try
        {
            (stored, _, critical) = await store.SubmitAsync(report, new SubmitContext(hash, active, requisition.Patient?.Id ?? ""), cancellationToken);
        }
        catch (Exception ex) when (Database.IsUniqueViolation(ex))
        {
            // A concurrent twin with the same request_id committed first.
            var twin = await store.FindByRequestAsync(caller.TeamId, request.RequestId, cancellationToken)
                ?? throw new InvalidOperationException("A unique violation on (team_id, request_id) without a row.", ex);
            return (await RepeatAsync(twin, request.RequestId, hash, deadline, cancellationToken), false);
        }

        LogStored(logger, stored.Id, stored.Version, report.Metadata.Status, report.Metadata.Interpretation, report.Results.Count);
        Publish(critical);
        await effects.ApplyAsync(stored.Report.RequisitionId, deadline, cancellationToken);
        return (stored.Report, true);
    }

    public async Task<(Report Report, bool Created)> AmendAsync(
        Caller caller, AmendResultsRequest request, DateTime deadline, CancellationToken cancellationToken)
    {
        var hash = RepeatRequests.Hash(request);
        var existing = await store.FindByRequestAsync(caller.TeamId, request.RequestId, cancellationToken);
        if (existing is not null)
        {
            return (await RepeatAsync(existing, request.RequestId, hash, deadline, cancellationToken), false);
        }

        var latest = await store.GetReportAsync(caller.TeamId, request.ReportId, 0, cancellationToken)
            ?? throw new NotFoundException("report", request.ReportId);
        ResultsValidation.EnsureMarkersAnswer(request.Results, latest.Report.ServiceRequestIds);

        var corrected = new Report
        {
            TeamId = caller.TeamId,
            RequestId = request.RequestId,
            SubmittedBy = caller.Actor,
            AmendmentReason = request.Reason,
            Metadata = request.Metadata.Clone(),
        };
        corrected.Metadata.Status = ReportStatus.Final;
        corrected.ServiceRequestIds.AddRange(latest.Report.ServiceRequestIds);
        Read(corrected, request.Results);

        ReportRecord stored;
        Event? critical;
        try
        {
            (stored, _, critical) = await store.AmendAsync(caller.TeamId, request.ReportId, request.ExpectedVersion, corrected, hash, cancellationToken);
        }
        catch (Exception ex) when (Database.IsUniqueViolation(ex))
        {
            // The same request_id committed concurrently (a retry), or another amendment took this version.
            var twin = await store.FindByRequestAsync(caller.TeamId, request.RequestId, cancellationToken)
                ?? throw new StaleEtagException("report", $"{request.ReportId} v{latest.Version}");
            return (await RepeatAsync(twin, request.RequestId, hash, deadline, cancellationToken), false);
        }

        LogStored(logger, stored.Id, stored.Version, corrected.Metadata.Status, corrected.Metadata.Interpretation, corrected.Results.Count);
        Publish(critical);
        await effects.ApplyAsync(stored.Report.RequisitionId, deadline, cancellationToken);
        return (stored.Report, true);
    }

    /// <summary>
    /// After a report committed: a critical result goes to the bus at once (the fast path, ahead of whatever
    /// the outbox holds), and the relay is woken for the rest, the critical event's outbox row included.
    /// </summary>
    private void Publish(Event? critical)
    {
        if (critical is not null)
        {
            relay.Expedite(critical);
        }

        relay.Nudge();
    }

    public async Task<(ResultsProgress Progress, bool Changed)> ShareAsync(
        Caller caller, string requisitionId, string note, DateTime deadline, CancellationToken cancellationToken)
    {
        if (await store.GetProgressAsync(caller.TeamId, requisitionId, cancellationToken) is null)
        {
            // Nothing reported yet: NOT_FOUND for a requisition that does not exist, else the precondition below.
            await peers.EnsureRequisitionExistsAsync(caller, requisitionId, deadline, cancellationToken);
        }

        var (progress, changed) = await store.ShareAsync(caller.TeamId, requisitionId, note, cancellationToken);
        if (changed)
        {
            await effects.ApplyAsync(requisitionId, deadline, cancellationToken);
        }

        return (progress, changed);
    }

    public async Task<ResultsView> GetResultsAsync(
        Caller caller, string requisitionId, bool includeHistory, ReportKey? after, int pageSize, DateTime deadline, CancellationToken cancellationToken)
    {
        var latest = await store.ListLatestReadingsAsync(caller.TeamId, requisitionId, cancellationToken);
        if (latest.Count == 0)
        {
            await peers.EnsureRequisitionExistsAsync(caller, requisitionId, deadline, cancellationToken);
            return new ResultsView([], Interpretation.Unspecified, false, "", null, 0);
        }

        var page = await store.ListReportPageAsync(caller.TeamId, requisitionId, includeHistory, after, pageSize, PageBudget.MaxBytes, cancellationToken);
        var progress = await store.GetProgressAsync(caller.TeamId, requisitionId, cancellationToken);
        var overall = MarkerReader.Overall(latest.Select(r => r.Interpretation));
        return new ResultsView(page.Reports, overall, progress?.AllReceived ?? false, LifecycleWords.Word(progress?.Stage ?? LifecycleStatus.Unspecified),
            page.Next, latest.Count(r => r.Unsolicited));
    }

    /// <summary>
    /// Reads every marker into <paramref name="report"/> (with its critical tier as the report's team sees it)
    /// and sets the report's overall interpretation, tier, and whether it is unsolicited: a marker of a report
    /// that names no ordered test answers none (seed 003: results need not align with tests).
    /// </summary>
    private void Read(Report report, IEnumerable<Marker> markers)
    {
        foreach (var marker in markers)
        {
            var read = marker.Clone();
            read.Reading = reader.Read(marker);
            read.Reading.CriticalTier = CriticalTiers.Of(reader.Catalog, report.TeamId, read.Reading);
            if (report.ServiceRequestIds.Count == 0 && string.IsNullOrEmpty(marker.ServiceRequestId))
            {
                read.Reading.Flags.Add(MarkerFlag.NoOrderedTest);
                report.UnsolicitedAnalytes.Add(marker.Slug);
            }

            report.Results.Add(read);
        }

        report.Unsolicited = report.UnsolicitedAnalytes.Count > 0;
        report.Metadata.Interpretation = MarkerReader.Overall(report.Results.Select(m => m.Reading.Interpretation));
        report.CriticalTier = CriticalTiers.MostUrgent(report.Results.Select(m => m.Reading.CriticalTier));
    }

    /// <summary>
    /// Results only for a placed, not cancelled requisition, and only for its own service requests
    /// that are not revoked.
    /// </summary>
    private static void EnsureAcceptsResults(Contracts.Requisition.V1.Requisition requisition, Google.Protobuf.Collections.RepeatedField<string> serviceRequestIds)
    {
        if (requisition.Status is OrderStatus.Unspecified or OrderStatus.Cancelled)
        {
            var from = requisition.Status == OrderStatus.Unspecified ? "not_purchased" : requisition.SubStatus;
            throw new IllegalTransitionException("requisition", from, "results",
                requisition.Status == OrderStatus.Unspecified ? ["PlaceRequisition"] : []);
        }

        var byId = requisition.ServiceRequests.ToDictionary(s => s.Id, StringComparer.Ordinal);
        var unknown = new List<FieldViolation>();
        for (var i = 0; i < serviceRequestIds.Count; i++)
        {
            if (!byId.ContainsKey(serviceRequestIds[i]))
            {
                unknown.Add(new FieldViolation($"service_request_ids[{i}]",
                    $"'{serviceRequestIds[i]}' is not a service request of requisition '{requisition.Id}'."));
            }
        }

        if (unknown.Count > 0)
        {
            throw new InvalidArgumentException(unknown);
        }

        var revoked = serviceRequestIds.FirstOrDefault(id => byId[id].Status == ServiceRequestStatus.Revoked);
        if (revoked is not null)
        {
            throw new IllegalTransitionException($"service request {revoked}", "revoked", "results", []);
        }
    }

    private async Task<Report> RepeatAsync(ReportRecord existing, string requestId, string hash, DateTime deadline, CancellationToken cancellationToken)
    {
        RepeatRequests.EnsureSame(existing.RequestHash, hash, "report", existing.Id, "report", requestId);

        // The first attempt may have stopped before its effects landed: push them now.
        await effects.ApplyAsync(existing.Report.RequisitionId, deadline, cancellationToken);
        return existing.Report;
    }

    [LoggerMessage(Level = LogLevel.Information,
        Message = "Report {ReportId} v{Version} stored: {Status}, {Interpretation}, {MarkerCount} markers")]
    private static partial void LogStored(ILogger logger, string reportId, int version, ReportStatus status, Interpretation interpretation, int markerCount);
}
