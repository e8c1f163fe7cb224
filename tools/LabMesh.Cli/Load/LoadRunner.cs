using System.Diagnostics;
using Grpc.Core;
using LabMesh.Cli.Mesh;

namespace LabMesh.Cli.Load;

/// <summary>
/// The bounds and shape of a load run. It stops issuing calls at whichever bound comes first:
/// <paramref name="Duration"/> or <paramref name="Calls"/>; calls already in flight finish within
/// their deadline.
/// </summary>
/// <param name="Schedule">The RPC of call n is <c>Schedule[n % Schedule.Count]</c>: the mix, spread evenly.</param>
/// <param name="Concurrency">Calls in flight at most.</param>
/// <param name="Duration">Stop issuing after this long; null: no time bound.</param>
/// <param name="Calls">Issue at most this many calls; null: no count bound.</param>
/// <param name="Rate">Start at most this many calls per second in total; null: as fast as the concurrency allows.</param>
internal sealed record LoadPlan(IReadOnlyList<LoadRpc> Schedule, int Concurrency, TimeSpan? Duration, long? Calls, double? Rate)
{
    /// <summary>
    /// A schedule in which each RPC appears weight times per cycle, interleaved (smooth weighted
    /// round-robin), so even a short run gets the mix.
    /// </summary>
    public static IReadOnlyList<LoadRpc> Interleave(IReadOnlyList<(LoadRpc Rpc, int Weight)> mix)
    {
        var total = mix.Sum(m => m.Weight);
        var current = new int[mix.Count];
        var schedule = new List<LoadRpc>(total);
        for (var slot = 0; slot < total; slot++)
        {
            var best = 0;
            for (var i = 0; i < mix.Count; i++)
            {
                current[i] += mix[i].Weight;
                if (current[i] > current[best])
                {
                    best = i;
                }
            }

            current[best] -= total;
            schedule.Add(mix[best].Rpc);
        }

        return schedule;
    }
}

/// <summary>Runs a <see cref="LoadPlan"/> and measures every call.</summary>
internal sealed class LoadRunner(LoadPlan plan, LoadContext context)
{
    private readonly Stopwatch _clock = new();
    private long _issued;
    private long _completed;
    private long _failed;

    public long Completed => Interlocked.Read(ref _completed);

    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>How far the run is towards its nearer bound, 0 to 1.</summary>
    public double Progress
    {
        get
        {
            var byTime = plan.Duration is { } duration ? _clock.Elapsed / duration : 0;
            var byCalls = plan.Calls is { } calls ? (double)Completed / calls : 0;
            return Math.Clamp(Math.Max(byTime, byCalls), 0, 1);
        }
    }

    public async Task<LoadOutcome> RunAsync(CancellationToken cancellationToken)
    {
        var workers = new Worker[plan.Concurrency];
        _clock.Start();
        var tasks = new Task[workers.Length];
        for (var i = 0; i < workers.Length; i++)
        {
            workers[i] = new Worker();
            var worker = workers[i];
            tasks[i] = Task.Run(() => WorkAsync(worker, cancellationToken), CancellationToken.None);
        }

        await Task.WhenAll(tasks);
        _clock.Stop();
        var bound = cancellationToken.IsCancellationRequested ? "interrupted"
            : plan.Calls is { } calls && Completed >= calls ? "calls"
            : "duration";
        return new LoadOutcome(_clock.Elapsed, bound, workers);
    }

    private async Task WorkAsync(Worker worker, CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            var n = Interlocked.Increment(ref _issued) - 1;
            if ((plan.Calls is { } calls && n >= calls) || TimeIsUp())
            {
                return;
            }

            if (plan.Rate is { } rate)
            {
                var wait = TimeSpan.FromSeconds(n / rate) - _clock.Elapsed;
                if (wait > TimeSpan.Zero)
                {
                    try
                    {
                        await Task.Delay(wait, cancellationToken);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }

                if (TimeIsUp())
                {
                    return;
                }
            }

            var rpc = plan.Schedule[(int)(n % plan.Schedule.Count)];
            var started = Stopwatch.GetTimestamp();
            try
            {
                await rpc.Invoke(context, n, context.Mesh.UnaryOptions(cancellationToken));
                worker.Succeeded(rpc.Name, Stopwatch.GetElapsedTime(started));
            }
            catch (RpcException e) when (!cancellationToken.IsCancellationRequested)
            {
                worker.Failed(rpc.Name, e);
                Interlocked.Increment(ref _failed);
            }
            catch (RpcException)
            {
                // Interrupted (Ctrl+C): a call cut short is neither a success nor the server's error.
                return;
            }

            Interlocked.Increment(ref _completed);
        }
    }

    private bool TimeIsUp() => plan.Duration is { } duration && _clock.Elapsed >= duration;

    /// <summary>One worker's measurements; merged when the run ends, so calls never contend on them.</summary>
    internal sealed class Worker
    {
        public Dictionary<string, List<double>> LatenciesMs { get; } = [];

        public Dictionary<string, long> ErrorsByRpc { get; } = [];

        public Dictionary<string, long> ErrorsByStatus { get; } = [];

        public Dictionary<string, string> ErrorExamples { get; } = [];

        public void Succeeded(string rpc, TimeSpan latency)
        {
            if (!LatenciesMs.TryGetValue(rpc, out var latencies))
            {
                LatenciesMs[rpc] = latencies = [];
            }

            latencies.Add(latency.TotalMilliseconds);
        }

        public void Failed(string rpc, RpcException error)
        {
            var status = StatusCodes.Name(error.StatusCode);
            ErrorsByRpc[rpc] = ErrorsByRpc.GetValueOrDefault(rpc) + 1;
            ErrorsByStatus[status] = ErrorsByStatus.GetValueOrDefault(status) + 1;
            ErrorExamples.TryAdd(status, $"{rpc}: {error.Status.Detail}");
        }
    }
}

/// <summary>What a run measured: its wall time, which bound ended it, and every worker's figures.</summary>
internal sealed record LoadOutcome(TimeSpan Elapsed, string Bound, IReadOnlyList<LoadRunner.Worker> Workers);
