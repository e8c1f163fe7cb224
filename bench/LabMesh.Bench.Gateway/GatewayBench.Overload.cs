using Grpc.Core;
using LabMesh.Testing;
using static LabMesh.Bench.Gateway.Report;

namespace LabMesh.Bench.Gateway;

/// <summary>
/// <c>--overload R</c>: the gateway driven past what it carries and back (open loop: the normal rate, then R calls/s,
/// then the normal rate again), against the same three phases direct to requisition-1 in the same rounds. What
/// callers see (calls shed RESOURCE_EXHAUSTED, any other error, latency of the successes), whether the path ever
/// stops answering (successes completed per 250 ms), the connections the gateway holds to the replicas, and how long
/// after the overload the p99 is back at its level before it.
/// </summary>
internal sealed partial class GatewayBench
{
    private const double Bin = 0.25;
    private const int RecoveredBins = 4;
    private static readonly TimeSpan Before = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan After = TimeSpan.FromSeconds(10);

    private async Task OverloadAsync(CancellationToken cancellationToken)
    {
        var normal = options.Rate > 0 ? options.Rate : 2000;
        var phases = new[]
        {
            new LoadPhase("before", normal, Before),
            new LoadPhase("overload", options.Overload, options.OverloadDuration),
            new LoadPhase("after", normal, After),
        };
        log("");
        log(F("2d. Overload and recovery, open loop: {0:N0} calls/s for {1:0} s, {2:N0} calls/s for {3:0} s, {0:N0} calls/s for {4:0} s; a new channel per run (HTTP/2 connections as grpc-dotnet opens them), 10 s deadline; gateway and direct (requisition-1) alternating, {5} round(s)",
            normal, Before.TotalSeconds, options.Overload, options.OverloadDuration.TotalSeconds, After.TotalSeconds, options.Rounds));
        log("   phase columns: calls issued; OK; RESOURCE_EXHAUSTED (shed); other errors; p50/p99/max ms of the successes issued in the phase; successes completed per second, mean and the lowest 250 ms bin; connections (max while it ran)");
        var replicaPorts = LocalTopology.Replicas.Select(r => new Uri(topology.Address("requisition", r)).Port).ToHashSet();
        if (options.Candidate is { } spec && _candidate is null)
        {
            _candidate = await Candidate.StartAsync(spec, topology, options.PortBase + 93, cancellationToken);
            log(F("   the candidate {0}: {1}", _candidate.Name, _candidate.Started));
        }

        var sides = new List<(string Name, string Address, int? Upstream)>
        {
            ("gateway (YARP -> 2 replicas)", topology.Gateway, topology.Pid("gateway")),
            ("direct (requisition-1)", topology.Address("requisition", 1), null),
        };
        if (_candidate is not null)
        {
            var candidate = (F("{0} -> 2 replicas", _candidate.Name), _candidate.Address, _candidate.Pid);
            if (options.CandidateFirst)
            {
                sides.Insert(0, candidate);
            }
            else
            {
                sides.Add(candidate);
            }
        }

        if (options.StallSeconds > 0)
        {
            log(F("   requisition-2 is frozen (SIGSTOP) for the first {0:0.#} s of each overload phase, then resumed (SIGCONT)", options.StallSeconds));
        }

        var recoveries = sides.ToDictionary(s => s.Name, _ => new List<string>());
        for (var round = 1; round <= options.Rounds; round++)
        {
            foreach (var side in round % 2 == 1 ? sides : Enumerable.Reverse(sides))
            {
                var line = await OverloadRunAsync(round, side.Name, side.Address, side.Upstream, replicaPorts, phases, cancellationToken);
                recoveries[side.Name].Add(line);
                // Whatever the replicas still do for the last run settles before the next one.
                await Task.Delay(TimeSpan.FromSeconds(2), cancellationToken);
            }
        }

        foreach (var (name, lines) in recoveries)
        {
            foreach (var line in lines)
            {
                _summary.Add(F("2d. {0}: {1}", name, line));
            }
        }
    }

