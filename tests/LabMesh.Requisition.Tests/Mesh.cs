using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Testing;

namespace LabMesh.Requisition.Tests;

/// <summary>
/// The two services as separate hosts on their own loopback ports, the Requisition service calling
/// the ServiceRequest service over gRPC as it does when deployed.
/// </summary>
public sealed class Mesh : IAsyncDisposable
{
    private readonly Backend _backend;
    private readonly MeshService _serviceRequests;
    private readonly MeshService _requisitions;
    private readonly MeshChannelSet _channels = new();

    private Mesh(Backend backend, MeshService serviceRequests, MeshService requisitions)
    {
        _backend = backend;
        _serviceRequests = serviceRequests;
        _requisitions = requisitions;
    }

    public ServiceHost ServiceRequests => _serviceRequests.Host;

    public ServiceHost Requisitions => _requisitions.Host;

    /// <param name="backend">The stores of both services.</param>
    /// <param name="redis">Redis for both, or null for in-process bus and cache.</param>
    /// <param name="requisitionSettings">More settings of the Requisition service (e.g. <c>LabMesh:PeerWork:*</c>).</param>
    public static async Task<Mesh> StartAsync(Backend backend, string? redis = null, IReadOnlyDictionary<string, string?>? requisitionSettings = null)
    {
        var serviceRequests = await MeshService.StartAsync(MeshHosts.StartServiceRequestsAsync, await TestSettings.CreateAsync(backend, redis));
        var settings = await TestSettings.CreateAsync(backend, redis);
        settings["LabMesh:Services:ServiceRequest"] = serviceRequests.Host.Address;
        settings["LabMesh:Services:CallTimeout"] = "00:00:05";
        foreach (var (key, value) in requisitionSettings ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return new Mesh(backend, serviceRequests, await MeshService.StartAsync(MeshHosts.StartRequisitionsAsync, settings));
    }

    /// <summary>Stops the ServiceRequest service (its port refuses connections until restarted).</summary>
    public Task StopServiceRequestsAsync() => _serviceRequests.StopAsync();

    /// <summary>Starts the ServiceRequest service again on the same port with the same store.</summary>
    public Task RestartServiceRequestsAsync() => _serviceRequests.RestartAsync();

    /// <summary>
    /// Replaces the ServiceRequest service by one on the same port with a fresh, empty store: it knows none of
    /// the service requests made so far, so it refuses their order events (NOT_FOUND), as a real peer refuses.
    /// </summary>
    public async Task RestartServiceRequestsWithNewStoreAsync() => await _serviceRequests.ReplaceAsync(await TestSettings.CreateAsync(_backend));

    /// <summary>Stops the Requisition service (what it held in memory goes with it).</summary>
    public Task StopRequisitionsAsync() => _requisitions.StopAsync();

    /// <summary>Starts the Requisition service again on the same port with the same store.</summary>
    public Task RestartRequisitionsAsync() => _requisitions.RestartAsync();

    public RequisitionService.RequisitionServiceClient RequisitionClient(string team) =>
        new(_channels.Invoker(Requisitions, team));

    public ServiceRequestService.ServiceRequestServiceClient ServiceRequestClient(string team, string? partner = null) =>
        new(_channels.Invoker(ServiceRequests, team, partner));

    /// <summary>Events the Requisition service has published (its bus), for one requisition.</summary>
    public Task<IReadOnlyList<LabMesh.Contracts.Common.V1.Event>> RequisitionEventsAsync(string requisitionId) => _requisitions.EventsAsync(requisitionId);

    /// <summary>Events the ServiceRequest service has published, for one requisition.</summary>
    public Task<IReadOnlyList<LabMesh.Contracts.Common.V1.Event>> ServiceRequestEventsAsync(string requisitionId) => _serviceRequests.EventsAsync(requisitionId);

    public async ValueTask DisposeAsync()
    {
        _channels.Dispose();
        await _requisitions.DisposeAsync();
        await _serviceRequests.DisposeAsync();
    }
}
