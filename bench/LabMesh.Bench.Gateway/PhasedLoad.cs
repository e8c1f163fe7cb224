using System.Diagnostics;
using Grpc.Core;
using LabMesh.Contracts.Requisition.V1;

namespace LabMesh.Bench.Gateway;

/// <summary>One stretch of an open loop: this many calls per second for this long.</summary>
internal sealed record LoadPhase(string Name, double Rate, TimeSpan Duration);

/// <summary>
/// An open loop through phases of different rates (e.g. normal, 3x what the path carries, normal again): calls go out
/// at each phase's rate whatever the answers do, paced as <see cref="StatusLoad"/>'s open loop (a 1 ms timer), and
/// every call is kept: when it was issued, how long it took and its status, so the run can be cut into phases and
/// short bins afterwards (how many were shed, whether the path ever stopped answering, when latency came back).
/// The count is bounded by the phases (rate x duration); every call has a 10 s deadline.
/// </summary>
internal sealed class PhasedLoad(RequisitionService.RequisitionServiceClient client, Metadata headers, IReadOnlyList<string> ids)
{
    /// <summary>Status of a call that failed other than with an RpcException (e.g. answered without a status).</summary>
    public const int OtherFailure = -1;

    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    /// <summary>Runs the phases one after the other, then waits for every call to answer (at most its deadline).</summary>
    /// <param name="phases">Rates and durations, in order.</param>
    /// <param name="sample">Called about every 250 ms while calls go out (e.g. to count connections), with the seconds since the start.</param>
    /// <param name="cancellationToken">Stops issuing calls.</param>
    public async Task<PhasedRun> RunAsync(IReadOnlyList<LoadPhase> phases, Action<double>? sample, CancellationToken cancellationToken)
    {
        var capacity = (int)phases.Sum(p => Math.Ceiling(p.Rate * p.Duration.TotalSeconds)) + phases.Count + 16;
        var run = new PhasedRun(phases, capacity);
        var pending = new List<Task>(capacity);
        var start = Stopwatch.GetTimestamp();
        var nextSample = 0.0;
        var phaseStart = start;
        for (var p = 0; p < phases.Count; p++)
        {
            var phase = phases[p];
            var end = phaseStart + (long)(phase.Duration.TotalSeconds * Stopwatch.Frequency);
            long issued = 0;
            while (true)
            {
                var now = Stopwatch.GetTimestamp();
                if (now >= end)
                {
                    break;
                }

                var due = (long)((now - phaseStart) * phase.Rate / Stopwatch.Frequency);
                for (; issued <= due; issued++)
                {
                    var dueAt = phaseStart - start + (long)(issued * Stopwatch.Frequency / phase.Rate);
                    pending.Add(CallAsync(run, run.Next(p, dueAt, Stopwatch.GetTimestamp() - start)));
                }

                var seconds = (now - start) / (double)Stopwatch.Frequency;
                if (sample is not null && seconds >= nextSample)
                {
                    sample(seconds);
                    nextSample = seconds + 0.25;
                }

                await Task.Delay(1, cancellationToken);
            }

            phaseStart = end;
        }

        await Task.WhenAll(pending);
        return run;
    }

    private async Task CallAsync(PhasedRun run, int index)
    {
        var started = Stopwatch.GetTimestamp();
        int status;
        try
        {
            var response = await client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = ids[index % ids.Count] }, headers,
                DateTime.UtcNow.Add(Deadline), CancellationToken.None);
            status = response.Status is null ? OtherFailure : 0;
        }
        catch (RpcException ex)
        {
            status = (int)ex.StatusCode;
        }

        run.Complete(index, Stopwatch.GetTimestamp() - started, status);
    }
}

/// <summary>
/// Every call of a <see cref="PhasedLoad"/>: its phase, when it was due by the plan and when it was issued (Stopwatch ticks
/// from the start), its latency from being issued, its status (0 = OK). Calls are counted in the phase they were due in;
/// a loaded machine can issue them late (<see cref="LagPercentile"/> says how late).
/// </summary>
internal sealed class PhasedRun(IReadOnlyList<LoadPhase> phases, int capacity)
{
    private int _count;

    public IReadOnlyList<LoadPhase> Phases { get; } = phases;

    public int[] Phase { get; } = new int[capacity];

    public long[] Due { get; } = new long[capacity];

    public long[] Issued { get; } = new long[capacity];

    public long[] Latency { get; } = new long[capacity];

    public int[] Status { get; } = new int[capacity];

    public int Count => _count;

    public int Next(int phase, long dueAt, long issuedAt)
    {
        var index = _count++;
        Phase[index] = phase;
        Due[index] = dueAt;
        Issued[index] = issuedAt;
        return index;
    }

    public void Complete(int index, long latency, int status)
    {
        Latency[index] = latency;
        Status[index] = status;
    }

    public static double Seconds(long ticks) => ticks / (double)Stopwatch.Frequency;

    public static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    /// <summary>Start of a phase, seconds from the start of the run.</summary>
    public double PhaseStart(int phase) => Phases.Take(phase).Sum(p => p.Duration.TotalSeconds);

    /// <summary>Calls of a phase.</summary>
    public IEnumerable<int> InPhase(int phase) => Enumerable.Range(0, _count).Where(i => Phase[i] == phase);

    /// <summary>Calls due in [from, to) seconds.</summary>
    public IEnumerable<int> DueBetween(double from, double to)
    {
        for (var i = 0; i < _count; i++)
        {
            var at = Seconds(Due[i]);
            if (at >= from && at < to)
            {
                yield return i;
            }
        }
    }

    /// <summary>How late the calls went out after they were due (ms, nearest rank): the load generator's own lag.</summary>
    public double LagPercentile(IEnumerable<int> calls, double p)
    {
        var sorted = calls.Select(i => Issued[i] - Due[i]).Order().ToArray();
        return sorted.Length == 0 ? double.NaN : Ms(sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)]);
    }

    /// <summary>The p-th latency (ms, nearest rank) of the successful calls among <paramref name="calls"/>; NaN when none.</summary>
    public double SuccessPercentile(IEnumerable<int> calls, double p)
    {
        var sorted = calls.Where(i => Status[i] == 0).Select(i => Latency[i]).Order().ToArray();
        return sorted.Length == 0 ? double.NaN : Ms(sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)]);
    }

    /// <summary>Successful calls completed in each bin of <paramref name="bin"/> seconds over [from, to).</summary>
    public int[] SuccessesCompletedPerBin(double from, double to, double bin)
    {
        var bins = new int[(int)Math.Ceiling((to - from) / bin)];
        for (var i = 0; i < _count; i++)
        {
            if (Status[i] != 0)
            {
                continue;
            }

            var done = Seconds(Issued[i] + Latency[i]);
            if (done >= from && done < to)
            {
                bins[Math.Min(bins.Length - 1, (int)((done - from) / bin))]++;
            }
        }

        return bins;
    }
}
