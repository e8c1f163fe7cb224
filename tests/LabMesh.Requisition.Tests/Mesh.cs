using Grpc.Core;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.ServiceDefaults.Events;
using LabMesh.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.Requisition.Tests;

/// <summary>
/// The two services as separate hosts on their own loopback ports, the Requisition service calling
/// the ServiceRequest service over gRPC as it does when deployed.
/// </summary>
public sealed class Mesh : IAsyncDisposable
{
    private readonly Dictionary<string, string?> _serviceRequestSettings;
    private readonly Dictionary<string, string?> _requisitionSettings;
    private readonly List<Grpc.Net.Client.GrpcChannel> _channels = [];

    private Mesh(Dictionary<string, string?> serviceRequestSettings, ServiceHost serviceRequests, Dictionary<string, string?> requisitionSettings, ServiceHost requisitions)
    {
        _serviceRequestSettings = serviceRequestSettings;
        _requisitionSettings = requisitionSettings;
        ServiceRequests = serviceRequests;
        Requisitions = requisitions;
    }

    public ServiceHost ServiceRequests { get; private set; }

    public ServiceHost Requisitions { get; private set; }

    public static async Task<Mesh> StartAsync(Backend backend, string? redis = null)
    {
        var serviceRequestSettings = await TestSettings.CreateAsync(backend, redis);
        var serviceRequests = await MeshHosts.StartServiceRequestsAsync(serviceRequestSettings, port: 0);
        var requisitionSettings = await TestSettings.CreateAsync(backend, redis);
        requisitionSettings["LabMesh:Services:ServiceRequest"] = serviceRequests.Address;
        requisitionSettings["LabMesh:Services:CallTimeout"] = "00:00:05";
        var requisitions = await MeshHosts.StartRequisitionsAsync(requisitionSettings);
        return new Mesh(serviceRequestSettings, serviceRequests, requisitionSettings, requisitions);
    }

    /// <summary>Stops the ServiceRequest service (its port refuses connections until restarted).</summary>
    public Task StopServiceRequestsAsync() => ServiceRequests.DisposeAsync().AsTask();

    /// <summary>Starts the ServiceRequest service again on the same port with the same store.</summary>
    public async Task RestartServiceRequestsAsync() =>
        ServiceRequests = await MeshHosts.StartServiceRequestsAsync(_serviceRequestSettings, ServiceRequests.Port);

    /// <summary>Stops the Requisition service (what it held in memory goes with it).</summary>
    public Task StopRequisitionsAsync() => Requisitions.DisposeAsync().AsTask();

    /// <summary>Starts the Requisition service again on the same port with the same store.</summary>
    public async Task RestartRequisitionsAsync() =>
        Requisitions = await MeshHosts.StartRequisitionsAsync(_requisitionSettings, Requisitions.Port);

    public RequisitionService.RequisitionServiceClient RequisitionClient(string team) =>
        new(Invoker(Requisitions, team));

    public ServiceRequestService.ServiceRequestServiceClient ServiceRequestClient(string team, string? partner = null) =>
        new(Invoker(ServiceRequests, team, partner));

    /// <summary>Events the Requisition service has published (its bus), for one requisition.</summary>
    public async Task<IReadOnlyList<LabMesh.Contracts.Common.V1.Event>> RequisitionEventsAsync(string requisitionId) =>
        (await Requisitions.Services.GetRequiredService<IEventBus>().ReadAsync(null, 10_000, CancellationToken.None))
        .Select(e => e.Event).Where(e => e.RequisitionId == requisitionId).ToList();

    /// <summary>Events the ServiceRequest service has published, for one requisition.</summary>
    public async Task<IReadOnlyList<LabMesh.Contracts.Common.V1.Event>> ServiceRequestEventsAsync(string requisitionId) =>
        (await ServiceRequests.Services.GetRequiredService<IEventBus>().ReadAsync(null, 10_000, CancellationToken.None))
        .Select(e => e.Event).Where(e => e.RequisitionId == requisitionId).ToList();

    public async ValueTask DisposeAsync()
    {
        foreach (var channel in _channels)
        {
            channel.Dispose();
        }

        await Requisitions.DisposeAsync();
        await ServiceRequests.DisposeAsync();
    }

    private CallInvoker Invoker(ServiceHost host, string team, string? partner = null)
    {
        var channel = host.CreateChannel();
        _channels.Add(channel);
        return TestCaller.Invoker(channel, team, partner);
    }

}
