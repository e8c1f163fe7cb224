using System.Globalization;

namespace LabMesh.Bench.Notification;

/// <summary>Command-line settings of one run (see ../README.md).</summary>
internal sealed class NotificationBenchOptions
{
    /// <summary>Part 1: critical-result latency.</summary>
    public bool Critical { get; private set; } = true;

    /// <summary>Part 2: webhook deliveries per second.</summary>
    public bool Webhooks { get; private set; } = true;

    /// <summary>Open-loop rates of part 1, results per second, each run on both sides.</summary>
    public IReadOnlyList<double> Rates { get; private set; } = [50, 200, 500];

    /// <summary>Measured seconds per side and rate.</summary>
    public double DurationSeconds { get; private set; } = 8;

    /// <summary>Seconds at the same rate before each measured window, not recorded.</summary>
    public double WarmupSeconds { get; private set; } = 2;

    /// <summary>Requisitions placed before part 1, used in turn.</summary>
    public int Requisitions { get; private set; } = 300;

    /// <summary>Open loop: calls in flight beyond this are not issued (counted as skipped).</summary>
    public int MaxInFlight { get; private set; } = 128;

    /// <summary>Events published for the webhook part.</summary>
    public int WebhookEvents { get; private set; } = 2000;

    /// <summary>Events delivered by the service (and POSTed by the baseline) before the webhook part's measured runs, not measured.</summary>
    public int WebhookWarmupEvents { get; private set; } = 200;

    /// <summary>Warm-up rounds of the webhook part: the measured round's shape (baseline, then service, N fresh events), not in the summary.</summary>
    public int WebhookWarmupRounds { get; private set; } = 2;

    /// <summary>Measured rounds of the webhook part (baseline, then service, N fresh events each), after the warm-up rounds.</summary>
    public int WebhookRounds { get; private set; } = 3;

    /// <summary>Webhook attempts per replica at once (<c>LabMesh:Notification:DeliveryConcurrency</c>), and the baseline's concurrency.</summary>
    public int DeliveryConcurrency { get; private set; } = 16;

    /// <summary>Notification replicas: 2 (as asked), or 1 for a diagnostic comparison.</summary>
    public int Replicas { get; private set; } = 2;

    /// <summary>Seconds of the low-rate webhook latency diagnostic (0: skip).</summary>
    public double TrickleSeconds { get; private set; } = 5;

    /// <summary>The receiver holds the service's POSTs until every event is in the store, then times the drain of that backlog.</summary>
    public bool Backlog { get; private set; }

    public string CommandLine { get; private set; } = "";

    public TimeSpan Duration => TimeSpan.FromSeconds(DurationSeconds);

    public TimeSpan Warmup => TimeSpan.FromSeconds(WarmupSeconds);

    public static NotificationBenchOptions Parse(string[] args)
    {
        var options = new NotificationBenchOptions { CommandLine = string.Join(' ', args) };
        for (var i = 0; i < args.Length; i++)
        {
            var arg = args[i];
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{arg} needs a value.");
            switch (arg)
            {
                case "--part":
                    var part = Value();
                    options.Critical = part is "all" or "critical";
                    options.Webhooks = part is "all" or "webhooks";
                    if (!options.Critical && !options.Webhooks)
                    {
                        throw new ArgumentException($"--part is all, critical or webhooks, not '{part}'.");
                    }
                    break;
                case "--rates":
                    options.Rates = [.. Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(r => Range(arg, r, 1, 5000))];
                    if (options.Rates.Count == 0)
                    {
                        throw new ArgumentException("--rates needs at least one rate.");
                    }
                    break;
                case "--duration":
                    options.DurationSeconds = Range(arg, Value(), 0.5, 120);
                    break;
                case "--warmup":
                    options.WarmupSeconds = Range(arg, Value(), 0, 60);
                    break;
                case "--requisitions":
                    options.Requisitions = Count(arg, Value(), 1, 5000);
                    break;
                case "--max-in-flight":
                    options.MaxInFlight = Count(arg, Value(), 1, 10_000);
                    break;
                case "--webhook-events":
                    options.WebhookEvents = Count(arg, Value(), 1, 100_000);
                    break;
                case "--webhook-warmup":
                    options.WebhookWarmupEvents = Count(arg, Value(), 1, 100_000);
                    break;
                case "--webhook-rounds":
                    options.WebhookRounds = Count(arg, Value(), 1, 1000);
                    break;
                case "--webhook-warmup-rounds":
                    options.WebhookWarmupRounds = Count(arg, Value(), 0, 1000);
                    break;
                case "--delivery-concurrency":
                    options.DeliveryConcurrency = Count(arg, Value(), 1, 1000);
                    break;
                case "--replicas":
                    options.Replicas = Count(arg, Value(), 1, 2);
                    break;
                case "--backlog":
                    options.Backlog = true;
                    break;
                case "--trickle":
                    options.TrickleSeconds = Range(arg, Value(), 0, 60);
                    break;
                default:
                    throw new ArgumentException($"Unknown option '{arg}'. Run with --help.");
            }
        }
        return options;
    }

