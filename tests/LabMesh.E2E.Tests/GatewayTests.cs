using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using LabMesh.Contracts.Results.V1;
using LabMesh.Testing;
using Xunit.Abstractions;

namespace LabMesh.E2E.Tests;

/// <summary>
/// The topology of deploy/local (PostgreSQL, Redis, two replicas of each service, the YARP gateway in front), every
/// call through the gateway: the demo, a replica of each service killed mid-run, Redis killed mid-run.
/// Each test leaves the topology whole again.
/// </summary>
[Collection(LocalTopologyCollection.Name)]
public sealed class GatewayTests(LocalTopologyFixture topology, ITestOutputHelper output)
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Demo_RunsTheWholeOrderThroughTheGateway()
    {
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.Environment["LABMESH_DEV_KEY"] = topology.KeyFile;
        foreach (var arg in new[] { topology.Cli, "demo", "--target", topology.Gateway, "--team", "e2e-demo-" + Guid.NewGuid().ToString("N")[..8], "--json" })
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromMinutes(2));
        var lines = (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(process.ExitCode == 0, $"demo exited {process.ExitCode}\n{await stdout}\n{await stderr}");

        var steps = lines.Select(l => JsonDocument.Parse(l).RootElement).ToDictionary(s => s.GetProperty("step").GetString()!);
        Assert.All(steps.Values, s => Assert.True(s.GetProperty("ok").GetBoolean(), s.ToString()));
        Assert.Contains("critical_result_event", steps.Keys);
        Assert.Contains("amend_results", steps.Keys);
        var critical = steps["critical_result_event"].GetProperty("detail");
        Assert.Equal(["potassium"], critical.GetProperty("critical_analytes").EnumerateArray().Select(a => a.GetString()));
        var summary = steps["summary"].GetProperty("detail");
        Assert.Equal(2, summary.GetProperty("reports").GetInt32());
        Assert.Equal(0, summary.GetProperty("open_critical_results").GetInt32());
        Assert.Equal(1, summary.GetProperty("events_by_type").GetProperty("labtest.result.critical").GetInt32());
    }

    [Fact]
    public async Task OneReplicaOfEachServiceKilledMidRun_CallsKeepSucceeding_NoEventLost_NoDuplicateRequisition()
    {
        const int Orders = 80;
        const int Workers = 4;
        const int KillAfter = 20;
        string[] killed = ["requisition-1", "servicerequest-1", "resultsinterpretation-1", "notification-1"];
        using var mesh = new Mesh(topology.Gateway, "e2e-kill-" + Guid.NewGuid().ToString("N")[..8]);
        await using var follower = await Follower.StartAsync(mesh, "order.placed");

        var requestIds = Enumerable.Range(0, Orders).Select(_ => Guid.NewGuid().ToString()).ToArray();
        var created = new ConcurrentDictionary<string, string>();
        var next = -1;
        var done = 0;
        var killing = new TaskCompletionSource();
        try
        {
            async Task WorkAsync()
            {
                int i;
                while ((i = Interlocked.Increment(ref next)) < Orders)
                {
                    // Each order touches all four services through the gateway: Requisition (which calls
                    // ServiceRequest replicas directly), ResultsInterpretation, Notification.
                    var order = (await mesh.PlaceAsync(requestIds[i])).Requisition;
                    Assert.True(created.TryAdd(requestIds[i], order.Id));
                    var reading = await mesh.CallAsync(deadline => mesh.Results.InterpretMarkersAsync(new InterpretMarkersRequest
                    {
                        Results = { new Marker { Name = "Sodium", Slug = "sodium", Unit = "mmol/L", NumericValue = 140, MinRangeValue = 135, MaxRangeValue = 145 } },
                    }, deadline: deadline));
                    Assert.Single(reading.Results);
                    await mesh.CallAsync(deadline => mesh.Notifications.ListEventsAsync(
                        new Contracts.Notification.V1.ListEventsRequest { PageSize = 1 }, deadline: deadline));
                    if (Interlocked.Increment(ref done) == KillAfter)
                    {
                        killing.SetResult();
                    }
                }
            }

            async Task KillAsync()
            {
                await killing.Task;
                await Task.WhenAll(killed.Select(part => topology.CtlAsync("kill", part)));
            }

            await Task.WhenAll(Enumerable.Range(0, Workers).Select(_ => Task.Run(WorkAsync)).Append(KillAsync())).WaitAsync(TimeSpan.FromMinutes(5));
            output.WriteLine($"{Orders} orders, {mesh.Retries} calls sent again after UNAVAILABLE, stream breaks: {string.Join(", ", follower.Breaks)}");

            var check = await topology.CheckAsync();
            Assert.Equal(1, check.ExitCode);
            Assert.All(killed, part => Assert.Matches($"(?m)^{part} +DOWN", check.Stdout));
            Assert.Matches("(?m)^requisition-2 +ok", check.Stdout);

            // No duplicate requisition: exactly one per request id, though some creates were sent twice.
            var requisitions = await mesh.AllRequisitionsAsync();
            Assert.Equal(Orders, requisitions.Count);
            Assert.Equal(created.Values.Order(), requisitions.Select(r => r.Id).Order());

            // No event lost, none twice: one order.placed per order on the event stream and on the live stream,
            // which moved to the surviving Notification replica and resumed from its cursor.
            var placedOnStream = new List<string>();
            await Eventually.HoldsAsync(async () =>
            {
                placedOnStream = [.. (await mesh.AllEventsAsync("order.placed")).Select(e => e.RequisitionId)];
                return placedOnStream.Count >= Orders;
            }, Settle, () => $"{placedOnStream.Count} of {Orders} order.placed events on the stream", Mesh.PollInterval);
            Assert.Equal(created.Values.Order(), placedOnStream.Order());
            await Eventually.HoldsAsync(() => Task.FromResult(follower.Events("order.placed").Count() >= Orders), Settle,
                () => $"the subscriber saw {follower.Events("order.placed").Count()} of {Orders}", Mesh.PollInterval);
            Assert.Equal(created.Values.Order(), follower.Events("order.placed").Select(e => e.RequisitionId).Order());
            Assert.All(follower.Seen.Values, seen => Assert.Equal(1, seen.Times));
        }
        finally
        {
            await Task.WhenAll(killed.Select(part => topology.CtlAsync("start", part)));
        }
    }

    [Fact]
    public async Task RedisKilledMidRun_NoCriticalResultLost()
    {
        const int Orders = 16;
        const int KillAfter = 5;
        using var mesh = new Mesh(topology.Gateway, "e2e-redis-" + Guid.NewGuid().ToString("N")[..8]);
        var orders = new List<Contracts.Requisition.V1.Requisition>();
        for (var i = 0; i < Orders; i++)
        {
            orders.Add((await mesh.PlaceAsync(Guid.NewGuid().ToString())).Requisition);
        }

        await using var follower = await Follower.StartAsync(mesh, "labtest.result.critical");
        Task? outage = null;
        try
        {
            for (var i = 0; i < Orders; i++)
            {
                if (i == KillAfter)
                {
                    // A crash (SIGKILL) while results keep coming; Redis comes back 2 s later from its AOF.
                    await topology.CtlAsync("kill", "redis");
                    outage = Task.Run(async () =>
                    {
                        await Task.Delay(TimeSpan.FromSeconds(2));
                        await topology.CtlAsync("start", "redis");
                    });
                }

                var report = await mesh.SubmitCriticalAsync(orders[i], Guid.NewGuid().ToString());
                Assert.Equal(orders[i].Id, report.Report.RequisitionId);
            }

            await outage!.WaitAsync(TimeSpan.FromSeconds(30));
            output.WriteLine($"{Orders} critical results, {mesh.Retries} calls sent again after UNAVAILABLE, stream breaks: {string.Join(", ", follower.Breaks)}");

            var expected = orders.Select(o => o.Id).Order().ToList();
            var onStream = new List<string>();
            await Eventually.HoldsAsync(async () =>
            {
                onStream = [.. (await mesh.AllEventsAsync("labtest.result.critical")).Select(e => e.RequisitionId)];
                return onStream.Count >= Orders;
            }, Settle, () => $"{onStream.Count} of {Orders} critical results on the event stream", Mesh.PollInterval);
            Assert.Equal(expected, onStream.Order());

            var open = new List<string>();
            await Eventually.HoldsAsync(async () =>
            {
                open = [.. (await mesh.OpenCriticalResultsAsync()).Select(c => c.RequisitionId)];
                return open.Count >= Orders;
            }, Settle, () => $"{open.Count} of {Orders} critical results open for acknowledgement", Mesh.PollInterval);
            Assert.Equal(expected, open.Order());

            await Eventually.HoldsAsync(() => Task.FromResult(follower.Events("labtest.result.critical").Count() >= Orders), Settle,

                () => $"the subscriber saw {follower.Events("labtest.result.critical").Count()} of {Orders}", Mesh.PollInterval);
            Assert.Equal(expected, follower.Events("labtest.result.critical").Select(e => e.RequisitionId).Order());
            Assert.All(follower.Seen.Values, seen => Assert.Equal(1, seen.Times));
        }
        finally
        {
            if (outage is not null)
            {
                await outage.WaitAsync(TimeSpan.FromSeconds(30));
            }

            await topology.CtlAsync("start", "redis");
        }
    }

    [Fact]
    public async Task Check_ReportsEveryPartUp()
    {
        var check = await topology.CheckAsync();
        Assert.True(check.ExitCode == 0, check.ToString());
        foreach (var part in new[] { "postgres", "redis", "requisition-1", "requisition-2", "servicerequest-1", "servicerequest-2",
            "resultsinterpretation-1", "resultsinterpretation-2", "notification-1", "notification-2", "gateway" })
        {
            Assert.Matches($"(?m)^{part} +ok", check.Stdout);
        }

        // Each replica's line says what it runs, as LABMESH_LOCAL_AOT (lib.sh) has it.
        var aot = await topology.AotExecutablesAsync();
        foreach (var service in LocalTopology.Services)
        {
            var runs = aot.ContainsKey(service) ? "Native AOT" : "dotnet";
            Assert.All(LocalTopology.Replicas, r => Assert.Matches($"(?m)^{LocalTopology.Replica(service, r)} +ok .* SERVING \\({runs}\\)$", check.Stdout));
        }
    }
}
