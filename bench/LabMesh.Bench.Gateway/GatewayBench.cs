using System.Diagnostics;
using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Security.Identity;
using LabMesh.Testing;
using static LabMesh.Bench.Gateway.Report;

namespace LabMesh.Bench.Gateway;

/// <summary>A run that cannot go on (the topology did not start, a call failed while setting up).</summary>
internal sealed class BenchFailedException(string message) : Exception(message);

/// <summary>
/// One run: deploy/local up, requisitions created, memory at idle, GetRequisitionStatus through the gateway
/// against one Requisition replica in alternating rounds, memory at idle again, and optionally the same
/// against replica 2 restarted with other settings (<c>--variant</c>).
/// </summary>
internal sealed partial class GatewayBench(LocalTopology topology, GatewayBenchOptions options, string scriptLog, Action<string> log)
{
    private const string Team = "bench-team";
    private const double TargetP99Ms = 2.0;
    private const double TargetRssMb = 100.0;

    // The services' own runtimeconfig says System.GC.Server=true (Web SDK); the baseline is told the same.
    private static readonly KeyValuePair<string, string>[] ServicesGc = [KeyValuePair.Create("DOTNET_gcServer", "1")];

    private readonly List<BareHost> _bareHosts = [];
    private Candidate? _candidate;
    private readonly List<GrpcChannel> _channels = [];
    private readonly List<string> _summary = [];
    private Metadata _headers = [];
    private List<string> _ids = [];

    public static IEnumerable<int> BarePorts(GatewayBenchOptions options) => [options.PortBase + 90, options.PortBase + 91, options.PortBase + 93];

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        log(F("  deploy/local: state {0}, port base {1}, LabMesh__Limits__PermitsPerSecond=0 (per-caller rate limit off), {2}; scripts' output in {3}",
            topology.State, topology.PortBase, options.Build ? "built by up.sh" : "LABMESH_LOCAL_NO_BUILD=1", scriptLog));
        var started = Stopwatch.StartNew();
        if ((await topology.UpAsync(cancellationToken)).ExitCode != 0)
        {
            throw new BenchFailedException($"up.sh failed; see {scriptLog}");
        }

        log(F("  up.sh: every part SERVING after {0:0} s", started.Elapsed.TotalSeconds));
        var ports = BarePorts(options).ToArray();
        _bareHosts.Add(await BareHost.StartAsync("bare host", ports[0], ServicesGc, cancellationToken));
        if (options.Variant.Count > 0)
        {
            _bareHosts.Add(await BareHost.StartAsync("bare host (variant)", ports[1], [.. ServicesGc, .. options.Variant], cancellationToken));
        }

        using (var key = SigningKey.FromPem("labmesh-local", topology.KeyPem, "signing-key.pem"))
        {
            var token = key.Mint(new TokenIdentity(Team, CallerRole.Clinician, "bench-gateway", null), "labmesh", "labmesh", TimeSpan.FromHours(1));
            _headers = new Metadata { { "authorization", "Bearer " + token } };
        }

        var gateway = Client(topology.Gateway);
        var direct = Client(topology.Address("requisition", 1));
        await CreateRequisitionsAsync(gateway, direct, cancellationToken);

        if (options.OverloadOnly)
        {
            await OverloadAsync(cancellationToken);
            PrintSummary();
            return;
        }

        await MemoryAsync("1. Memory at idle after start-up", cancellationToken);

        log("");
        log(F("2. GetRequisitionStatus, closed loop: {0} in flight on one HTTP/2 connection, {1} requisitions in turn; {2} rounds of {3:0.#} s warm-up + {4:0.#} s measured per side, alternating which side goes first",
            options.Concurrency, options.Requisitions, options.Rounds, options.WarmupSeconds, options.DurationSeconds));
        await CompareAsync(
            ("gateway (YARP -> 2 replicas)", new StatusLoad(gateway, _headers, _ids, options.Concurrency)),
            ("direct (requisition-1)", new StatusLoad(direct, _headers, _ids, options.Concurrency)),
            "gateway/direct",
            verdict: F("closed loop, {0} in flight", options.Concurrency),
            cancellationToken);

        if (options.Rate > 0)
        {
            log("");
            log(F("2b. GetRequisitionStatus, open loop: {0:N0} calls/s whatever the answers do (paced by a 1 ms timer; latency from issuing each call), one HTTP/2 connection; same rounds",
                options.Rate));
            await CompareAsync(
                ("gateway (YARP -> 2 replicas)", new StatusLoad(gateway, _headers, _ids, options.Concurrency, options.Rate)),
                ("direct (requisition-1)", new StatusLoad(direct, _headers, _ids, options.Concurrency, options.Rate)),
                "gateway/direct at a fixed rate",
                verdict: F("open loop, {0:N0} calls/s", options.Rate),
                cancellationToken);
        }

