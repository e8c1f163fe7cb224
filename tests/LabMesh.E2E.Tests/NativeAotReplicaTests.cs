using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using Google.Protobuf.Reflection;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Security.Identity;
using LabMesh.Testing;
using V1 = Grpc.Reflection.V1;

namespace LabMesh.E2E.Tests;

/// <summary>
/// deploy/local's LABMESH_LOCAL_AOT (lib.sh, issue 22 item 3): the replicas of the services it names run their Native
/// AOT executable, the others dotnet and their assembly, and the services it names by default answer gRPC, REST, health
/// and reflection through the gateway and on each replica's own port.
/// </summary>
[Collection(LocalTopologyCollection.Name)]
public sealed class NativeAotReplicaTests(LocalTopologyFixture topology) : IDisposable
{
    private const string ServiceRequest = "servicerequest";
    private const string Requisition = "requisition";
    private const string ResultsInterpretation = "resultsinterpretation";
    private const string Notification = "notification";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>The gRPC contract of each service the tests below cover.</summary>
    private static readonly Dictionary<string, ServiceDescriptor> Contracts = new(StringComparer.Ordinal)
    {
        [ServiceRequest] = ServiceRequestService.Descriptor,
        [Requisition] = RequisitionService.Descriptor,
        [ResultsInterpretation] = ResultsInterpretationService.Descriptor,
        [Notification] = NotificationService.Descriptor,
    };

    private readonly GrpcChannel _gateway = GrpcChannel.ForAddress(topology.Gateway);

    [Fact]
    public async Task EveryReplica_RunsWhatLabMeshLocalAotSays()
    {
        var aot = await topology.AotExecutablesAsync();

        foreach (var part in LocalTopology.ReplicaNames)
        {
            var service = part[..part.LastIndexOf('-')];
            var running = Running(part);
            if (aot.TryGetValue(service, out var executable))
            {
                // The published executable itself, with no runtime loaded beside it: not dotnet, not an apphost.
                Assert.True(running.Executable == executable, $"{part} (pid {running.Pid}) runs {running.Executable}, not its Native AOT executable {executable}");
                Assert.False(running.LoadsCoreClr, $"{part} (pid {running.Pid}) runs {executable} but has libcoreclr.so mapped: not Native AOT code");
            }
            else
            {
                Assert.True(Path.GetFileName(running.Executable) == "dotnet", $"{part} (pid {running.Pid}) runs {running.Executable}, not dotnet");
                Assert.True(running.LoadsCoreClr, $"{part} (pid {running.Pid}) runs dotnet without libcoreclr.so mapped");
            }
        }
    }

