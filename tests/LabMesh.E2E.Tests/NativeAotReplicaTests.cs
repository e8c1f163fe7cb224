using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Net.Client;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Security.Identity;
using LabMesh.Testing;
using V1 = Grpc.Reflection.V1;

namespace LabMesh.E2E.Tests;

/// <summary>
/// deploy/local's LABMESH_LOCAL_AOT (lib.sh, issue 22 item 3): the replicas of the services it names run their Native
/// AOT executable, the others dotnet and their assembly, and ServiceRequest (the service it names by default once its
/// executable serves) answers gRPC, REST, health and reflection through the gateway and on each replica's own port.
/// </summary>
[Collection(LocalTopologyCollection.Name)]
public sealed class NativeAotReplicaTests(LocalTopologyFixture topology) : IDisposable
{
    private const string ServiceRequest = "servicerequest";
    private const string ServiceName = "labmesh.servicerequest.v1.ServiceRequestService";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

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
        var kinds = await ReplicaKindsAsync();
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
    public async Task ServiceRequest_AnswersHealthAndReflection_ThroughTheGateway_AndOnEachReplica()
    {
        var kinds = await ReplicaKindsAsync();
        var named = new Metadata { { "x-labmesh-service", ServiceRequest } };

        var health = await new Health.HealthClient(_gateway).CheckAsync(new HealthCheckRequest { Service = ServiceName }, named, DateTime.UtcNow + Timeout);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
        foreach (var r in LocalTopology.Replicas)
        {
            using var direct = GrpcChannel.ForAddress(topology.Address(ServiceRequest, r));
            var own = await new Health.HealthClient(direct).CheckAsync(new HealthCheckRequest { Service = ServiceName }, deadline: DateTime.UtcNow + Timeout);
            Assert.True(own.Status == HealthCheckResponse.Types.ServingStatus.Serving, $"{LocalTopology.Replica(ServiceRequest, r)} ({kinds}): {own.Status}");
        }

        // The process's own reflection: its service among what it lists, and its contract's every method described.
        using (var list = new V1.ServerReflection.ServerReflectionClient(_gateway).ServerReflectionInfo(named, DateTime.UtcNow + Timeout))
        {
            await list.RequestStream.WriteAsync(new V1.ServerReflectionRequest { ListServices = "" });
            await list.RequestStream.CompleteAsync();
            Assert.True(await list.ResponseStream.MoveNext());
            Assert.Contains(ServiceName, list.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name));
        }

        using var describe = new V1.ServerReflection.ServerReflectionClient(_gateway).ServerReflectionInfo(named, DateTime.UtcNow + Timeout);
        await describe.RequestStream.WriteAsync(new V1.ServerReflectionRequest { FileContainingSymbol = ServiceName });
        await describe.RequestStream.CompleteAsync();
        Assert.True(await describe.ResponseStream.MoveNext());
        var answer = describe.ResponseStream.Current;
        Assert.True(answer.ErrorResponse is null, $"reflection ({kinds}): {answer.ErrorResponse}");
        var described = answer.FileDescriptorResponse.FileDescriptorProto
            .Select(Google.Protobuf.Reflection.FileDescriptorProto.Parser.ParseFrom)
            .SelectMany(file => file.Service.Select(service => (Name: $"{file.Package}.{service.Name}", service.Method)))
            .Single(service => service.Name == ServiceName);
        Assert.Equal(ServiceRequestService.Descriptor.Methods.Select(m => m.Name), described.Method.Select(m => m.Name));
    }

    /// <summary>What ServiceRequest's replicas run, for failure messages: a failure reads differently for a native replica.</summary>
    private async Task<string> ReplicaKindsAsync()
    {
        var aot = await topology.AotExecutablesAsync();
        return aot.ContainsKey(ServiceRequest) ? "Native AOT replicas" : "dotnet replicas";
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
