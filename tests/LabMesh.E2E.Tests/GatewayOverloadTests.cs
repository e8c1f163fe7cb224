using System.Globalization;
using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Testing;

namespace LabMesh.E2E.Tests;

/// <summary>
/// The gateway under more calls than it lets through (services/LabMesh.Gateway, CallsInFlightLimit): a second
/// gateway, built as deployed, in front of the topology's two Requisition replicas with its cap on calls in flight
/// lowered to 2, so a burst of a few dozen calls is an overload. Before the cap the gateway passed every call on and
/// let them pile up on the replicas' HTTP/2 connections until the callers' deadlines (bench/README.md, "The gateway
/// under overload").
/// </summary>
[Collection(LocalTopologyCollection.Name)]
public sealed class GatewayOverloadTests(LocalTopologyFixture topology)
{
    private const int Burst = 48;

    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task CallsPastTheCap_AreShedAtOnce_ResourceExhaustedWithARetryHint_AndTheNextCallsGoThrough()
    {
        var port = FreePort.Next();
        var address = string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{port}");
        await using var gateway = ChildProcess.Start("dotnet",
        [
            Repository.Built("services/LabMesh.Gateway", "LabMesh.Gateway.dll"),
            "--Kestrel:Endpoints:Grpc:Url", address,
            "--Kestrel:Endpoints:Rest:Url", string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{FreePort.Next()}"),
            "--ReverseProxy:Clusters:requisition:Destinations:requisition-1:Address", topology.Address("requisition", 1),
            "--ReverseProxy:Clusters:requisition:Destinations:requisition-2:Address", topology.Address("requisition", 2),
            "--LabMesh:Gateway:CallsInFlight:PerCluster", "2",
        ], Repository.Root, new Dictionary<string, string> { ["ASPNETCORE_ENVIRONMENT"] = "Production" });
        Assert.True(await GrpcServing.WaitAsync(address, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(200)), gateway.Describe());

        var team = "e2e-overload-" + Guid.NewGuid().ToString("N")[..8];
        string id;
        using (var mesh = new Mesh(topology.Gateway, team))
        {
            id = (await mesh.PlaceAsync(Guid.NewGuid().ToString())).Requisition.Id;
        }

        using var channel = GrpcChannel.ForAddress(address);
        var client = new RequisitionService.RequisitionServiceClient(TestCaller.Invoker(channel, team));
        var shed = new List<RpcException>();
        var answered = 0;
        var started = DateTime.UtcNow;
        // Bursts until one is shed (the first usually is): bounded, and a gateway that never sheds fails here.
        while (shed.Count == 0 && DateTime.UtcNow - started < Bound)
        {
            var outcomes = await Task.WhenAll(Enumerable.Range(0, Burst).Select(async _ =>
            {
                try
                {
                    var answer = await client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = id }, deadline: DateTime.UtcNow.Add(Mesh.CallTimeout));
                    Assert.Equal(id, answer.Status.Id);
                    return null;
                }
                catch (RpcException e)
                {
                    return e;
                }
            }));
            answered += outcomes.Count(o => o is null);
            shed.AddRange(outcomes.OfType<RpcException>());
        }

        Assert.NotEmpty(shed);
        Assert.True(answered > 0, "every call of every burst was shed");
        Assert.All(shed, e =>
        {
            // Shed precisely, not a deadline, a reset or an INTERNAL: the caller knows to back off and try again.
            Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
            Assert.Contains("try again", e.Status.Detail, StringComparison.Ordinal);
            Assert.True(int.TryParse(e.Trailers.GetValue("grpc-retry-pushback-ms"), CultureInfo.InvariantCulture, out var pushback) && pushback > 0,
                "no grpc-retry-pushback-ms trailer");
        });

        // The overload over, calls one at a time are all answered.
        for (var i = 0; i < 10; i++)
        {
            var answer = await client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = id }, deadline: DateTime.UtcNow.Add(Mesh.CallTimeout));
            Assert.Equal(id, answer.Status.Id);
        }
    }
}