    [Fact]
    public async Task ServiceRequest_AnswersGrpcAndRest_ThroughTheGateway_AndOnEachReplica()
    {
        var kinds = await ReplicaKindsAsync(ServiceRequest);
        var team = "e2e-aot-" + Guid.NewGuid().ToString("N")[..8];
        using var mesh = new Mesh(topology.Gateway, team);

        // Requisition creates the order's service request with a peer call to a ServiceRequest replica.
        var placed = await mesh.PlaceAsync(Guid.NewGuid().ToString("N"));
        var id = Assert.Single(placed.Requisition.ServiceRequests).Id;

        var viaGateway = await new ServiceRequestService.ServiceRequestServiceClient(TestCaller.Invoker(_gateway, team))
            .GetServiceRequestAsync(new GetServiceRequestRequest { Id = id }, deadline: DateTime.UtcNow + Timeout);
        Assert.Equal(id, viaGateway.ServiceRequest.Id);
        Assert.Equal(placed.Requisition.Id, viaGateway.ServiceRequest.RequisitionId);

        foreach (var r in LocalTopology.Replicas)
        {
            using var direct = GrpcChannel.ForAddress(topology.Address(ServiceRequest, r));
            var own = await new ServiceRequestService.ServiceRequestServiceClient(TestCaller.Invoker(direct, team))
                .GetServiceRequestAsync(new GetServiceRequestRequest { Id = id }, deadline: DateTime.UtcNow + Timeout);
            Assert.True(own.ServiceRequest.Id == id, $"{LocalTopology.Replica(ServiceRequest, r)} ({kinds}) answered {own}");
        }

        using var http = new HttpClient { BaseAddress = new Uri(topology.RestGateway), Timeout = Timeout };
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/service-requests/{id}");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TestCaller.Token(team, CallerRole.Clinician));
        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"GET /v1/service-requests/{id} ({kinds}): {(int)response.StatusCode} {text}");
        using var body = JsonDocument.Parse(text);
        var serviceRequest = body.RootElement.GetProperty("serviceRequest");
        Assert.Equal(id, serviceRequest.GetProperty("id").GetString());
        Assert.Equal(placed.Requisition.Id, serviceRequest.GetProperty("requisitionId").GetString());
        Assert.Equal("BMP", serviceRequest.GetProperty("code").GetString());
    }

    [Fact]
    public async Task Requisition_AnswersGrpcAndRest_ThroughTheGateway_AndOnEachReplica()
    {
        var kinds = await ReplicaKindsAsync(Requisition);
        var team = "e2e-aot-" + Guid.NewGuid().ToString("N")[..8];
        using var mesh = new Mesh(topology.Gateway, team);

        var placed = (await mesh.PlaceAsync(Guid.NewGuid().ToString("N"))).Requisition;
        var read = new List<Contracts.Requisition.V1.Requisition>();
        foreach (var r in LocalTopology.Replicas)
        {
            using var direct = GrpcChannel.ForAddress(topology.Address(Requisition, r));
            var own = await new RequisitionService.RequisitionServiceClient(TestCaller.Invoker(direct, team))
                .GetRequisitionAsync(new GetRequisitionRequest { Id = placed.Id }, deadline: DateTime.UtcNow + Timeout);
            Assert.True(own.Requisition.Id == placed.Id && own.Requisition.Etag == placed.Etag, $"{LocalTopology.Replica(Requisition, r)} ({kinds}) answered {own}");
            read.Add(own.Requisition);
        }

        // REST reads the enums, timestamps and nested service requests (rd.xml's instantiations), and an error keeps its details.
        using var http = new HttpClient { BaseAddress = new Uri(topology.RestGateway), Timeout = Timeout };
        var token = TestCaller.Token(team, CallerRole.Clinician);
        var (status, text) = await GetAsync(http, $"/v1/requisitions/{placed.Id}", token);
        Assert.True(status == HttpStatusCode.OK, $"GET /v1/requisitions/{placed.Id} ({kinds}): {(int)status} {text}");
        using (var body = JsonDocument.Parse(text))
        {
            var requisition = body.RootElement.GetProperty("requisition");
            Assert.Equal(placed.Id, requisition.GetProperty("id").GetString());
            Assert.Equal("ORDER_STATUS_RECEIVED", requisition.GetProperty("status").GetString());
            Assert.Equal(read[0].CreateTime.ToDateTimeOffset(), requisition.GetProperty("createTime").GetDateTimeOffset());
            Assert.Equal(placed.ServiceRequests[0].Id, Assert.Single(requisition.GetProperty("serviceRequests").EnumerateArray()).GetProperty("id").GetString());
        }

        var missing = Guid.NewGuid().ToString();
        var (notFound, error) = await GetAsync(http, $"/v1/requisitions/{missing}", token);
        Assert.True(notFound == HttpStatusCode.NotFound, $"GET /v1/requisitions/{missing} ({kinds}): {(int)notFound} {error}");
        using var errorBody = JsonDocument.Parse(error);
        Assert.Equal((int)StatusCode.NotFound, errorBody.RootElement.GetProperty("code").GetInt32());
        Assert.Contains(errorBody.RootElement.GetProperty("details").EnumerateArray(), d => d.GetProperty("@type").GetString() == "type.googleapis.com/google.rpc.ResourceInfo");
    }

    [Fact]
    public async Task ResultsInterpretation_ConvertsUcumUnits_AndWritesFhir_ThroughTheGateway_AndOnEachReplica()
    {
        // UCUM (Fhir.Metrics) and FHIR (the Firely SDK) work by reflection and expression trees: in an executable whose
        // trimming dropped what they reach, a unit no longer converts (a critical hemoglobin in g/L is missed) or the
        // Bundle is not written.
        var kinds = await ReplicaKindsAsync(ResultsInterpretation);
        var team = "e2e-aot-" + Guid.NewGuid().ToString("N")[..8];
        var hemoglobin = new InterpretMarkersRequest { Results = { new Marker { Name = "Hemoglobin", Slug = "hemoglobin", Unit = "g/L", NumericValue = 66 } } };
        foreach (var r in LocalTopology.Replicas)
        {
            using var direct = GrpcChannel.ForAddress(topology.Address(ResultsInterpretation, r));
            var read = await new ResultsInterpretationService.ResultsInterpretationServiceClient(TestCaller.Invoker(direct, team))
                .InterpretMarkersAsync(hemoglobin, deadline: DateTime.UtcNow + Timeout);
            var reading = Assert.Single(read.Results).Reading;
            Assert.True(
                reading.ComputedInterpretation == Interpretation.Critical && reading.ConvertedValue == "6.6 g/dL" && reading.CriticalLimitAnalyte == "hemoglobin",
                $"{LocalTopology.Replica(ResultsInterpretation, r)} ({kinds}) read 66 g/L hemoglobin as {reading}");
        }

        using var mesh = new Mesh(topology.Gateway, team);
        var placed = (await mesh.PlaceAsync(Guid.NewGuid().ToString("N"))).Requisition;
        var results = new ResultsInterpretationService.ResultsInterpretationServiceClient(TestCaller.Invoker(_gateway, team));
        var bundle = await results.GetFhirBundleAsync(new GetFhirBundleRequest { RequisitionId = placed.Id }, deadline: DateTime.UtcNow + Timeout);
        using (var json = JsonDocument.Parse(bundle.BundleJson))
        {
            Assert.Equal("Bundle", json.RootElement.GetProperty("resourceType").GetString());
            Assert.Contains(
                json.RootElement.GetProperty("entry").EnumerateArray(),
                e => e.GetProperty("resource").GetProperty("resourceType").GetString() == "ServiceRequest");
        }

        // REST: the reading's enums and its repeated flags (rd.xml's instantiations) in JSON.
        using var http = new HttpClient { BaseAddress = new Uri(topology.RestGateway), Timeout = Timeout };
        using var post = new HttpRequestMessage(HttpMethod.Post, "/v1/results:interpret")
        {
            Content = new StringContent("""{"results":[{"name":"Hemoglobin","slug":"hemoglobin","unit":"g/L","numericValue":66}]}""", System.Text.Encoding.UTF8, "application/json"),
        };
        post.Headers.Authorization = new AuthenticationHeaderValue("Bearer", TestCaller.Token(team, CallerRole.Clinician));
        using var response = await http.SendAsync(post);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"POST /v1/results:interpret ({kinds}): {(int)response.StatusCode} {text}");
        using var body = JsonDocument.Parse(text);
        var rest = Assert.Single(body.RootElement.GetProperty("results").EnumerateArray()).GetProperty("reading");
        Assert.Equal("INTERPRETATION_CRITICAL", rest.GetProperty("computedInterpretation").GetString());
        Assert.Equal("6.6 g/dL", rest.GetProperty("convertedValue").GetString());
    }

    [Theory]
    [InlineData(ServiceRequest)]
    [InlineData(Requisition)]
    [InlineData(ResultsInterpretation)]
    [InlineData(Notification)]
    public async Task Service_AnswersHealthAndReflection_ThroughTheGateway_AndOnEachReplica(string service)
    {
        var contract = Contracts[service];
        var kinds = await ReplicaKindsAsync(service);
        var named = new Metadata { { "x-labmesh-service", service } };

        var health = await new Health.HealthClient(_gateway).CheckAsync(new HealthCheckRequest { Service = contract.FullName }, named, DateTime.UtcNow + Timeout);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
        foreach (var r in LocalTopology.Replicas)
        {
            using var direct = GrpcChannel.ForAddress(topology.Address(service, r));
            var own = await new Health.HealthClient(direct).CheckAsync(new HealthCheckRequest { Service = contract.FullName }, deadline: DateTime.UtcNow + Timeout);
            Assert.True(own.Status == HealthCheckResponse.Types.ServingStatus.Serving, $"{LocalTopology.Replica(service, r)} ({kinds}): {own.Status}");
        }

        // The process's own reflection: its service among what it lists, and its contract's every method described.
        using (var list = new V1.ServerReflection.ServerReflectionClient(_gateway).ServerReflectionInfo(named, DateTime.UtcNow + Timeout))
        {
            await list.RequestStream.WriteAsync(new V1.ServerReflectionRequest { ListServices = "" });
            await list.RequestStream.CompleteAsync();
            Assert.True(await list.ResponseStream.MoveNext());
            Assert.Contains(contract.FullName, list.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name));
        }

        using var describe = new V1.ServerReflection.ServerReflectionClient(_gateway).ServerReflectionInfo(named, DateTime.UtcNow + Timeout);
        await describe.RequestStream.WriteAsync(new V1.ServerReflectionRequest { FileContainingSymbol = contract.FullName });
        await describe.RequestStream.CompleteAsync();
        Assert.True(await describe.ResponseStream.MoveNext());
        var answer = describe.ResponseStream.Current;
        Assert.True(answer.ErrorResponse is null, $"reflection ({kinds}): {answer.ErrorResponse}");
        var described = answer.FileDescriptorResponse.FileDescriptorProto
            .Select(FileDescriptorProto.Parser.ParseFrom)
            .SelectMany(file => file.Service.Select(s => (Name: $"{file.Package}.{s.Name}", s.Method)))
            .Single(s => s.Name == contract.FullName);
        Assert.Equal(contract.Methods.Select(m => m.Name), described.Method.Select(m => m.Name));
    }

    /// <summary>What a service's replicas run, for failure messages: a failure reads differently for a native replica.</summary>
    private async Task<string> ReplicaKindsAsync(string service)
    {
        var aot = await topology.AotExecutablesAsync();
        return aot.ContainsKey(service) ? "Native AOT replicas" : "dotnet replicas";
    }

    private static async Task<(HttpStatusCode Status, string Body)> GetAsync(HttpClient http, string path, string token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var response = await http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync());
    }

    /// <summary>The executable a replica's process runs (/proc/PID/exe) and whether the CoreCLR runtime is mapped into it.</summary>
    private (int Pid, string Executable, bool LoadsCoreClr) Running(string part)
    {
        var pid = topology.RunningPid(part) ?? throw new Xunit.Sdk.XunitException($"{part} is not running:\n{topology.Log(part)}");
        var executable = new FileInfo($"/proc/{pid}/exe").LinkTarget ?? throw new Xunit.Sdk.XunitException($"/proc/{pid}/exe of {part} is not a link");
        var coreClr = File.ReadLines($"/proc/{pid}/maps").Any(line => line.EndsWith("/libcoreclr.so", StringComparison.Ordinal));
        return (pid, executable, coreClr);
    }

    public void Dispose() => _gateway.Dispose();
}
