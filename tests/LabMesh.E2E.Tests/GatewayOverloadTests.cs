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
        var (gateway, address) = await StartGatewayAsync(perCluster: 2);
        await using var _ = gateway;

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

    /// <summary>
    /// A replica that stops answering (frozen with SIGSTOP: its connections stay open, its calls hang) while calls keep
    /// coming: the gateway sends each call to the replica with fewer calls in flight of the two, so the frozen one takes
    /// about as many as the healthy one holds, and the healthy one keeps answering. With round-robin (before) every other
    /// call went to the frozen replica, its calls filled the whole cap of the service within a few dozen calls, and the
    /// gateway shed everything else until their deadlines: 0 calls/s with a healthy replica idle (bench/README.md, "The
    /// gateway under overload and a stalled replica").
    /// </summary>
    [Fact]
    public async Task AReplicaThatStalls_DoesNotTakeTheCap_CallsAreAnsweredByTheOther()
    {
        const int Calls = 200;
        var (gateway, address) = await StartGatewayAsync(perCluster: 16);
        await using var _ = gateway;
        var team = "e2e-stall-" + Guid.NewGuid().ToString("N")[..8];
        string id;
        using (var mesh = new Mesh(topology.Gateway, team))
        {
            id = (await mesh.PlaceAsync(Guid.NewGuid().ToString())).Requisition.Id;
        }

        using var channel = GrpcChannel.ForAddress(address);
        var client = new RequisitionService.RequisitionServiceClient(TestCaller.Invoker(channel, team));
        // Both replicas connected and answering before one stalls.
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal(id, (await client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = id }, deadline: DateTime.UtcNow.Add(Mesh.CallTimeout))).Status.Id);
        }

        var frozen = topology.Pid("requisition-2") ?? throw new InvalidOperationException("requisition-2 is not running");
        var outcomes = new List<Task<StatusCode>>();
        await TestGateway.SignalAsync("STOP", frozen, Bound);
        try
        {
            // 100 calls/s for 2 s, each with a 3 s deadline: the frozen replica holds whatever it took until after the last one left.
            for (var i = 0; i < Calls; i++)
            {
                outcomes.Add(StatusOfAsync(client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = id }, deadline: DateTime.UtcNow.AddSeconds(3)).ResponseAsync));
                await Task.Delay(10);
            }

            await Task.WhenAll(outcomes).WaitAsync(Bound);
        }
        finally
        {
            await TestGateway.SignalAsync("CONT", frozen, Bound);
        }

        var statuses = outcomes.Select(o => o.Result).ToList();
        var summary = string.Join("; ", statuses.Chunk(Calls / 4).Select((part, i) =>
            $"calls {i * Calls / 4}-{(i + 1) * Calls / 4 - 1}: " + string.Join(", ", part.GroupBy(s => s).Select(g => $"{g.Key} {g.Count()}"))));
        // The calls the frozen replica took end at their deadline; past the cap a call is shed; nothing else.
        Assert.All(statuses, s => Assert.True(s is StatusCode.OK or StatusCode.DeadlineExceeded or StatusCode.ResourceExhausted, summary));
        // The frozen replica holds about as many calls as requisition-1 has in flight, not the whole cap: requisition-1
        // answers calls all through the stall, the last second's too (round-robin answered none of them).
        Assert.True(statuses.Skip(Calls / 2).Count(s => s == StatusCode.OK) >= Calls / 8, summary);
    }

    private async Task<(ChildProcess Gateway, string Address)> StartGatewayAsync(int perCluster)
    {
        var (gateway, address, _) = TestGateway.Start(topology, "requisition", [topology.Address("requisition", 1), topology.Address("requisition", 2)],
            ["--LabMesh:Gateway:CallsInFlight:PerCluster", perCluster.ToString(CultureInfo.InvariantCulture)]);
        if (!await GrpcServing.WaitAsync(address, TimeSpan.FromSeconds(30), TimeSpan.FromMilliseconds(200)))
        {
            var described = gateway.Describe();
            await gateway.DisposeAsync();
            Assert.Fail(described);
        }

        return (gateway, address);
    }

    private static async Task<StatusCode> StatusOfAsync(Task call)
    {
        try
        {
            await call;
            return StatusCode.OK;
        }
        catch (RpcException e)
        {
            return e.StatusCode;
        }
    }
}