    private async Task<string> OverloadRunAsync(int round, string name, string address, int? upstreamPid, IReadOnlySet<int> replicaPorts, LoadPhase[] phases,
        CancellationToken cancellationToken)
    {
        var clientPort = new HashSet<int> { new Uri(address).Port };
        var stalled = options.StallSeconds > 0 ? topology.Pid(LocalTopology.Replica("requisition", 2)) : null;
        Task? resume = null;
        var logPath = Path.Combine(topology.State, "logs", "gateway.log");
        var logStart = File.Exists(logPath) ? new FileInfo(logPath).Length : 0;
        var load = new PhasedLoad(Client(address), _headers, _ids);
        var cpu = new List<string>();
        var phaseCpu = ProcessCpu.Start(topology, _candidate);
        var phase = 0;
        var upstreamMax = new int[phases.Length];
        var clientMax = new int[phases.Length];
        var run = await load.RunAsync(phases, seconds =>
        {
            var current = Math.Min(phases.Length - 1, Enumerable.Range(0, phases.Length).Last(p => PhaseStartOf(phases, p) <= seconds));
            if (current != phase)
            {
                cpu.Add(phaseCpu.Stop());
                phaseCpu = ProcessCpu.Start(topology, _candidate);
                phase = current;
                if (current == 1 && stalled is { } frozen)
                {
                    Signal("STOP", frozen);
                    resume = Task.Delay(TimeSpan.FromSeconds(options.StallSeconds), CancellationToken.None).ContinueWith(_ => Signal("CONT", frozen), TaskScheduler.Default);
                }
            }

            if (upstreamPid is { } pid)
            {
                upstreamMax[current] = Math.Max(upstreamMax[current], TcpConnections.Count(pid, replicaPorts));
            }

            clientMax[current] = Math.Max(clientMax[current], TcpConnections.Count(Environment.ProcessId, clientPort));
        }, cancellationToken);
        cpu.Add(phaseCpu.Stop());
        if (resume is not null)
        {
            await resume;
        }

        var upstreamEnd = upstreamPid is { } p ? TcpConnections.Count(p, replicaPorts) : 0;

        log(F("   round {0}, {1}:", round, name));
        for (var i = 0; i < phases.Length; i++)
        {
            var from = run.PhaseStart(i);
            var to = from + phases[i].Duration.TotalSeconds;
            var calls = run.InPhase(i).ToList();
            var ok = calls.Count(c => run.Status[c] == 0);
            var shed = calls.Count(c => run.Status[c] == (int)StatusCode.ResourceExhausted);
            var bins = run.SuccessesCompletedPerBin(from, to, Bin);
            log(F("     {0,-9} {1,7:N0}/s {2,8:N0} issued {3,8:N0} OK {4,7:N0} shed {5,5} other  p50 {6,7:0.00}  p99 {7,8:0.00}  max {8,8:0.00} ms  OK {9,7:N0}/s (lowest bin {10,6:N0}/s)  connections: client {11}{12}; issued late by p99 {13:0.0} ms",
                phases[i].Name, phases[i].Rate, calls.Count, ok, shed, calls.Count - ok - shed,
                run.SuccessPercentile(calls, 0.50), run.SuccessPercentile(calls, 0.99), run.SuccessPercentile(calls, 1.0),
                bins.Sum() / phases[i].Duration.TotalSeconds, bins.Min() / Bin, clientMax[i],
                upstreamPid is null ? "" : F(", gateway -> replicas {0}", upstreamMax[i]), run.LagPercentile(calls, 0.99)));
            if (i < cpu.Count)
            {
                log("               " + cpu[i]);
            }
        }

        var others = Enumerable.Range(0, run.Count).Where(c => run.Status[c] != 0 && run.Status[c] != (int)StatusCode.ResourceExhausted)
            .GroupBy(c => run.Status[c] == PhasedLoad.OtherFailure ? "answered without a status" : ((StatusCode)run.Status[c]).ToString())
            .Select(g => F("{0} {1:N0}", g.Key, g.Count())).ToList();
        var (recovery, threshold, normalP99) = Recovery(run, phases);
        var overload = run.PhaseStart(1);
        var lowest = run.SuccessesCompletedPerBin(overload, run.PhaseStart(phases.Length), Bin).Min() / Bin;
        var totalShed = Enumerable.Range(0, run.Count).Count(c => run.Status[c] == (int)StatusCode.ResourceExhausted);
        var summary = F("round {0}: {1:N0} shed, other errors: {2}; lowest successes from the overload on {3:N0}/s (250 ms bins); p99 before {4:0.00} ms, back under {5:0.00} ms {6}{7}",
            round, totalShed, others.Count == 0 ? "none" : string.Join(", ", others), lowest, normalP99, threshold,
            recovery is { } r ? F("{0:0.00} s after the overload ended", r) : F("NOT within the {0:0} s after it", After.TotalSeconds),
            upstreamPid is null ? "" : F("; gateway -> replicas connections at most {0}, {1} at the end", upstreamMax.Max(), upstreamEnd));
        log("     " + summary);
        if (upstreamPid is not null && upstreamPid == topology.Pid("gateway") && File.Exists(logPath))
        {
            var warnings = NewLogLines(logPath, logStart).Where(l => l.StartsWith("warn:", StringComparison.Ordinal) || l.StartsWith("fail:", StringComparison.Ordinal)
                || l.StartsWith("crit:", StringComparison.Ordinal)).ToList();
            log(F("     the gateway's log: {0} warning/error line(s) in this run{1}", warnings.Count, warnings.Count == 0 ? "" : "; first: " + warnings[0]));
        }

        return summary;
    }

