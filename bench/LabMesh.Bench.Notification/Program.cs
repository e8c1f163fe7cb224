using System.Diagnostics;
using LabMesh.Bench.Notification;
using static LabMesh.Bench.Notification.Report;

if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(NotificationBenchOptions.Usage);
    return 0;
}

NotificationBenchOptions options;
try
{
    options = NotificationBenchOptions.Parse(args);
}
catch (Exception ex) when (ex is ArgumentException or FormatException or OverflowException)
{
    Console.Error.WriteLine(ex.Message);
    Console.Error.WriteLine(NotificationBenchOptions.Usage);
    return 2;
}

var run = Stopwatch.StartNew();
Console.WriteLine($"LabMesh.Bench.Notification  {DateTimeOffset.Now:yyyy-MM-dd HH:mm zzz}");
foreach (var line in Machine())
{
    Console.WriteLine("  " + line);
}
Console.WriteLine($"  args: {(options.CommandLine.Length == 0 ? "(defaults)" : options.CommandLine)}");

var started = Stopwatch.GetTimestamp();
await using var mesh = await BenchMesh.StartAsync(options.DeliveryConcurrency, options.Replicas);
Console.WriteLine(F("  mesh: redis-server {0}, ServiceRequest, Requisition, ResultsInterpretation, Notification {1} (one SQLite store) on their own loopback ports; started in {2:0.0} s",
    mesh.Redis.Configuration, options.Replicas == 2 ? "a and b" : "b only", Stopwatch.GetElapsedTime(started).TotalSeconds));
Console.WriteLine(F("  Notification settings: the service's defaults (IngestPollInterval 100 ms, DeliveryPollInterval 1 s, SubscriberBuffer 1,000, ...) but DeliveryConcurrency {0} and AllowedNetworks 127.0.0.0/8",
    options.DeliveryConcurrency));
var summary = new List<string>();

if (options.Critical)
{
    Console.WriteLine();
    Console.WriteLine(F("1. Critical result to a Subscribe stream on replica b: open loop, {0:0.#} s warm-up + {1:0.#} s measured per side and rate; bus baseline first",
        options.WarmupSeconds, options.DurationSeconds));
    await using var critical = new CriticalLatencyBench(mesh, options, Console.WriteLine);
    await critical.SetUpAsync();
    Console.WriteLine("   latency: SubmitResults from its return, the baseline from its publish call, to the event off the stream, in ms (negative: before the call returned)");
    Console.WriteLine("   side                    rate/s achieved  issued skipped answered arrived missing   p50 ms   p90 ms   p99 ms   max ms  early");
    foreach (var rate in options.Rates)
    {
        var (bus, submit) = await critical.RunAsync(rate);
        foreach (var w in new[] { bus, submit })
        {
            Console.WriteLine(F(
                "   {0,-22} {1,7:0} {2,8:0.0} {3,7} {4,7} {5,8} {6,7} {7,7} {8,8:0.00} {9,8:0.00} {10,8:0.00} {11,8:0.00} {12,6}",
                w.Side, w.TargetRate, w.Run.Rate, w.Run.Issued, w.Run.Skipped, w.Ok, w.Arrived, w.Missing, w.Latency.P50, w.Latency.P90, w.Latency.P99, w.Latency.Max,
                w.ArrivedBeforeReturn));
            Console.WriteLine(F(
                "      call p50 {0:0.00} p99 {1:0.00}; issue -> arrival p50 {2:0.00} p99 {3:0.00}; start -> XADD p50 {4:0.0} p99 {5:0.0}; XADD -> arrival p50 {6:0.0} p99 {7:0.0} max {8:0.0}; {9}; {10}; issue late p99 {11:0.0} ms; errors: {12}{13}",
                w.Call.P50, w.Call.P99, w.FromIssue.P50, w.FromIssue.P99, w.StartToAppend.P50, w.StartToAppend.P99, w.AppendToArrival.P50, w.AppendToArrival.P99,
                w.AppendToArrival.Max, w.Run.Cpu, w.Run.ThreadPool, w.Run.LateP99Ms, w.Errors, w.NotCritical > 0 ? F("; {0} answered not critical", w.NotCritical) : ""));
        }

        Console.WriteLine(F("   at {0:0}/s: SubmitResults / bus {1}; SubmitResults issued {2} (+{3} skipped), {4} answered, {5} arrived, {6} missing",
            rate, Ratios(submit.Latency, bus.Latency), submit.Run.Issued, submit.Run.Skipped, submit.Ok, submit.Arrived, submit.Missing));
        summary.Add(F("critical at {0:0}/s: SubmitResults return -> stream p50 {1:0.00} ms, p90 {2:0.00}, p99 {3:0.00}, max {4:0.00} ({5} of {6} answered arrived, {7} skipped, {8:0.0}/s issued); bus baseline p50 {9:0.00}, p90 {10:0.00}, p99 {11:0.00}, max {12:0.00}; {13}",
            rate, submit.Latency.P50, submit.Latency.P90, submit.Latency.P99, submit.Latency.Max, submit.Arrived, submit.Ok, submit.Run.Skipped, submit.Run.Rate,
            bus.Latency.P50, bus.Latency.P90, bus.Latency.P99, bus.Latency.Max, Ratios(submit.Latency, bus.Latency)));
    }

    Console.WriteLine(F("   stream on replica b: {0} events, {1} duplicates, {2} heartbeats, {3}",
        critical.Stream.Events, critical.Stream.Duplicates, critical.Stream.Heartbeats, critical.Stream.Error is null ? "still open" : "ended: " + critical.Stream.Error.GetType().Name));
    Console.WriteLine("   call: the SubmitResults (or PublishAsync) call, issue to return. start -> XADD: from the start point (return, publish call) to the");
    Console.WriteLine("   XADD, and XADD -> arrival, by the wall clock against the stream id's millisecond (+0.5 ms: the id floors it), so each ±0.5 ms.");
}

