using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.AllInOne.Tests;
using LabMesh.Security.Identity;
using LabMesh.Testing;
using V1 = Grpc.Reflection.V1;

namespace LabMesh.E2E.Tests;

/// <summary>
/// grpcurl pointed at the gateway (issue 23 item 7): with no header, <c>list</c> and <c>describe</c> show the
/// whole public API though reflection is per process, and a JSON call made from reflection alone reaches each
/// service (buf curl, a client nobody here wrote); with <c>x-labmesh-service</c>, reflection and health are
/// still the named process's own.
/// </summary>
[Collection(LocalTopologyCollection.Name)]
public sealed class GatewayReflectionTests(LocalTopologyFixture topology) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    /// <summary>What the all-in-one host lists: the API as one process serves it.</summary>
    private static readonly string[] Api =
    [
        "labmesh.audit.v1.AuditService",
        "labmesh.notification.v1.NotificationService",
        "labmesh.requisition.v1.RequisitionService",
        "labmesh.results.v1.ResultsInterpretationService",
        "labmesh.servicerequest.v1.ServiceRequestService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ];

    private readonly GrpcChannel _channel = GrpcChannel.ForAddress(topology.Gateway);

    [Fact]
    public async Task List_WithNoHeader_ShowsEveryPublicService()
    {
        var listed = await ListAsync(new Metadata());

        Assert.Equal(Api.Order(StringComparer.Ordinal), listed.Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("requisition", "labmesh.requisition.v1.RequisitionService")]
    [InlineData("notification", "labmesh.notification.v1.NotificationService")]
    public async Task List_WithTheServiceHeader_IsThatProcessesOwn_EvenIfTheCallerAsksForTheApi(string service, string own)
    {
        // A caller cannot switch the named process to the API's view: the gateway drops x-labmesh-reflection.
        var listed = await ListAsync(new Metadata { { "x-labmesh-service", service }, { "x-labmesh-reflection", "api" } });

        Assert.Equal([own, "labmesh.audit.v1.AuditService"], listed.Where(s => s.StartsWith("labmesh.", StringComparison.Ordinal)).Order(StringComparer.Ordinal).Reverse());
    }

    [Theory]
    [InlineData("labmesh.requisition.v1.RequisitionService")]
    [InlineData("labmesh.servicerequest.v1.ServiceRequestService")]
    [InlineData("labmesh.results.v1.ResultsInterpretationService")]
    [InlineData("labmesh.notification.v1.NotificationService")]
    public async Task Describe_WithNoHeader_GivesEveryServiceWithItsMethods(string service)
    {
        using var call = new V1.ServerReflection.ServerReflectionClient(_channel).ServerReflectionInfo(deadline: DateTime.UtcNow.Add(Timeout));
        await call.RequestStream.WriteAsync(new V1.ServerReflectionRequest { FileContainingSymbol = service });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext());
        var response = call.ResponseStream.Current;
        Assert.Null(response.ErrorResponse);

        // Every file of the answer, built together: the service with every method of the contract, and each
        // input type resolved (what grpcurl needs to turn JSON into a request).
        var files = FileDescriptor.BuildFromByteStrings(Ordered(response.FileDescriptorResponse.FileDescriptorProto));
        var described = files.SelectMany(f => f.Services).Single(s => s.FullName == service);
        var contract = Contract(service);
        Assert.Equal(contract.Methods.Select(m => m.Name), described.Methods.Select(m => m.Name));
        Assert.All(described.Methods, m => Assert.Equal(contract.FindMethodByName(m.Name).InputType.FullName, m.InputType.FullName));
    }

    [Theory]
    [InlineData("labmesh.requisition.v1.RequisitionService/ListRequisitions", "{}")]
    [InlineData("labmesh.servicerequest.v1.ServiceRequestService/ListServiceRequests", "{}")]
    [InlineData("labmesh.results.v1.ResultsInterpretationService/InterpretMarkers",
        """{"results":[{"name":"Sodium","slug":"sodium","unit":"mmol/L","numericValue":150,"minRangeValue":135,"maxRangeValue":145}]}""")]
    [InlineData("labmesh.notification.v1.NotificationService/ListEvents", """{"pageSize":1}""")]
    public async Task JsonCall_ThroughTheGateway_ReachesEachService_FromReflectionAlone(string method, string json)
    {
        var token = TestCaller.Token("e2e-reflect", CallerRole.Clinician);

        var result = await Buf.RunAsync(Timeout, "curl", "--protocol", "grpc", "--http2-prior-knowledge",
            "-H", "authorization: Bearer " + token, "-d", json, $"{topology.Gateway}/{method}");

        Assert.True(result.ExitCode == 0, result.ToString());
        using var answer = JsonDocument.Parse(result.Stdout);
        Assert.Equal(JsonValueKind.Object, answer.RootElement.ValueKind);
        if (method.EndsWith("/InterpretMarkers", StringComparison.Ordinal))
        {
            Assert.Equal("sodium", answer.RootElement.GetProperty("results")[0].GetProperty("slug").GetString());
        }
    }

    [Fact]
    public async Task Health_WithTheServiceHeader_IsStillThatProcessesOwn()
    {
        foreach (var (name, service) in new[] { ("notification", "labmesh.notification.v1.NotificationService"), ("servicerequest", "labmesh.servicerequest.v1.ServiceRequestService") })
        {
            var health = new Grpc.Health.V1.Health.HealthClient(_channel);
            var answer = await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest { Service = service }, new Metadata { { "x-labmesh-service", name } });
            Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, answer.Status);
        }

        // Without the header Requisition answers, and it knows nothing of Notification's health.
        var unnamed = await Assert.ThrowsAsync<RpcException>(() => new Grpc.Health.V1.Health.HealthClient(_channel)
            .CheckAsync(new Grpc.Health.V1.HealthCheckRequest { Service = "labmesh.notification.v1.NotificationService" }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, unnamed.StatusCode);
    }

    private async Task<List<string>> ListAsync(Metadata headers)
    {
        using var call = new V1.ServerReflection.ServerReflectionClient(_channel).ServerReflectionInfo(headers, DateTime.UtcNow.Add(Timeout));
        await call.RequestStream.WriteAsync(new V1.ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext());
        return [.. call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name)];
    }

    private static ServiceDescriptor Contract(string service) =>
        new[]
        {
            Contracts.Requisition.V1.RequisitionService.Descriptor,
            Contracts.ServiceRequest.V1.ServiceRequestService.Descriptor,
            Contracts.Results.V1.ResultsInterpretationService.Descriptor,
            Contracts.Notification.V1.NotificationService.Descriptor,
        }.Single(d => d.FullName == service);

    /// <summary>Reflection's files with every import before the file importing it (BuildFromByteStrings needs that).</summary>
    private static List<ByteString> Ordered(IEnumerable<ByteString> files)
    {
        var protos = files.Select(FileDescriptorProto.Parser.ParseFrom).ToDictionary(f => f.Name);
        var ordered = new List<ByteString>();
        var done = new HashSet<string>();
        void Visit(FileDescriptorProto file)
        {
            if (!done.Add(file.Name))
            {
                return;
            }

            foreach (var dependency in file.Dependency)
            {
                Visit(protos.TryGetValue(dependency, out var imported) ? imported
                    : throw new Xunit.Sdk.XunitException($"reflection served {file.Name} without its import {dependency}"));
            }

            ordered.Add(file.ToByteString());
        }

        foreach (var file in protos.Values)
        {
            Visit(file);
        }

        return ordered;
    }

    public void Dispose() => _channel.Dispose();
}
