using LabMesh.Contracts.Results.V1;
using LabMesh.Core.Errors;
using LabMesh.Security.Identity;

namespace LabMesh.ResultsInterpretation.Fhir;

/// <summary>One Bundle of GetFhirBundle: its FHIR JSON (UTF-8) and where the next begins (null on the last).</summary>
public sealed record FhirPage(byte[] Json, ReportKey? Next);

/// <summary>
/// GetFhirBundle's work: the requisition from the Requisition service (with its service requests) and
/// one page of its report versions from the store, written by <see cref="FhirBundleWriter"/>. No Firely
/// type appears in this class's members, so the SDK's assemblies load on the first call, not at start-up.
/// </summary>
/// <remarks>
/// A page is bounded twice: the store stops before <see cref="StoreBytes"/> of stored reports (as GetResults
/// does), and the written JSON, which is larger than the stored protobuf (an Observation per marker, names
/// instead of field numbers), must stay under <see cref="MaxJsonBytes"/>: when it does not, the page keeps its
/// first half and is written again. So a Bundle never meets the transport's 4 MiB limit, however many
/// versions a requisition has. One report version alone over the budget (a report near SubmitResults' 1 MiB
/// limit with many short markers) is RESOURCE_EXHAUSTED, naming the report: it cannot be cut.
/// </remarks>
public sealed class FhirExport(MeshGateway peers, ResultsStore store, TimeProvider time)
{
    /// <summary>Stored report bytes per page (the JSON is larger than the stored protobuf).</summary>
    public const int StoreBytes = 1024 * 1024;

    /// <summary>The most JSON one Bundle may hold, under the 4 MiB message limit with room for the response's other fields.</summary>
    public const int MaxJsonBytes = 3 * 1024 * 1024;

    /// <summary>The page of <paramref name="requisitionId"/> after <paramref name="after"/>; NOT_FOUND (a domain error) when the team has no such requisition.</summary>
    public async Task<FhirPage> GetBundleAsync(
        Caller caller, string requisitionId, ReportKey? after, int pageSize, DateTime deadline, CancellationToken cancellationToken)
    {
        var requisition = await peers.GetRequisitionAsync(caller, requisitionId, deadline, cancellationToken);
        var page = await store.ListReportPageAsync(caller.TeamId, requisition.Id, includeHistory: true, after, pageSize, StoreBytes, cancellationToken);
        var reports = page.Reports.ToList();
        var next = page.Next;

        // The versions of one report are contiguous in the store's order (id, version), so only the page's first
        // report can have an earlier version on an earlier page: it decides whether this one is amended or corrected.
        var before = new Dictionary<string, Report>(StringComparer.Ordinal);
        if (reports.Count > 0 && reports[0].Version > 1 &&
            await store.GetReportAsync(caller.TeamId, reports[0].Id, reports[0].Version - 1, cancellationToken) is { } earlier)
        {
            before[earlier.Report.Id] = earlier.Report;
        }

        var now = time.GetUtcNow();
        while (true)
        {
            var link = next is null ? null : $"/v1/results/requisitions/{Uri.EscapeDataString(requisition.Id)}/fhir?pageToken={Uri.EscapeDataString(next.ToToken())}";
            var json = FhirBundleWriter.Write(requisition, reports, now, before, link);
            if (json.Length <= MaxJsonBytes)
            {
                return new FhirPage(json, next);
            }

            if (reports.Count <= 1)
            {
                throw new ResourceExhaustedException(
                    "FHIR_BUNDLE_TOO_LARGE",
                    $"Report {reports[0].Id} version {reports[0].Version} alone is {json.Length} bytes as FHIR JSON, over a Bundle's {MaxJsonBytes}; read it with GetReport.",
                    new Dictionary<string, string>
                    {
                        ["report_id"] = reports[0].Id,
                        ["version"] = reports[0].Version.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        ["bundle_bytes"] = json.Length.ToString(System.Globalization.CultureInfo.InvariantCulture),
                        ["max_bytes"] = MaxJsonBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
                    });
            }

            var keep = reports.Count / 2;
            next = new ReportKey(reports[keep - 1].Id, reports[keep - 1].Version);
            reports.RemoveRange(keep, reports.Count - keep);
        }
    }
}
