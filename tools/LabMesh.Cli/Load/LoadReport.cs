namespace LabMesh.Cli.Load;

/// <summary>One RPC's figures: latencies are of the calls that succeeded, in milliseconds.</summary>
internal sealed record RpcReport(
    string Rpc, long Calls, long Errors, double CallsPerSecond, double? P50Ms, double? P99Ms, double? P999Ms, double? MaxMs);

/// <summary>What <c>labmesh load</c> prints: the whole run, each RPC, and the errors by gRPC status.</summary>
internal sealed record LoadReport(
    string Target,
    string Team,
    string Bound,
    double DurationMs,
    int Concurrency,
    double? Rate,
    int SetupRequisitions,
    long Calls,
    long Errors,
    double CallsPerSecond,
    IReadOnlyList<RpcReport> Rpcs,
    IReadOnlyDictionary<string, long> ErrorsByStatus,
    IReadOnlyDictionary<string, string> ErrorExamples)
{
    public static LoadReport Of(LoadOutcome outcome, LoadPlan plan, string target, string team, int setupRequisitions)
    {
        var seconds = Math.Max(outcome.Elapsed.TotalSeconds, 1e-9);
        var rpcs = new List<RpcReport>();
        foreach (var name in plan.Schedule.Select(r => r.Name).Distinct())
        {
            var latencies = outcome.Workers.SelectMany(w => w.LatenciesMs.GetValueOrDefault(name) ?? []).Order().ToArray();
            var errors = outcome.Workers.Sum(w => w.ErrorsByRpc.GetValueOrDefault(name));
            var calls = latencies.Length + errors;
            rpcs.Add(new RpcReport(name, calls, errors, Round(calls / seconds),
                Percentile(latencies, 0.50), Percentile(latencies, 0.99), Percentile(latencies, 0.999),
                latencies.Length == 0 ? null : Round(latencies[^1])));
        }

        var byStatus = new SortedDictionary<string, long>(StringComparer.Ordinal);
        var examples = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var worker in outcome.Workers)
        {
            foreach (var (status, count) in worker.ErrorsByStatus)
            {
                byStatus[status] = byStatus.GetValueOrDefault(status) + count;
            }

            foreach (var (status, example) in worker.ErrorExamples)
            {
                examples.TryAdd(status, example);
            }
        }

        var total = rpcs.Sum(r => r.Calls);
        return new LoadReport(target, team, outcome.Bound, Round(outcome.Elapsed.TotalMilliseconds), plan.Concurrency, plan.Rate,
            setupRequisitions, total, rpcs.Sum(r => r.Errors), Round(total / seconds), rpcs, byStatus, examples);
    }

    /// <summary>Nearest rank: the smallest value at least <paramref name="p"/> of the values are at or below.</summary>
    private static double? Percentile(double[] sorted, double p) =>
        sorted.Length == 0 ? null : Round(sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)]);

    private static double Round(double value) => Math.Round(value, 3);
}
