using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.ServiceDefaults.Peers;

namespace LabMesh.Cli.Mesh;

/// <summary>What every command needs to reach the mesh.</summary>
/// <param name="Address">A normalized target (see <see cref="MeshTarget"/>).</param>
/// <param name="Team">The tenant every call names.</param>
/// <param name="Timeout">The deadline of each unary call.</param>
/// <param name="Token">The bearer token of <c>--token</c>, if given (see <see cref="Credentials"/>).</param>
internal sealed record MeshSettings(string Address, string Team, TimeSpan Timeout, string? Token = null);

/// <summary>One channel to the mesh and the generated stubs on it, every call carrying the CLI's identity.</summary>
internal sealed class MeshClient : IDisposable
{
    private readonly GrpcChannel _channel;

    public MeshClient(MeshSettings settings)
    {
        Address = settings.Address;
        Timeout = settings.Timeout;
        Identity = CallIdentity.ForTeam(settings.Team, Credentials.Find(settings.Token));
        _channel = MeshChannels.Create(Address);
        var invoker = Identity.Apply(_channel.CreateCallInvoker());
        Requisitions = new RequisitionService.RequisitionServiceClient(invoker);
        ServiceRequests = new ServiceRequestService.ServiceRequestServiceClient(invoker);
        Results = new ResultsInterpretationService.ResultsInterpretationServiceClient(invoker);
        Notifications = new NotificationService.NotificationServiceClient(invoker);
    }

    public string Address { get; }

    public TimeSpan Timeout { get; }

    public CallIdentity Identity { get; }

    public RequisitionService.RequisitionServiceClient Requisitions { get; }

    public ServiceRequestService.ServiceRequestServiceClient ServiceRequests { get; }

    public ResultsInterpretationService.ResultsInterpretationServiceClient Results { get; }

    public NotificationService.NotificationServiceClient Notifications { get; }

    /// <summary>The Notification service called as someone else of the same team (a clinician acknowledging).</summary>
    public NotificationService.NotificationServiceClient NotificationsAs(CallIdentity identity) =>
        new(identity.Apply(_channel.CreateCallInvoker()));

    /// <summary>Options for one unary call: the deadline and the command's cancellation.</summary>
    public CallOptions UnaryOptions(CancellationToken cancellationToken) =>
        new(deadline: DateTime.UtcNow.Add(Timeout), cancellationToken: cancellationToken);

    /// <summary>
    /// Makes one unary call with <see cref="UnaryOptions"/>; a failure becomes a
    /// <see cref="CallFailedException"/> naming <paramref name="method"/>, the status and the address.
    /// </summary>
    public async Task<TResponse> CallAsync<TResponse>(
        string method, Func<CallOptions, AsyncUnaryCall<TResponse>> call, CancellationToken cancellationToken)
    {
        try
        {
            return await call(UnaryOptions(cancellationToken));
        }
        catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new CallFailedException(method, Address, e);
        }
    }

    public void Dispose() => _channel.Dispose();
}
