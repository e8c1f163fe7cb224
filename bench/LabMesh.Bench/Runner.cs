using Google.Protobuf;
using LabMesh.Bench.Load;
using LabMesh.Bench.Servers;

namespace LabMesh.Bench;

/// <summary>
/// Runs each scenario against the all-in-one host and the bare grpc-dotnet server (or, with --telemetry, against
/// the host exporting its telemetry and a host exporting none), prints each side and the ratio, and collects the
/// measurements. <paramref name="bareStatus"/>: the baseline's own call, when it is another host with a
/// requisition of its own; by default both sides answer <paramref name="status"/>.
/// </summary>
internal sealed class Runner(BenchOptions options, StatusRequest status, ServerProcess labMesh, ServerProcess bare, StatusRequest? bareStatus = null)
{
    private readonly List<Measurement> _results = [];

    public IReadOnlyList<Measurement> Results => _results;

    /// <summary>One call to each server through LabMesh's channel: both answer, and with the same bytes.</summary>
    public async Task<bool> CheckAsync()
    {
        var answers = new List<byte[]>();
        foreach (var server in new[] { labMesh, bare })
        {
            try
            {
                await using var client = new StatusClientLoad(server.Address, 1);
                var response = await client.OnceAsync(StatusFor(server), TimeSpan.FromSeconds(10));
                answers.Add(response.ToByteArray());
                Console.WriteLine($"  ok    MeshChannels -> {server.Name}: {response.Status.LifecycleStatus}, {answers[^1].Length} B");
            }
            catch (Exception ex)
            {
                Console.WriteLine($"  FAIL  MeshChannels -> {server.Name}: {ex.GetType().Name}: {ex.Message}");
                return false;
            }
        }

        if (bareStatus is not null)
        {
            // Two hosts, each with its own requisition: other ids and times, whose encodings may differ by a byte or two.
            if (Math.Abs(answers[0].Length - answers[1].Length) > 8)
            {
                Console.WriteLine($"  FAIL  the two hosts answer with responses of {answers[0].Length} and {answers[1].Length} B");
                return false;
            }

            Console.WriteLine("  ok    both answer the same status for their own requisition, responses within 8 B of each other");
            return true;
        }

        if (!answers[0].AsSpan().SequenceEqual(answers[1]))
        {
            Console.WriteLine("  FAIL  the two servers answer with different bytes");
            return false;
        }

        Console.WriteLine("  ok    both answer the same bytes");
        return true;
    }

