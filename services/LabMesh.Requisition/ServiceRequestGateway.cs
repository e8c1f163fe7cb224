using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.ServiceDefaults.Identity;
using Microsoft.Extensions.Options;

namespace LabMesh.Requisition;

/// <summary>Where the Requisition service finds its peers. Section <c>LabMesh:Services</c>.</summary>
public sealed class PeerOptions
{
    /// <summary>
    /// The ServiceRequest service: <c>http://host:port</c>, or <c>dns:///host:port</c> to balance over
    /// every address of a Kubernetes headless service. Default: this process (the all-in-one host).
    /// </summary>
    public string ServiceRequest { get; set; } = "http://127.0.0.1:5000";

    /// <summary>The longest a call to a peer may take when the caller's own deadline is later or absent.</summary>
    public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(5);
}

/// <summary>
/// The Requisition service's calls to the ServiceRequest service. Every call carries the caller's
/// team, a deadline no later than the caller's own (so one deadline bounds the whole chain), the
/// caller's cancellation, and is retried on UNAVAILABLE: every method used here is idempotent.
/// </summary>
public sealed class ServiceRequestGateway : IDisposable
{
    private readonly GrpcChannel _channel;
    private readonly ServiceRequestService.ServiceRequestServiceClient _client;
    private readonly TimeSpan _timeout;

    public ServiceRequestGateway(IOptions<PeerOptions> options)
    {
        var peers = options.Value;
        _timeout = peers.CallTimeout;
        var retry = new MethodConfig
        {
            Names = { new MethodName { Service = "labmesh.servicerequest.v1.ServiceRequestService" } },
            RetryPolicy = new RetryPolicy
            {
                MaxAttempts = 4,
                InitialBackoff = TimeSpan.FromMilliseconds(50),
                MaxBackoff = TimeSpan.FromSeconds(1),
                BackoffMultiplier = 2,
                RetryableStatusCodes = { StatusCode.Unavailable },
            },
        };
        _channel = GrpcChannel.ForAddress(peers.ServiceRequest, new GrpcChannelOptions
        {
            ServiceConfig = new ServiceConfig { MethodConfigs = { retry } },
            Credentials = peers.ServiceRequest.StartsWith("dns:", StringComparison.Ordinal) ? ChannelCredentials.Insecure : null,
        });
        _client = new ServiceRequestService.ServiceRequestServiceClient(_channel);
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

    public async Task ApplyOrderEventAsync(
        Caller caller, string requisitionId, string orderStatus, long orderEventId, DateTime deadline, CancellationToken cancellationToken) =>
        await _client.ApplyOrderEventAsync(new ApplyOrderEventRequest
        {
            RequisitionId = requisitionId,
            OrderStatus = orderStatus,
            OrderEventId = orderEventId,
        }, Options(caller, deadline, cancellationToken));

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

    public void Dispose() => _channel.Dispose();

    private CallOptions Options(Caller caller, DateTime deadline, CancellationToken cancellationToken)
    {
        var own = DateTime.UtcNow + _timeout;
        return new CallOptions(caller.ToMetadata(RequisitionStore.ServiceName), deadline < own ? deadline : own, cancellationToken);
    }
}
