using Grpc.Net.Client;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Messaging.Events;
using LabMesh.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.ResultsInterpretation.Tests;

/// <summary>
/// The three services as separate hosts on their own loopback ports and stores, calling each other
/// over gRPC as deployed: ResultsInterpretation → Requisition → ServiceRequest, and
/// ResultsInterpretation → ServiceRequest.
/// </summary>
public sealed class ResultsMesh : IAsyncDisposable
{
    private readonly Backend _backend;
    private readonly List<GrpcChannel> _channels = [];
    private readonly Dictionary<string, string?> _serviceRequestSettings;
    private readonly Dictionary<string, string?> _firstRequisitionSettings;
    private Dictionary<string, string?> _requisitionSettings;

    private ResultsMesh(
        Backend backend,
        Dictionary<string, string?> serviceRequestSettings,
        Dictionary<string, string?> requisitionSettings,
        ServiceHost serviceRequests,
        ServiceHost requisitions,
        ServiceHost results)
    {
        _backend = backend;
        _serviceRequestSettings = serviceRequestSettings;
        _requisitionSettings = requisitionSettings;
        _firstRequisitionSettings = requisitionSettings;
        ServiceRequests = serviceRequests;
        Requisitions = requisitions;
        Results = results;
    }

    public ServiceHost ServiceRequests { get; private set; }

    public ServiceHost Requisitions { get; private set; }

    public ServiceHost Results { get; }

    public IEnumerable<LogCapture> Logs => [ServiceRequests.Logs, Requisitions.Logs, Results.Logs];

    /// <param name="backend">The stores of the three services.</param>
    /// <param name="redis">Redis for all, or null for in-process bus and cache.</param>
    /// <param name="resultsSettings">More settings of the ResultsInterpretation service (e.g. <c>LabMesh:PeerWork:*</c>).</param>
    public static async Task<ResultsMesh> StartAsync(Backend backend, string? redis = null, IReadOnlyDictionary<string, string?>? resultsSettings = null)
    {
        var serviceRequestSettings = await TestSettings.CreateAsync(backend, redis);
        var serviceRequests = await MeshHosts.StartServiceRequestsAsync(serviceRequestSettings, port: 0);

        var requisitionSettings = await TestSettings.CreateAsync(backend, redis);
        requisitionSettings["LabMesh:Services:ServiceRequest"] = serviceRequests.Address;
        var requisitions = await MeshHosts.StartRequisitionsAsync(requisitionSettings);

        var settings = await TestSettings.CreateAsync(backend, redis);
        settings["LabMesh:Services:ServiceRequest"] = serviceRequests.Address;
        settings["LabMesh:Services:Requisition"] = requisitions.Address;
        settings["LabMesh:Services:CallTimeout"] = "00:00:02";
        foreach (var (key, value) in resultsSettings ?? new Dictionary<string, string?>())
        {
            settings[key] = value;
        }

        var results = await MeshHosts.StartResultsAsync(settings);
        return new ResultsMesh(backend, serviceRequestSettings, requisitionSettings, serviceRequests, requisitions, results);
    }

    /// <summary>Stops the ServiceRequest service (its port refuses connections until restarted).</summary>
    public Task StopServiceRequestsAsync() => ServiceRequests.DisposeAsync().AsTask();

    /// <summary>Starts the ServiceRequest service again on the same port with the same store.</summary>
    public async Task RestartServiceRequestsAsync() =>
        ServiceRequests = await MeshHosts.StartServiceRequestsAsync(_serviceRequestSettings, ServiceRequests.Port);

    /// <summary>Stops the Requisition service (its port refuses connections until restarted).</summary>
    public Task StopRequisitionsAsync() => Requisitions.DisposeAsync().AsTask();

    /// <summary>Starts the Requisition service again on the same port with the same store.</summary>
    public async Task RestartRequisitionsAsync() =>
        Requisitions = await MeshHosts.StartRequisitionsAsync(_requisitionSettings, Requisitions.Port);

    /// <summary>
    /// Replaces the Requisition service by one on the same port with a fresh, empty store: it knows none of the
    /// requisitions made so far, so it refuses their results milestones (NOT_FOUND), as a real peer refuses.
    /// </summary>
    public async Task RestartRequisitionsWithNewStoreAsync()
    {
        var port = Requisitions.Port;
        await Requisitions.DisposeAsync();
        var fresh = await TestSettings.CreateAsync(_backend);
        fresh["LabMesh:Services:ServiceRequest"] = ServiceRequests.Address;
        _requisitionSettings = fresh;
        Requisitions = await MeshHosts.StartRequisitionsAsync(_requisitionSettings, port);
    }

    /// <summary>Replaces the Requisition service by one on the same port with the store it started with.</summary>
    public async Task RestartRequisitionsWithFirstStoreAsync()
    {
        var port = Requisitions.Port;
        await Requisitions.DisposeAsync();
        _requisitionSettings = _firstRequisitionSettings;
        Requisitions = await MeshHosts.StartRequisitionsAsync(_requisitionSettings, port);
    }

    public ResultsInterpretationService.ResultsInterpretationServiceClient ResultsClient(string team) => new(Invoker(Results, team));

    public RequisitionService.RequisitionServiceClient RequisitionClient(string team) => new(Invoker(Requisitions, team));

    public ServiceRequestService.ServiceRequestServiceClient ServiceRequestClient(string team) => new(Invoker(ServiceRequests, team));

    /// <summary>Events the ResultsInterpretation service has published (its bus), for one requisition.</summary>
    public async Task<IReadOnlyList<Event>> ResultsEventsAsync(string requisitionId) =>
        (await Results.Services.GetRequiredService<IEventBus>().ReadAsync(null, 10_000, CancellationToken.None))
        .Select(e => e.Event).Where(e => e.RequisitionId == requisitionId).ToList();

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
        foreach (var channel in _channels)
        {
            channel.Dispose();
        }

        await Results.DisposeAsync();
        await Requisitions.DisposeAsync();
        await ServiceRequests.DisposeAsync();
    }

    private Grpc.Core.CallInvoker Invoker(ServiceHost host, string team)
    {
        var channel = host.CreateChannel();
        _channels.Add(channel);
        return TestCaller.Invoker(channel, team);
    }

}
