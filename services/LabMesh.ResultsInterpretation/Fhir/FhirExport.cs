using LabMesh.Security.Identity;

namespace LabMesh.ResultsInterpretation.Fhir;

/// <summary>
/// GetFhirBundle's work: the requisition from the Requisition service (with its service requests) and
/// every version of its reports from the store, written by <see cref="FhirBundleWriter"/>. No Firely
/// type appears in this class's members, so the SDK's assemblies load on the first call, not at start-up.
/// </summary>
public sealed class FhirExport(MeshGateway peers, ResultsStore store, TimeProvider time)
{
    // The store's pages (every version of every report, read page by page as GetResults reads them).
    private const int PageSize = 500;
    private const int PageBytes = 3 * 1024 * 1024;

    /// <summary>The Bundle as FHIR JSON; NOT_FOUND (a domain error) when the team has no such requisition.</summary>
    public async Task<string> GetBundleJsonAsync(Caller caller, string requisitionId, DateTime deadline, CancellationToken cancellationToken)
    {
        var requisition = await peers.GetRequisitionAsync(caller, requisitionId, deadline, cancellationToken);
        var reports = new List<LabMesh.Contracts.Results.V1.Report>();
        ReportKey? after = null;
        do
        {
            var page = await store.ListReportPageAsync(caller.TeamId, requisition.Id, includeHistory: true, after, PageSize, PageBytes, cancellationToken);
            reports.AddRange(page.Reports);
            after = page.Next;
        }
        while (after is not null);

        return FhirBundleWriter.Write(requisition, reports, time.GetUtcNow());
    }
}