if (options.Webhooks)
{
    Console.WriteLine();
    Console.WriteLine(F("2. Webhook deliveries: {0} events for one endpoint, {1} delivering, DeliveryConcurrency {2}",
        options.WebhookEvents, options.Replicas == 2 ? "two replicas" : "one replica (diagnostic)", options.DeliveryConcurrency));
    await using var webhooks = new WebhookBench(mesh, options, Console.WriteLine);
    await webhooks.SetUpAsync();
    var rounds = options.WebhookWarmupRounds + options.WebhookRounds;
    Console.WriteLine(F("   {0} warm-up round(s) then {1} measured, each the baseline then the service with {2} fresh events, the JIT settled before each side's window (nothing compiled for 0.5 s, at most 10 s); the warm-up rounds warm both sides alike and are not in the summary",
        options.WebhookWarmupRounds, options.WebhookRounds, options.WebhookEvents));
    var ratios = new List<double>();
    for (var r = 1; r <= rounds; r++)
    {
        var warmUp = r <= options.WebhookWarmupRounds;
        var (baseline, both, service, ingest) = await webhooks.RunAsync();
        Console.WriteLine(F("   round {0} of {1}{2}", r, rounds, warmUp ? " (warm-up, not in the summary)" : ""));
        Console.WriteLine("   side                               delivered dup    total s  deliveries/s  steady/s  first ms    50% ms    90% ms  max in receiver  connections  cores: process machine  CPU us/delivery  JIT in window: methods ms  settled before");
        foreach (var d in new[] { baseline, both, service })
        {
            Console.WriteLine(F("   {0,-34} {1,5}/{2,-5} {3,3} {4,8:0.000} {5,13:N0} {6,9:N0} {7,9:0.0} {8,9:0.0} {9,9:0.0} {10,16} {11,12}  {12,14:0.00} {13,7:0.00} {14,16:0} {15,23} {16,4:0}  {17}",
                d.Side, d.Delivered, d.Expected, d.Duplicates, d.Elapsed.TotalSeconds, d.PerSecond, d.SteadyPerSecond, d.FirstMs, d.HalfMs, d.NinetyMs,
                d.MaxInHandler, d.Connections, d.Cpu.ProcessCores, d.Cpu.MachineCores, d.CpuPerDeliveryUs, d.Cpu.JitMethods, d.Cpu.JitTime.TotalMilliseconds, d.Settled));
        }

        Console.WriteLine(F("   service: all {0} published on the bus after {1:0} ms; the consumer group was empty (all turned into deliveries) after {2:0} ms; afterwards the store holds {3} pending and {4} dead-lettered deliveries; {5}",
            options.WebhookEvents, ingest.PublishedMs, ingest.IngestedMs, ingest.PendingAfter, ingest.DeadLetterAfter, ingest.ThreadPool));
        Console.WriteLine(F("   service / baseline ({0} at once): deliveries/s {1:0.000}; against the baseline at {2}: {3:0.000}; CPU per delivery {4:0} us against {5:0} us",
            options.DeliveryConcurrency, service.PerSecond / baseline.PerSecond, 2 * options.DeliveryConcurrency, service.PerSecond / both.PerSecond,
            service.CpuPerDeliveryUs, baseline.CpuPerDeliveryUs));
        if (!warmUp)
        {
            ratios.Add(service.PerSecond / baseline.PerSecond);
            summary.Add(F("webhooks, round {8}: {0:N0} deliveries/s ({1} of {2} in {3:0.00} s, {4} duplicates) against {5:N0}/s from one HttpClient at {6} at once: x{7:0.000}; CPU per delivery {9:0} us against {10:0} us",
                service.PerSecond, service.Delivered, service.Expected, service.Elapsed.TotalSeconds, service.Duplicates, baseline.PerSecond, options.DeliveryConcurrency,
                service.PerSecond / baseline.PerSecond, r, service.CpuPerDeliveryUs, baseline.CpuPerDeliveryUs));
        }
    }

    if (ratios.Count > 1)
    {
        ratios.Sort();
        summary.Add(F("webhooks: service / baseline over the {0} measured rounds: median x{1:0.000}, {2:0.000}-{3:0.000}", ratios.Count, ratios[ratios.Count / 2], ratios[0], ratios[^1]));
    }

    if (options.TrickleSeconds > 0)
    {
        foreach (var (when, pause) in new[] { ("right after the burst", TimeSpan.Zero), ("after 2 s idle", TimeSpan.FromSeconds(2)) })
        {
            await Task.Delay(pause);
            var (latency, published, missing) = await webhooks.TrickleAsync(TimeSpan.FromSeconds(options.TrickleSeconds));
            Console.WriteLine(F("   diagnostic, {0}: one event every 50 ms for {1:0.#} s ({2} events, {3} missing): publish call -> receiver {4} ms",
                when, options.TrickleSeconds, published, missing, Ms(latency)));
            summary.Add(F("webhook latency at 20 events/s {0}: p50 {1:0.0} ms, p90 {2:0.0} ms, p99 {3:0.0} ms, max {4:0.0} ms", when, latency.P50, latency.P90, latency.P99, latency.Max));
        }
    }
}

Console.WriteLine();
Console.WriteLine("Summary");
foreach (var line in summary)
{
    Console.WriteLine("  " + line);
}

Console.WriteLine("Logs (Warning and above, per host)");
foreach (var line in mesh.LogSummary())
{
    Console.WriteLine("  " + line);
}

Console.WriteLine(F("Done in {0:0} s; load average now {1}", run.Elapsed.TotalSeconds, LoadAverage()));
return 0;

// A ratio of latencies that can be negative (SubmitResults' event may come before its call returns) says nothing.
static string Ratios(Distribution measured, Distribution baseline)
{
    static string One(string name, double m, double b) => m > 0 && b > 0 ? F("{0} x{1:0.00}", name, m / b) : F("{0} n/a ({1:0.00} vs {2:0.00} ms)", name, m, b);
    return string.Join(", ", One("p50", measured.P50, baseline.P50), One("p90", measured.P90, baseline.P90), One("p99", measured.P99, baseline.P99), One("max", measured.Max, baseline.Max));
}
