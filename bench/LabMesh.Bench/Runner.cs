using System.Globalization;
using LabMesh.Bench.Load;
using LabMesh.Bench.Servers;

namespace LabMesh.Bench;

/// <summary>
/// Runs each scenario, against the two shared servers or (<see cref="OwnServerScenario"/>) servers of
/// its own, prints each side and the ratio, and collects the measurements.
/// </summary>
internal sealed class Runner(BenchOptions options, Payloads payloads, ServerProcess labMesh, ServerProcess bare)
{
    private readonly List<Measurement> _results = [];

    public IReadOnlyList<Measurement> Results => _results;

    /// <summary>One call through each path, so a broken target shows up before any measuring.</summary>
    public async Task<bool> CheckAsync()
    {
        var ok = true;
        async Task Try(string what, Func<Task> call)
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await call().WaitAsync(timeout.Token);
                Console.WriteLine($"  ok    {what}");
            }
            catch (Exception ex)
            {
                ok = false;
                Console.WriteLine($"  FAIL  {what}: {ex.GetType().Name}: {ex.Message}");
            }
        }

        async Task Raw(Uri uri, int messages)
        {
            await using var raw = new RawHttpLoad(1);
            await raw.Calls(uri, payloads.FramedRequest, 1, messages)[0]();
        }

        async Task Client(string address, bool stream)
        {
            await using var client = new LabMeshClientLoad(address, 1);
            await (stream
                ? client.ServerStream(payloads.Request, 1)[0]()
                : client.Unary(payloads.Request, 1, payloads.Response.Payload.Length)[0]());
        }

        await Try("HttpClient -> LabMesh server, unary", () => Raw(labMesh.UnaryUri, 1));
        await Try("HttpClient -> LabMesh server, stream", () => Raw(labMesh.StreamUri, payloads.StreamMessages));
        await Try("HttpClient -> bare server, unary", () => Raw(bare.UnaryUri, 1));
        await Try("HttpClient -> bare server, stream", () => Raw(bare.StreamUri, payloads.StreamMessages));
        await Try("LabMesh client -> LabMesh server, unary", () => Client(labMesh.Address, stream: false));
        await Try("LabMesh client -> LabMesh server, stream", () => Client(labMesh.Address, stream: true));
        await Try("LabMesh client -> bare server, unary", () => Client(bare.Address, stream: false));
        return ok;
    }

    /// <summary>
    /// Load on every path before any measuring, so that both fresh server processes and the client
    /// reach optimized (tier-1, PGO) code first: otherwise whichever side is measured first pays for it.
    /// </summary>
    public async Task PrimeAsync()
    {
        if (options.PrimeSeconds <= 0)
        {
            return;
        }
        var each = TimeSpan.FromSeconds(options.PrimeSeconds);
        await using var raw = new RawHttpLoad(options.Connections);
        await using var toLabMesh = new LabMeshClientLoad(labMesh.Address, options.Connections);
        await using var toBare = new LabMeshClientLoad(bare.Address, options.Connections);
        var paths = new[]
        {
            raw.Calls(labMesh.UnaryUri, payloads.FramedRequest, options.Concurrency, 1),
            raw.Calls(bare.UnaryUri, payloads.FramedRequest, options.Concurrency, 1),
            raw.Calls(labMesh.StreamUri, payloads.FramedRequest, options.Concurrency, payloads.StreamMessages),
            raw.Calls(bare.StreamUri, payloads.FramedRequest, options.Concurrency, payloads.StreamMessages),
            toLabMesh.Unary(payloads.Request, options.Concurrency, payloads.Response.Payload.Length),
            toLabMesh.ServerStream(payloads.Request, options.Concurrency),
            toBare.Unary(payloads.Request, options.Concurrency, payloads.Response.Payload.Length),
        };
        foreach (var calls in paths)
        {
            await ClosedLoop.RunAsync(calls, TimeSpan.Zero, each);
        }
    }

    public async Task RunScenarioAsync(string scenario)
    {
        var info = ScenarioInfo.Get(scenario);
        Console.WriteLine();
        Console.WriteLine($"== {scenario}: {info.Description}  [load average {LoadAverage()}]");
        if (info.UsesH2Load && !File.Exists(options.H2LoadPath))
        {
            Console.WriteLine($"  SKIPPED: h2load not found at {options.H2LoadPath} (Debian/Ubuntu: apt-get install nghttp2-client; elsewhere pass --h2load PATH)");
            return;
        }
        OwnServerScenario? own = null;
        if (info.OwnServers)
        {
            try
            {
                own = await OwnServerScenario.StartAsync(scenario, options, payloads, this);
            }
            catch (Exception ex)
            {
                Console.WriteLine($"  SKIPPED: {ex.Message}");
                return;
            }
        }
        await using (own)
        {
            await MeasureRoundsAsync(info, own is null ? isLabMesh => MeasureAsync(scenario, isLabMesh) : own.MeasureAsync);
        }
    }

    private async Task MeasureRoundsAsync(ScenarioInfo info, Func<bool, Task<Measurement>> measure)
    {
        var labMeshRuns = new List<Measurement>();
        var bareRuns = new List<Measurement>();
        for (var round = 0; round < options.Rounds; round++)
        {
            // Alternate which side goes first, so drift in machine load does not favour one side.
            var labMeshFirst = round % 2 == 0;
            foreach (var isLabMesh in labMeshFirst ? new[] { true, false } : [false, true])
            {
                Measurement m;
                try
                {
                    m = await measure(isLabMesh);
                }
                catch (Exception ex)
                {
                    Console.WriteLine($"  FAILED {(isLabMesh ? "measured" : "baseline")} side: {ex.GetType().Name}: {ex.Message}");
                    continue;
                }
                Report.PrintRow(m);
                (isLabMesh ? labMeshRuns : bareRuns).Add(m);
            }
        }
        var labMeshMedian = Median(labMeshRuns);
        var bareMedian = Median(bareRuns);
        if (labMeshMedian is not null)
        {
            _results.Add(labMeshMedian);
        }
        if (bareMedian is not null)
        {
            _results.Add(bareMedian);
        }
        if (options.Rounds > 1 && labMeshMedian is not null && bareMedian is not null)
        {
            Console.WriteLine($"  median of {options.Rounds} rounds:");
            Report.PrintRow(labMeshMedian);
            Report.PrintRow(bareMedian);
        }
        if (labMeshMedian is not null && bareMedian is not null)
        {
            Report.PrintRatio(info, labMeshMedian, bareMedian);
            if (labMeshMedian.ServerAllocations is not null && bareMedian.ServerAllocations is not null)
            {
                AllocationProfiler.PrintDifference("server", labMeshMedian.ServerAllocations, labMeshMedian.Ops, bareMedian.ServerAllocations, bareMedian.Ops);
            }
            if (labMeshMedian.ClientAllocations is not null && bareMedian.ClientAllocations is not null)
            {
                AllocationProfiler.PrintDifference("client", labMeshMedian.ClientAllocations, labMeshMedian.Ops, bareMedian.ClientAllocations, bareMedian.Ops);
            }
        }
    }

    /// <summary>The 1-minute load average: other work on the machine skews every figure.</summary>
    public static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "n/a";

    private static Measurement? Median(List<Measurement> runs) =>
        runs.Count == 0 ? null : runs.OrderBy(m => m.Rate).ElementAt((runs.Count - 1) / 2);

    private async Task<Measurement> MeasureAsync(string scenario, bool isLabMesh)
    {
        var server = isLabMesh ? labMesh : bare;
        var streaming = scenario.EndsWith("-stream", StringComparison.Ordinal);
        var uri = streaming ? server.StreamUri : server.UnaryUri;
        var messagesPerCall = streaming ? payloads.StreamMessages : 1;
        switch (scenario)
        {
            case "h2load-unary":
            case "h2load-stream":
                return await MeasureH2LoadAsync(
                    scenario, isLabMesh ? "h2load -> LabMesh server" : "h2load -> bare Kestrel", isLabMesh, server, uri, messagesPerCall, payloads.FramedRequest);

            case "e2e-unary":
            case "e2e-stream":
                if (isLabMesh)
                {
                    await using var client = new LabMeshClientLoad(server.Address, options.Connections);
                    var calls = streaming
                        ? client.ServerStream(payloads.Request, options.Concurrency)
                        : client.Unary(payloads.Request, options.Concurrency, payloads.Response.Payload.Length);
                    return await MeasureClosedLoopAsync(scenario, "LabMesh client -> LabMesh server", true, server, calls, streaming);
                }
                else
                {
                    await using var raw = new RawHttpLoad(options.Connections);
                    var calls = raw.Calls(uri, payloads.FramedRequest, options.Concurrency, messagesPerCall);
                    return await MeasureClosedLoopAsync(scenario, "HttpClient -> bare Kestrel", false, server, calls, streaming);
                }

            case "client-unary":
                if (isLabMesh)
                {
                    await using var client = new LabMeshClientLoad(bare.Address, options.Connections);
                    var calls = client.Unary(payloads.Request, options.Concurrency, payloads.Response.Payload.Length);
                    return await MeasureClosedLoopAsync(scenario, "LabMesh client -> bare Kestrel", true, bare, calls, false);
                }
                else
                {
                    await using var raw = new RawHttpLoad(options.Connections);
                    var calls = raw.Calls(bare.UnaryUri, payloads.FramedRequest, options.Concurrency, 1);
                    return await MeasureClosedLoopAsync(scenario, "HttpClient -> bare Kestrel", false, bare, calls, false);
                }

            case "server-unary":
                {
                    await using var raw = new RawHttpLoad(options.Connections);
                    var calls = raw.Calls(uri, payloads.FramedRequest, options.Concurrency, 1);
                    var target = isLabMesh ? "HttpClient -> LabMesh server" : "HttpClient -> bare Kestrel";
                    return await MeasureClosedLoopAsync(scenario, target, isLabMesh, server, calls, false);
                }

            default:
                throw new ArgumentException($"Unknown scenario '{scenario}'.");
        }
    }

    /// <summary>
    /// A closed loop over <paramref name="calls"/>, with the server's and the bench's costs over the window.
    /// With <paramref name="gaps"/>, p50/p99 are per message and the whole-call figures go in the detail.
    /// </summary>
    public async Task<Measurement> MeasureClosedLoopAsync(
        string scenario, string target, bool isLabMesh, ServerProcess server, IReadOnlyList<BenchCall> calls, bool streaming, MessageGaps? gaps = null)
    {
        ProcessStats serverStart = default, serverEnd = default, clientStart = default, clientEnd = default;
        string? serverAllocations = null, clientAllocations = null;
        var result = await ClosedLoop.RunAsync(
            calls,
            options.Warmup,
            options.Duration,
            async () =>
            {
                if (options.AllocProfile)
                {
                    await server.TakeAllocationsAsync();
                    AllocationProfiler.Instance?.TakeAndReset();
                }
                serverStart = await server.GetStatsAsync();
                clientStart = ProcessStats.Capture();
                gaps?.Recording = true;
            },
            async () =>
            {
                gaps?.Recording = false;
                clientEnd = ProcessStats.Capture();
                serverEnd = await server.GetStatsAsync();
                if (options.AllocProfile)
                {
                    clientAllocations = AllocationProfiler.Instance?.TakeAndReset();
                    serverAllocations = await server.TakeAllocationsAsync();
                }
            });
        var (p50, p99) = gaps?.Percentiles() ?? (result.P50Ms, result.P99Ms);
        var ops = streaming ? result.Messages : result.Calls;
        return new Measurement(
            scenario,
            target,
            isLabMesh,
            streaming ? "msgs/s" : "calls/s",
            ops / result.Elapsed.TotalSeconds,
            p50,
            p99,
            ops,
            result.Errors,
            serverEnd.Since(serverStart),
            clientEnd.Since(clientStart),
            result.Errors > 0 || result.Calls == 0 ? result.FirstError : null)
        {
            ServerAllocations = serverAllocations,
            ClientAllocations = options.InProcess ? null : clientAllocations,
            Detail = gaps is null ? null : string.Format(
                CultureInfo.InvariantCulture, "p50/p99 are per message; whole calls: p50 {0:F2} ms, p99 {1:F2} ms", result.P50Ms, result.P99Ms),
        };
    }

    /// <summary>h2load posting <paramref name="framedRequest"/> to <paramref name="uri"/>: a warm-up run, then the measured one.</summary>
    public async Task<Measurement> MeasureH2LoadAsync(
        string scenario, string target, bool isLabMesh, ServerProcess server, Uri uri, int messagesPerCall, byte[] framedRequest)
    {
        var bodyFile = Path.Combine(Path.GetTempPath(), $"labmesh-bench-request-{Environment.ProcessId}.bin");
        await File.WriteAllBytesAsync(bodyFile, framedRequest);
        try
        {
            if (options.Warmup > TimeSpan.Zero)
            {
                await H2Load.RunAsync(options, uri, bodyFile, options.Warmup, log: false);
            }
            if (options.AllocProfile)
            {
                await server.TakeAllocationsAsync();
            }
            var before = await server.GetStatsAsync();
            var result = await H2Load.RunAsync(options, uri, bodyFile, options.Duration, log: true);
            var after = await server.GetStatsAsync();
            var serverAllocations = options.AllocProfile ? await server.TakeAllocationsAsync() : null;
            var ops = result.Succeeded * messagesPerCall;
            return new Measurement(
                scenario,
                target,
                isLabMesh,
                messagesPerCall > 1 ? "msgs/s" : "calls/s",
                result.RequestsPerSecond * messagesPerCall,
                result.P50Ms,
                result.P99Ms,
                ops,
                result.Failed,
                after.Since(before),
                null,
                result.Failed > 0 || result.Succeeded == 0 ? "h2load: " + result.Output.Split('\n').FirstOrDefault(l => l.StartsWith("requests:", StringComparison.Ordinal)) : null)
            {
                ServerAllocations = serverAllocations,
            };
        }
        finally
        {
            File.Delete(bodyFile);
        }
    }
}
