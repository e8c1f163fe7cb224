using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Testing;

namespace LabMesh.E2E.Tests;

/// <summary>
/// What deploy/local's gateway (services/LabMesh.Gateway) does beyond routing by service name: a call to no
/// service gets a gRPC status, and a replica that is down is passed over without the caller seeing it.
/// </summary>
[Collection(LocalTopologyCollection.Name)]
public sealed class GatewayRoutingTests(LocalTopologyFixture topology)
{
    [Fact]
    public async Task UnknownService_IsAnsweredUnimplemented_ByTheGateway()
    {
        using var channel = GrpcChannel.ForAddress(topology.Gateway);
        var method = new Method<byte[], byte[]>(MethodType.Unary, "grpc.testing.TestService", "UnaryCall",
            Marshallers.Create(b => b, b => b), Marshallers.Create(b => b, b => b));

        var failure = await Assert.ThrowsAsync<RpcException>(() =>
            channel.CreateCallInvoker().AsyncUnaryCall(method, null, new CallOptions(deadline: DateTime.UtcNow.AddSeconds(15)), []).ResponseAsync);

        Assert.Equal(StatusCode.Unimplemented, failure.StatusCode);
        Assert.Contains("/grpc.testing.TestService/UnaryCall", failure.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ReplicaKilled_EveryCallThroughTheGateway_IsAnsweredByTheOther_WithoutAClientRetry()
    {
        using var mesh = new Mesh(topology.Gateway, "e2e-route-" + Guid.NewGuid().ToString("N")[..8]);
        var id = (await mesh.PlaceAsync(Guid.NewGuid().ToString())).Requisition.Id;
        await topology.CtlAsync("kill", "requisition-1");
        try
        {
            // The balancer sends calls to the dead replica (both have none in flight) until passive health takes it
            // out: each of those is refused a connection, and the gateway sends it to requisition-2. None may fail.
            for (var i = 0; i < 10; i++)
            {
                var status = await mesh.Requisitions.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = id },
                    deadline: DateTime.UtcNow.Add(Mesh.CallTimeout));
                Assert.Equal(id, status.Status.Id);
            }
        }
        finally
        {
            await topology.CtlAsync("start", "requisition-1");
        }
    }
}
