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
/// GetRequisitionStatus on one client (one HTTP/2 connection), reading the requisitions in turn; calls completing
/// inside the window count. With <c>rate</c> 0, a closed loop: <c>concurrency</c> workers, each issuing its next
/// call when the previous one has answered; a call's latency runs from issuing it to its response (trailers
/// included). With a <c>rate</c>, an open loop: calls go out at that many per second whatever the answers do
/// (paced by a 1 ms timer, so they leave in small bursts), and a call's latency runs from issuing it; the
/// issuer's own timer lag is left out, a stalled server still shows in every call sent during the stall.
/// </summary>
internal sealed class StatusLoad(RequisitionService.RequisitionServiceClient client, Metadata headers, IReadOnlyList<string> ids, int concurrency, double rate = 0)
{
    public Task<LoadWindow> RunAsync(string side, TimeSpan warmup, TimeSpan duration, CancellationToken cancellationToken) =>
        rate > 0 ? RunOpenAsync(side, warmup, duration, cancellationToken) : RunClosedAsync(side, warmup, duration, cancellationToken);

    private async Task<LoadWindow> RunOpenAsync(string side, TimeSpan warmup, TimeSpan duration, CancellationToken cancellationToken)
    {
        var recorder = new Worker();
        var pending = new List<Task>();
        var start = Stopwatch.GetTimestamp();
        var windowStart = start + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
        var end = windowStart + (long)(duration.TotalSeconds * Stopwatch.Frequency);
        long issued = 0;
        while (true)
        {
            var now = Stopwatch.GetTimestamp();
            if (now >= end)
            {
                break;
            }

            // Every call due by now goes out; the clock's ticks are ~1 ms, so at 1,000/s about one per wake.
            var due = (long)((now - start) * rate / Stopwatch.Frequency);
            for (; issued <= due; issued++)
            {
                var dueAt = start + (long)(issued * Stopwatch.Frequency / rate);
                pending.Add(CallAsync(ids[(int)(issued % ids.Count)], dueAt >= windowStart, recorder));
            }

            await Task.Delay(1, cancellationToken);
        }

        await Task.WhenAll(pending);
        var ticks = recorder.Ticks.ToArray();
        Array.Sort(ticks);
        return new LoadWindow(side, ticks.Length, recorder.Errors, duration, Percentile(ticks, 0.50), Percentile(ticks, 0.99),
            Percentile(ticks, 0.999), Percentile(ticks, 1.0), recorder.FirstError);
    }

    private async Task CallAsync(string id, bool record, Worker recorder)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            var response = await client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = id }, headers, DateTime.UtcNow.AddSeconds(10), CancellationToken.None);
            if (response.Status is null)
            {
                throw new InvalidOperationException("answered without a status");
            }

            if (record)
            {
                var latency = Stopwatch.GetTimestamp() - started;
                lock (recorder)
                {
                    recorder.Ticks.Add(latency);
                }
            }
        }
        catch (Exception ex) when (ex is RpcException or InvalidOperationException)
        {
            lock (recorder)
            {
                recorder.Errors += record ? 1 : 0;
                recorder.FirstError ??= ex is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : ex.Message;
            }
        }
    }

    private async Task<LoadWindow> RunClosedAsync(string side, TimeSpan warmup, TimeSpan duration, CancellationToken cancellationToken)
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
