using System.Diagnostics;
using Grpc.Core;
using LabMesh.Contracts.Requisition.V1;

namespace LabMesh.Bench.Gateway;

/// <summary>What one measured window saw: calls completed inside it and their latencies (ms, nearest rank).</summary>
internal sealed record LoadWindow(string Side, long Calls, long Errors, TimeSpan Elapsed, double P50, double P99, double P999, double Max, string? FirstError)
{
    public double Rate => Calls / Elapsed.TotalSeconds;
}

/// <summary>
/// A closed loop of GetRequisitionStatus: <c>concurrency</c> workers on one client (one HTTP/2 connection),
/// each issuing its next call when the previous one has answered, reading the requisitions in turn. A call's
/// latency runs from issuing it to its response (trailers included); calls completing inside the window count.
/// </summary>
internal sealed class StatusLoad(RequisitionService.RequisitionServiceClient client, Metadata headers, IReadOnlyList<string> ids, int concurrency)
{
    public async Task<LoadWindow> RunAsync(string side, TimeSpan warmup, TimeSpan duration, CancellationToken cancellationToken)
    {
        var recording = 0;
        var stop = 0;
        var workers = new Worker[concurrency];
        var tasks = new Task[concurrency];
        for (var i = 0; i < concurrency; i++)
        {
            var worker = workers[i] = new Worker();
            var first = i;
            tasks[i] = Task.Run(async () =>
            {
                var request = new GetRequisitionStatusRequest();
                for (var n = first; Volatile.Read(ref stop) == 0; n += concurrency)
                {
                    request.Id = ids[n % ids.Count];
                    var started = Stopwatch.GetTimestamp();
                    try
                    {
                        var response = await client.GetRequisitionStatusAsync(request, headers, DateTime.UtcNow.AddSeconds(10), CancellationToken.None);
                        if (response.Status is null)
                        {
                            throw new InvalidOperationException("answered without a status");
                        }

                        if (Volatile.Read(ref recording) == 1)
                        {
                            worker.Ticks.Add(Stopwatch.GetTimestamp() - started);
                        }
                    }
                    catch (Exception ex) when (ex is RpcException or InvalidOperationException)
                    {
                        if (Volatile.Read(ref recording) == 1)
                        {
                            worker.Errors++;
                        }

                        worker.FirstError ??= ex is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : ex.Message;
                        await Task.Delay(10, CancellationToken.None);
                    }
                }
            }, CancellationToken.None);
        }

        TimeSpan elapsed;
        try
        {
            await Task.Delay(warmup, cancellationToken);
            var windowStart = Stopwatch.GetTimestamp();
            Volatile.Write(ref recording, 1);
            await Task.Delay(duration, cancellationToken);
            Volatile.Write(ref recording, 0);
            elapsed = Stopwatch.GetElapsedTime(windowStart);
        }
        finally
        {
            Volatile.Write(ref stop, 1);
            await Task.WhenAll(tasks);
        }

        var ticks = workers.SelectMany(w => w.Ticks).ToArray();
        Array.Sort(ticks);
        return new LoadWindow(side, ticks.Length, workers.Sum(w => w.Errors), elapsed, Percentile(ticks, 0.50), Percentile(ticks, 0.99),
            Percentile(ticks, 0.999), Percentile(ticks, 1.0), workers.Select(w => w.FirstError).FirstOrDefault(e => e is not null));
    }

    private static double Percentile(long[] sorted, double p) =>
        sorted.Length == 0 ? double.NaN : sorted[Math.Clamp((int)Math.Ceiling(p * sorted.Length) - 1, 0, sorted.Length - 1)] * 1000.0 / Stopwatch.Frequency;

    private sealed class Worker
    {
        public List<long> Ticks { get; } = new(100_000);

        public long Errors { get; set; }

        public string? FirstError { get; set; }
    }
}