        if (options.Candidate is { } spec)
        {
            _candidate = await Candidate.StartAsync(spec, topology, options.PortBase + 93, cancellationToken);
            log(F("   the candidate {0}: {1}", _candidate.Name, _candidate.Started));
            var candidate = Client(_candidate.Address);
            var name = _candidate.Name;
            log("");
            log(F("2c. The candidate {0} ({1}, in front of requisition-1 and -2) against the gateway, closed loop then open loop at {2:N0} calls/s, same rounds",
                name, _candidate.Address, options.Rate));
            await CompareAsync(
                (F("{0} -> 2 replicas", name), new StatusLoad(candidate, _headers, _ids, options.Concurrency)),
                ("gateway (YARP -> 2 replicas)", new StatusLoad(gateway, _headers, _ids, options.Concurrency)),
                F("{0}/gateway", name),
                verdict: null,
                cancellationToken);
            if (options.Rate > 0)
            {
                await CompareAsync(
                    (F("{0}, open loop", name), new StatusLoad(candidate, _headers, _ids, options.Concurrency, options.Rate)),
                    ("gateway, open loop", new StatusLoad(gateway, _headers, _ids, options.Concurrency, options.Rate)),
                    F("{0}/gateway at a fixed rate", name),
                    verdict: null,
                    cancellationToken);
            }
        }

        if (options.Overload > 0)
        {
            await OverloadAsync(cancellationToken);
        }

        await MemoryAsync("3. Memory at idle after the load", cancellationToken);

        if (options.Variant.Count > 0)
        {
            await VariantAsync(cancellationToken);
        }

