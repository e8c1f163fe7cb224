using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Testing;

namespace LabMesh.ResultsInterpretation.Tests;

/// <summary>
/// The three services as separate hosts on their own loopback ports and stores, calling each other
/// over gRPC as deployed: ResultsInterpretation → Requisition → ServiceRequest, and
/// ResultsInterpretation → ServiceRequest.
/// </summary>
public sealed class ResultsMesh : IAsyncDisposable
{
    private readonly Backend _backend;
    private readonly MeshChannelSet _channels = new();
    private readonly MeshService _serviceRequests;
    private readonly MeshService _requisitions;
    private readonly MeshService _results;
    private readonly Dictionary<string, string?> _firstRequisitionSettings;

    private ResultsMesh(Backend backend, MeshService serviceRequests, MeshService requisitions, MeshService results)
    {
        _backend = backend;
        _serviceRequests = serviceRequests;
        _requisitions = requisitions;
        _results = results;
        _firstRequisitionSettings = requisitions.Settings;
    }

    public ServiceHost ServiceRequests => _serviceRequests.Host;

    public ServiceHost Requisitions => _requisitions.Host;

    public ServiceHost Results => _results.Host;

    public IEnumerable<LogCapture> Logs => [ServiceRequests.Logs, Requisitions.Logs, Results.Logs];

    /// <param name="backend">The stores of the three services.</param>
    /// <param name="redis">Redis for all, or null for in-process bus and cache.</param>
    /// <param name="resultsSettings">More settings of the ResultsInterpretation service (e.g. <c>LabMesh:PeerWork:*</c>).</param>
    public static async Task<ResultsMesh> StartAsync(Backend backend, string? redis = null, IReadOnlyDictionary<string, string?>? resultsSettings = null)
    {
        var serviceRequests = await MeshService.StartAsync(MeshHosts.StartServiceRequestsAsync, await TestSettings.CreateAsync(backend, redis));

        var requisitionSettings = await TestSettings.CreateAsync(backend, redis);
        requisitionSettings["LabMesh:Services:ServiceRequest"] = serviceRequests.Host.Address;
        var requisitions = await MeshService.StartAsync(MeshHosts.StartRequisitionsAsync, requisitionSettings);

        var settings = await TestSettings.CreateAsync(backend, redis);
        settings["LabMesh:Services:ServiceRequest"] = serviceRequests.Host.Address;
        settings["LabMesh:Services:Requisition"] = requisitions.Host.Address;
        settings["LabMesh:Services:CallTimeout"] = "00:00:02";
        foreach (var (key, value) in resultsSettings ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        return new ResultsMesh(backend, serviceRequests, requisitions, await MeshService.StartAsync(MeshHosts.StartResultsAsync, settings));
    }

    /// <summary>Stops the ServiceRequest service (its port refuses connections until restarted).</summary>
    public Task StopServiceRequestsAsync() => _serviceRequests.StopAsync();

    /// <summary>Starts the ServiceRequest service again on the same port with the same store.</summary>
    public Task RestartServiceRequestsAsync() => _serviceRequests.RestartAsync();

    /// <summary>Stops the Requisition service (its port refuses connections until restarted).</summary>
    public Task StopRequisitionsAsync() => _requisitions.StopAsync();

    /// <summary>Starts the Requisition service again on the same port with the same store.</summary>
    public Task RestartRequisitionsAsync() => _requisitions.RestartAsync();

    /// <summary>
    /// Replaces the Requisition service by one on the same port with a fresh, empty store: it knows none of the
    /// requisitions made so far, so it refuses their results milestones (NOT_FOUND), as a real peer refuses.
    /// </summary>
    public async Task RestartRequisitionsWithNewStoreAsync()
    {
        var fresh = await TestSettings.CreateAsync(_backend);
        fresh["LabMesh:Services:ServiceRequest"] = ServiceRequests.Address;
        await _requisitions.ReplaceAsync(fresh);
    }

    /// <summary>Replaces the Requisition service by one on the same port with the store it started with.</summary>
    public Task RestartRequisitionsWithFirstStoreAsync() => _requisitions.ReplaceAsync(_firstRequisitionSettings);

    public ResultsInterpretationService.ResultsInterpretationServiceClient ResultsClient(string team) => new(_channels.Invoker(Results, team));

    public RequisitionService.RequisitionServiceClient RequisitionClient(string team) => new(_channels.Invoker(Requisitions, team));

    public ServiceRequestService.ServiceRequestServiceClient ServiceRequestClient(string team) => new(_channels.Invoker(ServiceRequests, team));

    /// <summary>Events the ResultsInterpretation service has published (its bus), for one requisition.</summary>
    public Task<IReadOnlyList<Event>> ResultsEventsAsync(string requisitionId) => _results.EventsAsync(requisitionId);

    /// <summary>A placed test-kit requisition of <paramref name="tests"/> test codes, returned with its service requests.</summary>
    public async Task<Contracts.Requisition.V1.Requisition> PlaceOrderAsync(string team, params string[] tests)
    {
        var request = new CreateRequisitionRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            Patient = new Patient { Id = "patient-7", GivenName = "Ada", FamilyName = "Lovelace", BirthDate = "1815-12-10", Sex = "female" },
            OrderingProvider = new Provider { Id = "prov-1", Name = "Dr. Jack Smith" },
            Lab = "LabCorp",
            Modality = TestModality.Testkit,
            Place = true,
        };
        request.Tests.AddRange(tests.Select(code => new OrderedTest { Code = code, PartnerId = "partner-1" }));
        var response = await RequisitionClient(team).CreateRequisitionAsync(request, deadline: DateTime.UtcNow.AddSeconds(30));
        return response.Requisition;
    }

    public async ValueTask DisposeAsync()
    {
        _channels.Dispose();
        await _results.DisposeAsync();
        await _requisitions.DisposeAsync();
        await _serviceRequests.DisposeAsync();
    }
}