    /// <summary>
    /// Load on every path before any measuring, so that both fresh server processes and the client reach
    /// optimized (tier-1, PGO) code first: otherwise whichever side is measured first pays for it.
    /// </summary>
    public async Task PrimeAsync()
    {
        if (options.PrimeSeconds <= 0)
        {
            return;
        }

        var each = TimeSpan.FromSeconds(options.PrimeSeconds);
        foreach (var server in new[] { labMesh, bare })
        {
            await using var client = new StatusClientLoad(server.Address, options.Connections);
            await ClosedLoop.RunAsync(client.Calls(StatusFor(server), options.Concurrency), TimeSpan.Zero, each);
            if (File.Exists(options.H2LoadPath))
            {
                await WithBodyFileAsync(server, file => H2Load.RunAsync(options, PathOf(server), file, H2LoadHeaders(server), each, log: false));
            }
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

        var labMeshRuns = new List<Measurement>();
        var bareRuns = new List<Measurement>();
        for (var round = 0; round < options.Rounds; round++)
        {
            // Alternate which side goes first, so drift in machine load does not favour one side.
            foreach (var isLabMesh in round % 2 == 0 ? new[] { true, false } : [false, true])
            {
                Measurement m;
                try
                {
                    m = await MeasureAsync(scenario, isLabMesh ? labMesh : bare, isLabMesh);
                }
                catch (Exception ex)
                {
                    Console.WriteLine($"  FAILED {(isLabMesh ? Report.Sides.Measured : Report.Sides.Baseline)} side: {ex.GetType().Name}: {ex.Message}");
                    continue;
                }

                Report.PrintRow(m);
                (isLabMesh ? labMeshRuns : bareRuns).Add(m);
            }
        }

        var labMeshMedian = Median(labMeshRuns);
        var bareMedian = Median(bareRuns);
        if (labMeshMedian is null || bareMedian is null)
        {
            return;
        }

        _results.Add(labMeshMedian);
        _results.Add(bareMedian);
        if (options.Rounds > 1)
        {
            Console.WriteLine($"  median of {options.Rounds} rounds:");
            Report.PrintRow(labMeshMedian);
            Report.PrintRow(bareMedian);
        }

        Report.PrintRatio(labMeshMedian, bareMedian);
    }

    /// <summary>The 1-minute load average: other work on the machine skews every figure.</summary>
    public static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ')[0] : "n/a";

    private static Measurement? Median(List<Measurement> runs) =>
        runs.Count == 0 ? null : runs.OrderBy(m => m.Rate).ElementAt((runs.Count - 1) / 2);

    private StatusRequest StatusFor(ServerProcess server) => server == bare && bareStatus is not null ? bareStatus : status;

    private string[] H2LoadHeaders(ServerProcess server) => ["authorization: Bearer " + StatusFor(server).Token];

    private static Uri PathOf(ServerProcess server) => new(server.Address + StatusRequest.Path);

    private Task<Measurement> MeasureAsync(string scenario, ServerProcess server, bool isLabMesh) => scenario switch
    {
        "status-client" => MeasureClientAsync(scenario, server, isLabMesh),
        "status-h2load" => MeasureH2LoadAsync(scenario, server, isLabMesh),
        _ => throw new ArgumentException($"Unknown scenario '{scenario}'."),
    };

    /// <summary>A closed loop through LabMesh's channel, with the server's and the bench's costs over the window.</summary>
    private async Task<Measurement> MeasureClientAsync(string scenario, ServerProcess server, bool isLabMesh)
    {
        await using var client = new StatusClientLoad(server.Address, options.Connections);
        ProcessStats serverStart = default, serverEnd = default, clientStart = default, clientEnd = default;
        var result = await ClosedLoop.RunAsync(
            client.Calls(StatusFor(server), options.Concurrency),
            options.Warmup,
            options.Duration,
            () =>
            {
                serverStart = server.GetStats();
                clientStart = ProcessStats.Capture();
                return Task.CompletedTask;
            },
            () =>
            {
                clientEnd = ProcessStats.Capture();
                serverEnd = server.GetStats();
                return Task.CompletedTask;
            });
        return new Measurement(
            scenario,
            "MeshChannels -> " + server.Name,
            isLabMesh,
            result.Calls / result.Elapsed.TotalSeconds,
            result.P50Ms,
            result.P99Ms,
            result.Calls,
            result.Errors,
            serverEnd.Since(serverStart),
            clientEnd.Since(clientStart),
            result.Errors > 0 || result.Calls == 0 ? result.FirstError : null);
    }

    /// <summary>h2load posting the framed request with the caller's token: a warm-up run, then the measured one.</summary>
    private Task<Measurement> MeasureH2LoadAsync(string scenario, ServerProcess server, bool isLabMesh) => WithBodyFileAsync(server, async file =>
    {
        if (options.Warmup > TimeSpan.Zero)
        {
            await H2Load.RunAsync(options, PathOf(server), file, H2LoadHeaders(server), options.Warmup, log: false);
        }

        var before = server.GetStats();
        var result = await H2Load.RunAsync(options, PathOf(server), file, H2LoadHeaders(server), options.Duration, log: true);
        var after = server.GetStats();
        return new Measurement(
            scenario,
            "h2load -> " + server.Name,
            isLabMesh,
            result.RequestsPerSecond,
            result.P50Ms,
            result.P99Ms,
            result.Succeeded,
            result.Failed,
            after.Since(before),
            null,
            result.Failed > 0 || result.Succeeded == 0 ? "h2load: " + result.Output.Split('\n').FirstOrDefault(l => l.StartsWith("requests:", StringComparison.Ordinal)) : null);
    });

    private async Task<T> WithBodyFileAsync<T>(ServerProcess server, Func<string, Task<T>> run)
    {
        var bodyFile = Path.Combine(Path.GetTempPath(), $"labmesh-bench-request-{Environment.ProcessId}-{Guid.NewGuid():N}.bin");
        await File.WriteAllBytesAsync(bodyFile, StatusFor(server).FramedRequest());
        try
        {
            return await run(bodyFile);
        }
        finally
        {
            File.Delete(bodyFile);
        }
    }
}