        PrintSummary();
    }

    private void PrintSummary()
    {
        log("");
        log("Summary");
        foreach (var line in _summary)
        {
            log("  " + line);
        }
    }

    public async Task StopBareHostsAsync()
    {
        if (_candidate is not null)
        {
            await _candidate.DisposeAsync();
            _candidate = null;
        }

        foreach (var host in _bareHosts)
        {
            await host.DisposeAsync();
        }

        _bareHosts.Clear();
        foreach (var channel in _channels)
        {
            channel.Dispose();
        }
    }

    private RequisitionService.RequisitionServiceClient Client(string address)
    {
        var channel = GrpcChannel.ForAddress(address);
        _channels.Add(channel);
        return new RequisitionService.RequisitionServiceClient(channel);
    }

    private async Task CreateRequisitionsAsync(RequisitionService.RequisitionServiceClient gateway, RequisitionService.RequisitionServiceClient direct,
        CancellationToken cancellationToken)
    {
        var started = Stopwatch.StartNew();
        var ids = new List<string>();
        for (var i = 0; i < options.Requisitions; i++)
        {
            var request = new CreateRequisitionRequest
            {
                RequestId = $"bench-gateway-{i}",
                // Synthetic, and never printed.
                Patient = new Patient { Id = $"bench-patient-{i}", GivenName = "Bench", FamilyName = "Patient", BirthDate = "1970-01-01", Sex = "unknown" },
                OrderingProvider = new Provider { Id = "bench-provider", Name = "Bench Provider" },
                Lab = "LabCorp",
                Modality = TestModality.Testkit,
                Place = true,
            };
            request.Tests.Add(new OrderedTest { Code = "BMP", PartnerId = "bench-partner" });
            var response = await Call(() => gateway.CreateRequisitionAsync(request, _headers, Deadline, cancellationToken).ResponseAsync, "CreateRequisition");
            ids.Add(response.Requisition.Id);
        }

        _ids = ids;
        // Every id answers on both paths before anything is timed.
        foreach (var client in new[] { gateway, direct })
        {
            foreach (var id in ids)
            {
                await Call(() => client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = id }, _headers, Deadline, cancellationToken).ResponseAsync,
                    "GetRequisitionStatus");
            }
        }

        log(F("  created and placed {0} requisitions through the gateway (team {1}, a clinician's token signed with the topology's key) and read each on both paths in {2:0.0} s, not measured",
            ids.Count, Team, started.Elapsed.TotalSeconds));
    }

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    private static async Task<T> Call<T>(Func<Task<T>> call, string what)
    {
        try
        {
            return await call();
        }
        catch (RpcException ex) when (ex.StatusCode != StatusCode.Cancelled)
        {
            throw new BenchFailedException($"{what} failed while setting up: {ex.StatusCode} {ex.Status.Detail}");
        }
    }

    /// <summary>Rounds of A and B, alternating which goes first; per window the Redis counters around it.</summary>
    private async Task CompareAsync((string Name, StatusLoad Load) a, (string Name, StatusLoad Load) b, string ratioName, string? verdict, CancellationToken cancellationToken)
    {
        // Priming: both paths warm (JIT, connections) before the first window.
        foreach (var side in new[] { a, b })
        {
            await side.Load.RunAsync(side.Name, TimeSpan.Zero, TimeSpan.FromSeconds(2), cancellationToken);
        }

        log("   round side                            calls/s     p50 ms   p99 ms p99.9 ms   max ms  errors  Redis per call: MGET  hits  misses   load avg");
        var results = new Dictionary<string, List<LoadWindow>> { [a.Name] = [], [b.Name] = [] };
        for (var round = 1; round <= options.Rounds; round++)
        {
            foreach (var side in round % 2 == 1 ? new[] { a, b } : [b, a])
            {
                var before = await CacheCounters.ReadAsync(topology);
                var cpu = ProcessCpu.Start(topology, _candidate);
                var window = await side.Load.RunAsync(side.Name, options.Warmup, options.Duration, cancellationToken);
                var cores = cpu.Stop();
                var cache = await CacheCounters.ReadAsync(topology) - before;
                results[side.Name].Add(window);
                // The counters cover warm-up, window and drain; per call of the window they overstate a little.
                var all = window.Calls * (options.WarmupSeconds + options.DurationSeconds) / options.DurationSeconds;
                log(F("   {0,5} {1,-30} {2,9:N0} {3,10:0.000} {4,8:0.000} {5,8:0.000} {6,8:0.00} {7,7}  {8,20:0.00} {9,5:0.00} {10,7:0.000}   {11}{12}",
                    round, side.Name, window.Rate, window.P50, window.P99, window.P999, window.Max, window.Errors,
                    cache.MgetCalls / all, cache.Hits / all, cache.Misses / all, LoadAverage(), window.FirstError is null ? "" : "  first error: " + window.FirstError));
                log("         " + cores);
            }
        }

        var ma = Summarize(a.Name, results[a.Name]);
        var mb = Summarize(b.Name, results[b.Name]);
        log(F("   {0}: calls/s x{1:0.00}, p50 x{2:0.00}, p99 x{3:0.00}, p99.9 x{4:0.00} (medians of the rounds)",
            ratioName, ma.Rate / mb.Rate, ma.P50 / mb.P50, ma.P99 / mb.P99, ma.P999 / mb.P999));
        _summary.Add(F("{0}: calls/s x{1:0.00}, p50 x{2:0.00}, p99 x{3:0.00}, p99.9 x{4:0.00}", ratioName, ma.Rate / mb.Rate, ma.P50 / mb.P50, ma.P99 / mb.P99, ma.P999 / mb.P999));
        if (verdict is not null)
        {
            var worst = results[a.Name].Max(w => w.P99);
            var line = F("target \"cached status read: p99 under 2 ms through the gateway\" ({3}): median p99 {0:0.000} ms, worst round {1:0.000} ms: {2}",
                ma.P99, worst, ma.P99 < TargetP99Ms ? (worst < TargetP99Ms ? "MET in every round" : "met at the median, not in every round") : "NOT MET", verdict);
            log("   " + line);
            _summary.Add(line);
        }
    }

    private (double Rate, double P50, double P99, double P999) Summarize(string name, List<LoadWindow> windows)
    {
        var m = (Median(windows.Select(w => w.Rate)), Median(windows.Select(w => w.P50)), Median(windows.Select(w => w.P99)), Median(windows.Select(w => w.P999)));
        var line = F("{0}: median of {1} rounds {2:N0} calls/s, p50 {3:0.000} ms, p99 {4:0.000} ms, p99.9 {5:0.000} ms; {6} errors",
            name, windows.Count, m.Item1, m.Item2, m.Item3, m.Item4, windows.Sum(w => w.Errors));
        log("   " + line);
        _summary.Add(line);
        return m;
    }

    private async Task MemoryAsync(string title, CancellationToken cancellationToken)
    {
        log("");
        log(F("{0}: {1:0} s without traffic, then VmRSS from /proc/PID/status (MB = 10^6 bytes)", title, options.IdleSeconds));
        await Task.Delay(options.Idle, cancellationToken);
        var bare = _bareHosts.Select(h => ResidentMemory.Read(h.Name, h.Pid)).OfType<ResidentMemory>().ToList();
        var replicas = LocalTopology.Services
            .SelectMany(s => LocalTopology.Replicas.Select(r => LocalTopology.Replica(s, r)))
            .Select(name => topology.Pid(name) is { } pid ? ResidentMemory.Read(name, pid) : null)
            .OfType<ResidentMemory>()
            .ToList();
        // The topology's gateway and a candidate gateway, read beside the replicas (a Native AOT build against the JIT one).
        var gateways = new[] { ("gateway", topology.Pid("gateway")), (_candidate?.Name ?? "", _candidate?.Pid) }
            .Select(g => g.Item2 is { } pid ? ResidentMemory.Read(g.Item1, pid) : null)
            .OfType<ResidentMemory>()
            .ToList();
        log("   process                     pid    RSS MB  anon MB  file MB shmem MB   PSS MB  threads  GC                  GC environment      RSS / bare host");
        foreach (var m in bare.Concat(replicas).Concat(gateways))
        {
            var baseline = BaselineFor(m, bare);
            log(F("   {0,-24} {1,7} {2,8:0.0} {3,8:0.0} {4,8:0.0} {10,8:0.0} {9,8:0.0} {5,8}  {6,-19} {7,-18} {8}",
                m.Name, m.Pid, m.RssMb, m.AnonMb, m.FileMb, m.Threads, m.Gc, m.GcEnvironment, baseline is null || baseline == m ? "" : F("x{0:0.00}", m.RssMb / baseline.RssMb), m.PssMb, m.ShmemMb));
        }

        foreach (var service in LocalTopology.Services)
        {
            var own = replicas.Where(r => r.Name.StartsWith(service + "-", StringComparison.Ordinal)).ToList();
            if (own.Count == 0)
            {
                continue;
            }

            var largest = own.MaxBy(r => r.RssMb)!;
            var line = F("{0}: {1}: largest RSS {2} {3:0.0} MB ({4}; anon {5}; shmem {8}; PSS {6}): {7}", title, service, largest.Name, largest.RssMb,
                string.Join(", ", own.Select(r => F("{0} {1:0.0}", r.Name, r.RssMb))), string.Join("/", own.Select(r => F("{0:0.0}", r.AnonMb))),
                string.Join("/", own.Select(r => F("{0:0.0}", r.PssMb))), largest.RssMb < TargetRssMb ? "under 100 MB" : "NOT under 100 MB",
                string.Join("/", own.Select(r => F("{0:0.0}", r.ShmemMb))));
            log("   " + line);
            _summary.Add(line);
        }

        foreach (var b in bare.Concat(gateways))
        {
            _summary.Add(F("{0}: {1} {2:0.0} MB, anon {3:0.0}, PSS {4:0.0} ({5})", title, b.Name, b.RssMb, b.AnonMb, b.PssMb, b.Gc));
        }
    }

    // Replica 2 after --variant is compared with the bare host started with the same variant.
    private ResidentMemory? BaselineFor(ResidentMemory process, List<ResidentMemory> bare) =>
        _variantApplied && process.Name.EndsWith("-2", StringComparison.Ordinal) && bare.Count > 1 ? bare[1] : bare.FirstOrDefault();

    private bool _variantApplied;

    /// <summary>Stops a replica (graceful) and starts it again with <paramref name="extra"/> added to its environment; the exit code.</summary>
    private async Task<int> RestartAsync(string replica, IEnumerable<KeyValuePair<string, string>> extra, CancellationToken cancellationToken)
    {
        var stopped = await topology.CtlRunAsync("stop", replica, null, cancellationToken);
        return stopped.ExitCode != 0 ? stopped.ExitCode : (await topology.CtlRunAsync("start", replica, extra, cancellationToken)).ExitCode;
    }

    private async Task VariantAsync(CancellationToken cancellationToken)
    {
        var variant = string.Join(",", options.Variant.Select(v => v.Key + "=" + v.Value));
        log("");
        log(F("4. Variant {0}: every replica restarted (ctl.sh stop/start, in parallel), replica 2 of each service with {0}, replica 1 as before", variant));
        var started = Stopwatch.StartNew();
        var restarts = LocalTopology.Services.SelectMany(s => new[]
        {
            RestartAsync(LocalTopology.Replica(s, 1), [], cancellationToken),
            RestartAsync(LocalTopology.Replica(s, 2), options.Variant, cancellationToken),
        });
        if ((await Task.WhenAll(restarts)).Any(code => code != 0))
        {
            throw new BenchFailedException($"restarting a replica failed; see {scriptLog}");
        }

        _variantApplied = true;
        log(F("   all SERVING again after {0:0} s", started.Elapsed.TotalSeconds));
        await MemoryAsync(F("4a. Memory at idle after the restart ({0} on replica 2)", variant), cancellationToken);

        log("");
        log(F("4b. GetRequisitionStatus directly on requisition-2 ({0}) against requisition-1 (as deployed), same loop and rounds", variant));
        var one = Client(topology.Address("requisition", 1));
        var two = Client(topology.Address("requisition", 2));
        await CompareAsync(
            (F("requisition-2 ({0})", variant), new StatusLoad(two, _headers, _ids, options.Concurrency)),
            ("requisition-1 (as deployed)", new StatusLoad(one, _headers, _ids, options.Concurrency)),
            "variant/as deployed",
            verdict: null,
            cancellationToken);

        await MemoryAsync(F("4c. Memory at idle after the load ({0} on replica 2)", variant), cancellationToken);
    }
}
