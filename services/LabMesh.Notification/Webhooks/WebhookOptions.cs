namespace LabMesh.Notification.Webhooks;

/// <summary>How webhooks are delivered. Bound from configuration section <c>LabMesh:Notification:Webhooks</c>.</summary>
/// <remarks>
/// <code>
/// "LabMesh": { "Notification": { "Webhooks": {
///   "RetrySchedule": [ "00:00:00", "00:00:05", "00:05:00", "00:30:00", "02:00:00", "05:00:00", "10:00:00", "10:00:00" ],
///   "Jitter": 0.1, "Timeout": "00:00:15", "MaxRetryAfter": "01:00:00",
///   "AllowedHosts": [ "hooks.lab.internal" ], "AllowedNetworks": [ "10.20.0.0/16" ] } } }
/// </code>
/// or as environment variables: <c>LabMesh__Notification__Webhooks__AllowedNetworks__0=127.0.0.0/8</c>.
/// <para>The lists start empty and an empty <see cref="RetrySchedule"/> means
/// <see cref="DefaultRetrySchedule"/>: the configuration binder adds configured items to a list
/// that already holds some, so a pre-filled default could never be replaced.</para>
/// </remarks>
public sealed class WebhookOptions
{
    public const string SectionName = "LabMesh:Notification:Webhooks";

    /// <summary>
    /// The delay before each attempt, the first from when the delivery is queued (immediately, 5 s,
    /// 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight attempts over about 27 h 35 min).
    /// </summary>
    public static IReadOnlyList<TimeSpan> DefaultRetrySchedule { get; } =
    [
        TimeSpan.Zero,
        TimeSpan.FromSeconds(5),
        TimeSpan.FromMinutes(5),
        TimeSpan.FromMinutes(30),
        TimeSpan.FromHours(2),
        TimeSpan.FromHours(5),
        TimeSpan.FromHours(10),
        TimeSpan.FromHours(10),
    ];

    /// <summary>
    /// The delay before each attempt (entry n before attempt n + 1; the first is normally zero). As many
    /// attempts as entries, then the delivery is dead-lettered. Empty (the default): <see cref="DefaultRetrySchedule"/>.
    /// </summary>
    public List<TimeSpan> RetrySchedule { get; set; } = [];

    /// <summary>Each delay is scaled by a random factor in [1 − Jitter, 1 + Jitter). From 0 to 1 (excluded). Default 0.1 (±10 %).</summary>
    public double Jitter { get; set; } = 0.1;

    /// <summary>How long one attempt may take, connection included; then it counts as a timeout. Default 15 s.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>The longest wait a <c>Retry-After</c> header can impose (it never shortens the schedule). Default 1 h.</summary>
    public TimeSpan MaxRetryAfter { get; set; } = TimeSpan.FromHours(1);

    /// <summary>
    /// Host names (as written in endpoint URLs, case-insensitive, exact) whose addresses are all allowed,
    /// private or not. Default none.
    /// </summary>
    public List<string> AllowedHosts { get; set; } = [];

    /// <summary>
    /// Networks in CIDR form (<c>10.20.0.0/16</c>, <c>::1/128</c>; a bare address is one host) whose
    /// addresses are allowed though private, loopback or link-local. Default none. The tests list
    /// <c>127.0.0.0/8</c> and <c>::1/128</c>.
    /// </summary>
    public List<string> AllowedNetworks { get; set; } = [];

    /// <summary>
    /// Only <c>https</c> endpoints: an <c>http</c> URL is refused when an endpoint is created or updated, and
    /// an endpoint made before the setting is refused at delivery (dead-lettered). Default false; the
    /// production overlay sets it, whose NetworkPolicy lets Notification out on 443 only.
    /// </summary>
    public bool RequireHttps { get; set; }

    /// <summary>The schedule in force: <see cref="RetrySchedule"/>, or <see cref="DefaultRetrySchedule"/> when it is empty.</summary>
    public IReadOnlyList<TimeSpan> EffectiveRetrySchedule => RetrySchedule.Count > 0 ? RetrySchedule : DefaultRetrySchedule;

    /// <summary>Checks every setting, as <see cref="Webhooks.RetrySchedule"/> and <see cref="WebhookTargetPolicy"/> will use them.</summary>
    /// <exception cref="ArgumentException">a setting is out of range; the message names its configuration key.</exception>
    public void Validate()
    {
        if (Timeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"{SectionName}:Timeout must be positive, not {Timeout}.");
        }
        _ = new RetrySchedule(this);
        _ = new WebhookTargetPolicy(this);
    }
}
