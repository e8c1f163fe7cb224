namespace LabMesh.Notification;

/// <summary>The Notification service's settings. Bound from <c>LabMesh:Notification</c>.</summary>
public sealed class NotificationOptions
{
    public const string SectionName = "LabMesh:Notification";

    /// <summary>A Subscribe stream's heartbeat period when the caller names none. Default 15 s.</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Events held for one Subscribe stream while its client reads (and while it replays). A stream
    /// whose buffer is full is ended with RESOURCE_EXHAUSTED. Default 1,000.
    /// </summary>
    public int SubscriberBuffer { get; set; } = 1_000;

    /// <summary>
    /// How long a stream whose buffer overflowed waits for its client to read what was already sent
    /// before the connection's stream is reset. Default 30 s.
    /// </summary>
    public TimeSpan SlowSubscriberGrace { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long a critical result may stay unacknowledged before it is escalated, and again between escalations. Default 30 min.</summary>
    public TimeSpan AcknowledgementWindow { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>
    /// Per CLSI GP47 tier (<c>critical_risk</c>, <c>significant_risk</c>): its acknowledgement window and
    /// escalation chain, in place of the defaults (see <see cref="CriticalTierPolicies"/>).
    /// </summary>
    public Dictionary<string, CriticalTierOptions> CriticalTiers { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Per team (by team id): its own tier settings, over <see cref="CriticalTiers"/>.</summary>
    public Dictionary<string, TeamNotificationOptions> Teams { get; set; } = new(StringComparer.Ordinal);

    /// <summary>How often overdue critical results are looked for. Default 5 s.</summary>
    public TimeSpan EscalationCheckInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The Redis consumer group the replicas share to turn events into deliveries. Default <c>notification</c>.</summary>
    public string ConsumerGroup { get; set; } = "notification";

    /// <summary>This replica's consumer name in the group; default the host name and process id.</summary>
    public string? ConsumerName { get; set; }

    /// <summary>An event a replica took and did not acknowledge for this long is taken over by another. Default 30 s.</summary>
    public TimeSpan ClaimIdle { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How often the event stream is read for new events when nothing wakes the reader. Default 100 ms.</summary>
    public TimeSpan IngestPollInterval { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>How often due deliveries are looked for when nothing wakes the worker. Default 1 s.</summary>
    public TimeSpan DeliveryPollInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Webhook attempts one replica makes at the same time. Default 16.</summary>
    public int DeliveryConcurrency { get; set; } = 16;

    /// <summary>
    /// A replica holds a delivery for its attempt's timeout plus this; if it dies meanwhile another
    /// replica attempts it once the lease ends. Default 15 s.
    /// </summary>
    public TimeSpan DeliveryLeaseMargin { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>How long a rotated-out secret keeps signing when the caller names no overlap. Default 24 h.</summary>
    public TimeSpan DefaultRotationOverlap { get; set; } = TimeSpan.FromHours(24);

    public string EffectiveConsumerName => string.IsNullOrWhiteSpace(ConsumerName)
        ? $"{Environment.MachineName}-{Environment.ProcessId}"
        : ConsumerName;

    /// <summary>Throws when a setting is out of range, naming it.</summary>
    public void Validate()
    {
        Require(HeartbeatInterval >= TimeSpan.FromMilliseconds(10), nameof(HeartbeatInterval), "at least 10 ms");
        Require(SubscriberBuffer is >= 1 and <= 1_000_000, nameof(SubscriberBuffer), "between 1 and 1,000,000");
        Require(SlowSubscriberGrace > TimeSpan.Zero, nameof(SlowSubscriberGrace), "positive");
        Require(AcknowledgementWindow > TimeSpan.Zero, nameof(AcknowledgementWindow), "positive");
        Require(EscalationCheckInterval > TimeSpan.Zero, nameof(EscalationCheckInterval), "positive");
        Require(!string.IsNullOrWhiteSpace(ConsumerGroup), nameof(ConsumerGroup), "set");
        Require(ClaimIdle > TimeSpan.Zero, nameof(ClaimIdle), "positive");
        Require(IngestPollInterval > TimeSpan.Zero, nameof(IngestPollInterval), "positive");
        Require(DeliveryPollInterval > TimeSpan.Zero, nameof(DeliveryPollInterval), "positive");
        Require(DeliveryConcurrency is >= 1 and <= 1_000, nameof(DeliveryConcurrency), "between 1 and 1,000");
        Require(DeliveryLeaseMargin > TimeSpan.Zero, nameof(DeliveryLeaseMargin), "positive");
        Require(DefaultRotationOverlap >= TimeSpan.Zero, nameof(DefaultRotationOverlap), "zero or more");

        static void Require(bool ok, string name, string what)
        {
            if (!ok)
            {
                throw new InvalidOperationException($"{SectionName}:{name} must be {what}.");
            }
        }
    }
}

/// <summary>One tier's follow-up of a critical result (see <see cref="CriticalTierPolicies"/>).</summary>
public sealed class CriticalTierOptions
{
    /// <summary>Time to acknowledge, and between escalations; unset: the next level's.</summary>
    public TimeSpan? AcknowledgementWindow { get; set; }

    /// <summary>Who escalation 1, 2, ... reaches (the last again after the end), e.g. <c>attending</c>, <c>on_call_physician</c>; empty: the next level's.</summary>
    public List<string> EscalationChain { get; set; } = [];
}

/// <summary>One team's Notification settings.</summary>
public sealed class TeamNotificationOptions
{
    /// <summary>Per tier, over the service-wide <see cref="NotificationOptions.CriticalTiers"/>.</summary>
    public Dictionary<string, CriticalTierOptions> CriticalTiers { get; set; } = new(StringComparer.Ordinal);
}
