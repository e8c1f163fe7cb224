using Grpc.Core;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Messaging.Events;
using LabMesh.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.Requisition.Tests;

/// <summary>
/// The two services as separate hosts on their own loopback ports, the Requisition service calling
/// the ServiceRequest service over gRPC as it does when deployed.
/// </summary>
public sealed class Mesh : IAsyncDisposable
{
    private readonly Backend _backend;
    private readonly Dictionary<string, string?> _requisitionSettings;
    private readonly List<Grpc.Net.Client.GrpcChannel> _channels = [];
    private Dictionary<string, string?> _serviceRequestSettings;

    private Mesh(Backend backend, Dictionary<string, string?> serviceRequestSettings, ServiceHost serviceRequests, Dictionary<string, string?> requisitionSettings, ServiceHost requisitions)
    {
        _backend = backend;
        _serviceRequestSettings = serviceRequestSettings;
        _requisitionSettings = requisitionSettings;
        ServiceRequests = serviceRequests;
        Requisitions = requisitions;
    }

    public ServiceHost ServiceRequests { get; private set; }

    public ServiceHost Requisitions { get; private set; }

    /// <param name="backend">The stores of both services.</param>
    /// <param name="redis">Redis for both, or null for in-process bus and cache.</param>
    /// <param name="requisitionSettings">More settings of the Requisition service (e.g. <c>LabMesh:PeerWork:*</c>).</param>
    public static async Task<Mesh> StartAsync(Backend backend, string? redis = null, IReadOnlyDictionary<string, string?>? requisitionSettings = null)
    {
        var serviceRequestSettings = await TestSettings.CreateAsync(backend, redis);
        var serviceRequests = await MeshHosts.StartServiceRequestsAsync(serviceRequestSettings, port: 0);
        var settings = await TestSettings.CreateAsync(backend, redis);
        settings["LabMesh:Services:ServiceRequest"] = serviceRequests.Address;
        settings["LabMesh:Services:CallTimeout"] = "00:00:05";
        foreach (var (key, value) in requisitionSettings ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        var requisitions = await MeshHosts.StartRequisitionsAsync(settings);
        return new Mesh(backend, serviceRequestSettings, serviceRequests, settings, requisitions);
    }

    /// <summary>Stops the ServiceRequest service (its port refuses connections until restarted).</summary>
    public Task StopServiceRequestsAsync() => ServiceRequests.DisposeAsync().AsTask();

    /// <summary>Starts the ServiceRequest service again on the same port with the same store.</summary>
    public async Task RestartServiceRequestsAsync() =>
        ServiceRequests = await MeshHosts.StartServiceRequestsAsync(_serviceRequestSettings, ServiceRequests.Port);

    /// <summary>
    /// Replaces the ServiceRequest service by one on the same port with a fresh, empty store: it knows none of
    /// the service requests made so far, so it refuses their order events (NOT_FOUND), as a real peer refuses.
    /// </summary>
    public async Task RestartServiceRequestsWithNewStoreAsync()
    {
        var port = ServiceRequests.Port;
        await ServiceRequests.DisposeAsync();
        _serviceRequestSettings = await TestSettings.CreateAsync(_backend);
        ServiceRequests = await MeshHosts.StartServiceRequestsAsync(_serviceRequestSettings, port);
    }

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
