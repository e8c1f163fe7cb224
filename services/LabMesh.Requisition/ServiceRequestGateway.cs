using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Security.Identity;
using LabMesh.ServiceDefaults.Peers;
using Microsoft.Extensions.Options;

namespace LabMesh.Requisition;

/// <summary>
/// The Requisition service's calls to the ServiceRequest service. Every call carries the caller's
/// team, a deadline no later than the caller's own (so one deadline bounds the whole chain), the
/// caller's cancellation, and is retried on UNAVAILABLE: every method used here is idempotent.
/// </summary>
public sealed class ServiceRequestGateway
{
    private readonly ServiceRequestService.ServiceRequestServiceClient _client;
    private readonly TimeSpan _timeout;
    private readonly ServiceTokens _tokens;

    public ServiceRequestGateway(ServiceRequestService.ServiceRequestServiceClient client, IOptions<PeerOptions> options, ServiceTokens tokens)
    {
        _client = client;
        _tokens = tokens;
        _timeout = options.Value.CallTimeout;
    }

    public async Task<IReadOnlyList<Contracts.ServiceRequest.V1.ServiceRequest>> CreateAsync(
        Caller caller, string requisitionId, IEnumerable<NewServiceRequest> items, DateTime deadline, CancellationToken cancellationToken)
    {
        var request = new CreateServiceRequestsRequest { RequisitionId = requisitionId };
        request.ServiceRequests.AddRange(items);
        var response = await _client.CreateServiceRequestsAsync(request, Options(caller, deadline, cancellationToken));
        return response.ServiceRequests;
    }

    public async Task ConfirmAsync(Caller caller, string requisitionId, DateTime deadline, CancellationToken cancellationToken) =>
        await _client.ConfirmServiceRequestsAsync(new ConfirmServiceRequestsRequest { RequisitionId = requisitionId },
            Options(caller, deadline, cancellationToken));

    /// <summary>Applies an order event; returns every service request of the requisition as it left them.</summary>
    public async Task<IReadOnlyList<Contracts.ServiceRequest.V1.ServiceRequest>> ApplyOrderEventAsync(
        Caller caller, string requisitionId, string orderStatus, long orderEventId, DateTime deadline, CancellationToken cancellationToken) =>
        (await _client.ApplyOrderEventAsync(new ApplyOrderEventRequest
        {
            RequisitionId = requisitionId,
            OrderStatus = orderStatus,
            OrderEventId = orderEventId,
        }, Options(caller, deadline, cancellationToken))).ServiceRequests;

    /// <summary>The owner's reschedule: reopens the requisition's service requests in APPOINTMENT_ISSUE.</summary>
    public Task<RescheduleServiceRequestsResponse> RescheduleAsync(
        Caller caller, string requisitionId, string reason, DateTime deadline, CancellationToken cancellationToken) =>
        _client.RescheduleServiceRequestsAsync(new RescheduleServiceRequestsRequest { RequisitionId = requisitionId, Reason = reason },
            Options(caller, deadline, cancellationToken)).ResponseAsync;

    /// <summary>Every service request of one requisition, pending ones too, in line order.</summary>
    public async Task<IReadOnlyList<Contracts.ServiceRequest.V1.ServiceRequest>> ListForRequisitionAsync(
        Caller caller, string requisitionId, DateTime deadline, CancellationToken cancellationToken)
    {
        var response = await _client.ListServiceRequestsAsync(new ListServiceRequestsRequest
        {
            RequisitionId = requisitionId,
            IncludePending = true,
            PageSize = 500,
        }, Options(caller, deadline, cancellationToken));
        return response.ServiceRequests.OrderBy(s => s.Line).ToList();
    }


    private Grpc.Core.CallOptions Options(Caller caller, DateTime deadline, CancellationToken cancellationToken) =>
        PeerChannel.Options(caller, _tokens, RequisitionStore.ServiceName, deadline, _timeout, cancellationToken);
}
