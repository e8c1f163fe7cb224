using LabMesh.ServiceDefaults.Identity;

namespace LabMesh.ResultsInterpretation.Fhir;

/// <summary>
/// GetFhirBundle's work: the requisition from the Requisition service (with its service requests) and
/// every version of its reports from the store, written by <see cref="FhirBundleWriter"/>. No Firely
/// type appears in this class's members, so the SDK's assemblies load on the first call, not at start-up.
/// </summary>
public sealed class FhirExport(MeshGateway peers, ResultsStore store, TimeProvider time)
{
    /// <summary>The Bundle as FHIR JSON; NOT_FOUND (a domain error) when the team has no such requisition.</summary>
    public async Task<string> GetBundleJsonAsync(Caller caller, string requisitionId, DateTime deadline, CancellationToken cancellationToken)
    {
        var requisition = await peers.GetRequisitionAsync(caller, requisitionId, deadline, cancellationToken);
        var reports = await store.ListReportsAsync(caller.TeamId, requisition.Id, includeHistory: true, cancellationToken);
        return FhirBundleWriter.Write(requisition, reports, time.GetUtcNow());
    }
}