    /// <summary>kill -STOP / -CONT of a replica this run started (by its pid).</summary>
    private static void Signal(string signal, int pid)
    {
        using var kill = System.Diagnostics.Process.Start("kill", ["-" + signal, pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    private static double PhaseStartOf(LoadPhase[] phases, int phase) => phases.Take(phase).Sum(p => p.Duration.TotalSeconds);

    /// <summary>
    /// Seconds from the end of the overload to the first of <see cref="RecoveredBins"/> consecutive 250 ms bins (calls by
    /// the time they were due) with every call OK and a p99 at most 1.5 times the p99 before the overload (at least 1 ms above it:
    /// a 250 ms bin's p99 is its 5th-slowest call at 2,000/s); null when that never happened.
    /// </summary>
    private static (double? Seconds, double Threshold, double NormalP99) Recovery(PhasedRun run, LoadPhase[] phases)
    {
        var normal = run.SuccessPercentile(run.InPhase(0), 0.99);
        var threshold = Math.Max(1.5 * normal, normal + 1.0);
        var from = run.PhaseStart(2);
        var count = (int)(phases[2].Duration.TotalSeconds / Bin);
        var good = new bool[count];
        for (var b = 0; b < count; b++)
        {
            var calls = run.DueBetween(from + b * Bin, from + (b + 1) * Bin).ToList();
            good[b] = calls.Count > 0 && calls.All(c => run.Status[c] == 0) && run.SuccessPercentile(calls, 0.99) <= threshold;
        }

        for (var b = 0; b + RecoveredBins <= count; b++)
        {
            if (good.Skip(b).Take(RecoveredBins).All(g => g))
            {
                return (b * Bin, threshold, normal);
            }
        }

        return (null, threshold, normal);
    }

    private static List<string> NewLogLines(string path, long from)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        stream.Seek(Math.Min(from, stream.Length), SeekOrigin.Begin);
        using var reader = new StreamReader(stream);
        var lines = new List<string>();
        while (reader.ReadLine() is { } line)
        {
            lines.Add(line);
        }

        return lines;
    }
}