    public const string Usage = """
        LabMesh.Bench.Notification: the Notification service, each figure against a baseline of the same run.

          dotnet run -c Release --project bench/LabMesh.Bench.Notification -- [options]

          --part P                  all (default), critical or webhooks
          --rates R,R,...           critical: open-loop results per second (default 50,200,500)
          --duration S              critical: measured seconds per side and rate (default 8)
          --warmup S                critical: seconds at the rate before each window, not recorded (default 2)
          --requisitions N          critical: requisitions placed first and used in turn (default 300)
          --max-in-flight N         critical: calls in flight beyond this are skipped and counted (default 128)
          --webhook-events N        webhooks: events published for the endpoint (default 2000)
          --webhook-warmup N        webhooks: events delivered by the service and POSTed by the baseline
                                    before the first round, not measured (default 200)
          --webhook-warmup-rounds W webhooks: rounds of the measured shape (the baseline, then the service, N fresh
                                    events each) that warm both sides alike, not in the summary (default 2; 0: the
                                    service's first drain of N measured, as before session 13)
          --webhook-rounds R        webhooks: measured rounds after them, the JIT settled before each side's
                                    window; the summary gives each and the median ratio (default 3)
          --delivery-concurrency N  webhooks: LabMesh:Notification:DeliveryConcurrency of each replica and
                                    the baseline client's concurrency (default 16, the service's default)
          --trickle S               webhooks: seconds of one event every 50 ms, publish-to-receipt
                                    latency, right after the drain and after 2 s idle (diagnostic;
                                    default 5, 0 = skip)
          --replicas N              Notification replicas, 2 (default) or 1 (diagnostic: the webhook
                                    part without a second replica; the stream is then on the same one)
          --backlog                 the receiver holds the service's first POSTs until the consumer group is empty
                                    (all N events are pending deliveries in the store), then the clock starts:
                                    the rate of draining a backlog of N, with no publishing or ingest in the window
          --help                    this text

        Redis (redis-server on a free loopback port), ServiceRequest, Requisition, ResultsInterpretation and
        two Notification replicas (one shared SQLite store, consumer names a and b), each a host on its own
        loopback port in this process, as tests/LabMesh.Notification.Tests starts them.
        Critical: SubmitResults (a partial report with a critical potassium) returning -> the
        labtest.result.critical event on a Subscribe stream held on replica b; baseline: IEventBus.PublishAsync
        of a synthetic critical event from a bus of its own -> the same stream.
        Webhooks: N events on the bus for a team with one endpoint (a Kestrel receiver on loopback answering
        200) until the receiver has all N; baseline: the same N bodies POSTed by one HttpClient.
        """;

    private static double Range(string name, string value, double min, double max)
    {
        var parsed = double.Parse(value, CultureInfo.InvariantCulture);
        return parsed >= min && parsed <= max ? parsed : throw new ArgumentException($"{name} must be {min} to {max}.");
    }

    private static int Count(string name, string value, int min, int max)
    {
        var parsed = int.Parse(value, CultureInfo.InvariantCulture);
        return parsed >= min && parsed <= max ? parsed : throw new ArgumentException($"{name} must be {min} to {max}.");
    }
}
