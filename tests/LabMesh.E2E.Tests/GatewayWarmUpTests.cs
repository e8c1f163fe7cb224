using System.Diagnostics;
using System.Globalization;
using System.Net;
using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Testing;

namespace LabMesh.E2E.Tests;

/// <summary>
/// The gateway's start (services/LabMesh.Gateway, GatewayWarmUp): its readiness (<c>GET /healthz/ready</c> on the REST
/// listener) answers 503 until it has sent real calls through itself to the replicas, and 200 after; a warm-up that
/// cannot reach a replica never holds the start beyond its bound. Each test starts a gateway of its own in
/// front of the topology's Requisition replicas, as deployed but for the settings named.
/// </summary>
[Collection(LocalTopologyCollection.Name)]
public sealed class GatewayWarmUpTests(LocalTopologyFixture topology)
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(90);

    [Fact]
    public async Task Readiness_Answers503_UntilTheWarmUpHasForwardedCallsToTheReplicas_Then200()
    {
        // As deployed (Native AOT, no JIT to settle) the warm-up ends once MinimumCalls are answered, about a second at the
        // default 2,000: ten times that keeps it running for several of the 20 ms polls below on any machine.
        await using var gateway = StartGateway([topology.Address("requisition", 1), topology.Address("requisition", 2)],
            ["--LabMesh:Gateway:WarmUp:MinimumCalls", "20000"]);
        var seen = new List<HttpStatusCode>();
        var (status, body) = await ReadyAsync(gateway, seen);

        Assert.Equal(HttpStatusCode.OK, status);
        // The listener was open before the warm-up began (its calls go through it), so readiness was asked and said
        // 503 while the warm-up ran; it never said 200 and then 503 again.
        Assert.Contains(HttpStatusCode.ServiceUnavailable, seen);
        Assert.Equal(HttpStatusCode.OK, seen[^1]);
        Assert.DoesNotContain(HttpStatusCode.OK, seen[..^1]);
        // The warm-up's calls were answered by the replicas (health checks through the gateway's own routes).
        Assert.True(Forwarded(body) > 0, body);
        Assert.DoesNotContain("no replica answered", body, StringComparison.Ordinal);
        // Ready means ready: a call through it is answered.
        var team = "e2e-warm-" + Guid.NewGuid().ToString("N")[..8];
        string id;
        using (var mesh = new Mesh(topology.Gateway, team))
        {
            id = (await mesh.PlaceAsync(Guid.NewGuid().ToString())).Requisition.Id;
        }

        using var channel = GrpcChannel.ForAddress(gateway.Address);
        var client = new RequisitionService.RequisitionServiceClient(TestCaller.Invoker(channel, team));
        var answer = await client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = id }, deadline: DateTime.UtcNow.Add(Mesh.CallTimeout));
        Assert.Equal(id, answer.Status.Id);
    }

    /// <summary>
    /// Both replicas frozen (SIGSTOP: connections accepted by the kernel, nothing answered): the warm-up's calls hang,
    /// readiness stays 503 while they do, and says 200 at the warm-up's bound (3 s here), not later.
    /// </summary>
    [Fact]
    public async Task WhileNoReplicaAnswers_ReadinessWaits_ButOnlyUntilTheWarmUpsBound()
    {
        var pids = new[] { "requisition-1", "requisition-2" }.Select(r => topology.Pid(r) ?? throw new InvalidOperationException($"{r} is not running")).ToList();
        foreach (var pid in pids)
        {
            await TestGateway.SignalAsync("STOP", pid, Bound);
        }

        try
        {
            var clock = Stopwatch.StartNew();
            await using var gateway = StartGateway([topology.Address("requisition", 1), topology.Address("requisition", 2)],
                ["--LabMesh:Gateway:WarmUp:Timeout", "00:00:03", "--LabMesh:Gateway:WarmUp:CallTimeout", "00:01:00"]);
            var seen = new List<HttpStatusCode>();
            var (status, body) = await ReadyAsync(gateway, seen);
            var ready = clock.Elapsed;

            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Contains("the bound of 3 s", body, StringComparison.Ordinal);
            Assert.Equal(0, Forwarded(body));
            Assert.Contains(HttpStatusCode.ServiceUnavailable, seen);
            Assert.True(ready >= TimeSpan.FromSeconds(3), $"ready after {ready.TotalSeconds:0.0} s, before the warm-up's bound of 3 s");
            // The process's own start (a few seconds on a loaded machine) plus the bound, not the calls' minute.
            Assert.True(ready < TimeSpan.FromSeconds(40), $"ready only after {ready.TotalSeconds:0.0} s");
        }
        finally
        {
            foreach (var pid in pids)
            {
                await TestGateway.SignalAsync("CONT", pid, Bound);
            }
        }
    }

    /// <summary>
    /// No replica listening (a compose stack whose services are not up yet, a replica crashed): the warm-up's calls are
    /// refused at once, the gateway is ready long before its bound, ready as it was before the warm-up existed, and a
    /// call is answered UNAVAILABLE, as it was.
    /// </summary>
    [Fact]
    public async Task WithNoReplicaListening_TheGatewayIsReadyLongBeforeItsBound_AndCallsAreUnavailable()
    {
        var clock = Stopwatch.StartNew();
        await using var gateway = StartGateway([Closed(), Closed()], ["--LabMesh:Gateway:WarmUp:Timeout", "00:02:00"]);
        var (status, body) = await ReadyAsync(gateway, []);
        var ready = clock.Elapsed;

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("no replica answered", body, StringComparison.Ordinal);
        Assert.True(ready < TimeSpan.FromSeconds(60), $"ready only after {ready.TotalSeconds:0.0} s of a 120 s bound");
        using var channel = GrpcChannel.ForAddress(gateway.Address);
        var client = new RequisitionService.RequisitionServiceClient(TestCaller.Invoker(channel, "e2e-warm-none"));
        var refused = await Assert.ThrowsAsync<RpcException>(() => client.GetRequisitionStatusAsync(
            new GetRequisitionStatusRequest { Id = Guid.NewGuid().ToString() }, deadline: DateTime.UtcNow.Add(Mesh.CallTimeout)).ResponseAsync);
        Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
    }

    private static int Forwarded(string body) =>
        body.Split(' ') is var words && Array.IndexOf(words, "calls") is var at && at > 0 && int.TryParse(words[at - 1], CultureInfo.InvariantCulture, out var n) ? n : -1;

    /// <summary>Readiness polled every 20 ms from the gateway's start until it is not 503 (or nothing answers); each answer noted.</summary>
    private static async Task<(HttpStatusCode Status, string Body)> ReadyAsync(Gateway gateway, List<HttpStatusCode> seen)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        (HttpStatusCode, string) last = default;
        await Eventually.HoldsAsync(async () =>
        {
            try
            {
                using var answer = await http.GetAsync(gateway.Readiness);
                last = (answer.StatusCode, await answer.Content.ReadAsStringAsync());
                seen.Add(answer.StatusCode);
                return answer.StatusCode != HttpStatusCode.ServiceUnavailable;
            }
            catch (HttpRequestException)
            {
                Assert.False(gateway.Process.HasExited, gateway.Process.Describe());
                return false;
            }
        }, Bound, () => $"the gateway ready ({string.Join(", ", seen)}):\n{gateway.Process.Describe()}", TimeSpan.FromMilliseconds(20));
        return last;
    }

    /// <summary>A gateway as deployed in front of <paramref name="replicas"/> (the requisition cluster), with <paramref name="settings"/> on its command line.</summary>
    private Gateway StartGateway(IReadOnlyList<string> replicas, IEnumerable<string> settings)
    {
        var (process, address, rest) = TestGateway.Start(topology, "requisition", replicas, settings);
        return new Gateway(process, address, new Uri(rest + "/healthz/ready"));
    }

    /// <summary>A loopback address nothing listens on: connections are refused.</summary>
    private static string Closed() => string.Create(CultureInfo.InvariantCulture, $"http://127.0.0.1:{FreePort.Next()}");

    private sealed record Gateway(ChildProcess Process, string Address, Uri Readiness) : IAsyncDisposable
    {
        public ValueTask DisposeAsync() => Process.DisposeAsync();
    }
}
