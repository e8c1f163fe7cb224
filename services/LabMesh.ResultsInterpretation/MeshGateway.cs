using Grpc.Core;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Core.Errors;
using LabMesh.Security.Identity;
using LabMesh.ServiceDefaults.Peers;
using Microsoft.Extensions.Options;

namespace LabMesh.ResultsInterpretation;

/// <summary>
/// The ResultsInterpretation service's calls to the Requisition and ServiceRequest services
/// (<c>LabMesh:Services:Requisition</c>, <c>LabMesh:Services:ServiceRequest</c>). Each carries the
/// caller's team and a deadline no later than the caller's; each method used is idempotent, so the
/// channels retry UNAVAILABLE.
/// </summary>
public sealed class MeshGateway
{
    private readonly RequisitionService.RequisitionServiceClient _requisitions;
    private readonly ServiceRequestService.ServiceRequestServiceClient _serviceRequests;
    private readonly TimeSpan _timeout;
    private readonly ServiceTokens _tokens;

    public MeshGateway(
        RequisitionService.RequisitionServiceClient requisitions,
        ServiceRequestService.ServiceRequestServiceClient serviceRequests,
        IOptions<PeerOptions> options,
        ServiceTokens tokens)
    {
        _requisitions = requisitions;
        _serviceRequests = serviceRequests;
        _tokens = tokens;
        _timeout = options.Value.CallTimeout;
    }

    /// <summary>The requisition with its service requests; NOT_FOUND (a domain error) when the team has no such requisition.</summary>
    public async Task<Contracts.Requisition.V1.Requisition> GetRequisitionAsync(
        Caller caller, string id, DateTime deadline, CancellationToken cancellationToken)
    {
        try
        {
            var response = await _requisitions.GetRequisitionAsync(new GetRequisitionRequest { Id = id }, Options(caller, deadline, cancellationToken));
            return response.Requisition;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            throw new NotFoundException("requisition", id);
        }
    }

    /// <summary>Throws NOT_FOUND (a domain error) when the team has no such requisition.</summary>
    public async Task EnsureRequisitionExistsAsync(Caller caller, string id, DateTime deadline, CancellationToken cancellationToken)
    {
        try
        {
            await _requisitions.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = id }, Options(caller, deadline, cancellationToken));
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.NotFound)
        {
            throw new NotFoundException("requisition", id);
        }
    }

    /// <summary>
    /// Records a report's results on its service requests; returns every service request of the requisition as the change
    /// left them (empty from a ServiceRequest service that does not answer them yet).
    /// </summary>
    public async Task<IReadOnlyList<Contracts.ServiceRequest.V1.ServiceRequest>> RecordResultsAsync(
        Caller caller, string requisitionId, IEnumerable<string> serviceRequestIds, bool final, string cause, DateTime deadline,
        CancellationToken cancellationToken)
    {
        var request = new RecordResultsRequest { RequisitionId = requisitionId, Final = final, Cause = cause };
        request.ServiceRequestIds.AddRange(serviceRequestIds);
        var response = await _serviceRequests.RecordResultsAsync(request, Options(caller, deadline, cancellationToken));
        return response.RequisitionServiceRequests;
    }

    /// <summary>
    /// Records a results milestone; <paramref name="serviceRequests"/>, when not empty, are every service request of the
    /// requisition as <see cref="RecordResultsAsync"/> just answered them (so the Requisition service need not read them).
    /// </summary>
    public async Task RecordResultsStageAsync(
        Caller caller, string requisitionId, LifecycleStatus stage, long sequence, IEnumerable<Contracts.ServiceRequest.V1.ServiceRequest> serviceRequests,
        DateTime deadline, CancellationToken cancellationToken)
    {
        var request = new RecordResultsStageRequest { Id = requisitionId, Stage = stage, Sequence = sequence };
        request.ServiceRequests.AddRange(serviceRequests);
        await _requisitions.RecordResultsStageAsync(request, Options(caller, deadline, cancellationToken));
    }

    private CallOptions Options(Caller caller, DateTime deadline, CancellationToken cancellationToken) =>
        PeerChannel.Options(caller, _tokens, ResultsStore.ServiceName, deadline, _timeout, cancellationToken);
}
