using LabMesh.Notification.Webhooks;
using Microsoft.Extensions.Configuration;

namespace LabMesh.Notification.Tests.Webhooks;

public class RetryScheduleTests
{
    private const WebhookDecisionKind Delivered = WebhookDecisionKind.Delivered;
    private const WebhookDecisionKind Retry = WebhookDecisionKind.Retry;
    private const WebhookDecisionKind DeadLetter = WebhookDecisionKind.DeadLetter;
    private const WebhookDecisionKind Disable = WebhookDecisionKind.DisableEndpoint;

    // Monday 5 January 2026, 10:00:00 UTC.
    private static readonly DateTimeOffset Now = new(2026, 1, 5, 10, 0, 0, TimeSpan.Zero);

    // u = 0.5 is the middle of the jitter range: the scheduled delay exactly.
    private static readonly RetrySchedule NoJitter = new(new WebhookOptions(), () => 0.5);

    private static WebhookAttemptOutcome Status(int code, string? retryAfter = null) => WebhookAttemptOutcome.Response(code, retryAfter);

    // (attempt just made, outcome, decision, seconds from now to the retry or -1, reason)
    public static TheoryData<int, WebhookAttemptOutcome, WebhookDecisionKind, int, string> Rows() => new()
    {
        // 2xx: delivered, on any attempt
        { 1, Status(200), Delivered, -1, "HTTP 200" },
        { 1, Status(204), Delivered, -1, "HTTP 204" },
        { 3, Status(299), Delivered, -1, "HTTP 299" },
        { 8, Status(202), Delivered, -1, "HTTP 202" },
        // 410 Gone: disable the endpoint, on any attempt
        { 1, Status(410), Disable, -1, "HTTP 410" },
        { 8, Status(410), Disable, -1, "HTTP 410" },
        // failures: the next scheduled delay (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h)
        { 1, Status(500), Retry, 5, "HTTP 500" },
        { 2, Status(500), Retry, 300, "HTTP 500" },
        { 3, Status(502), Retry, 1_800, "HTTP 502" },
        { 4, Status(404), Retry, 7_200, "HTTP 404" },
        { 5, Status(400), Retry, 18_000, "HTTP 400" },
        { 6, Status(301), Retry, 36_000, "HTTP 301" },
        { 7, Status(500), Retry, 36_000, "HTTP 500" },
        { 1, Status(100), Retry, 5, "HTTP 100" },
        { 1, Status(300), Retry, 5, "HTTP 300" },
        { 1, Status(401), Retry, 5, "HTTP 401" },
        { 1, Status(504), Retry, 5, "HTTP 504" },
        { 1, WebhookAttemptOutcome.Timeout, Retry, 5, "timed out" },
        { 2, WebhookAttemptOutcome.ConnectionFailed, Retry, 300, "connection failed" },
        // after the last attempt: dead letter
        { 8, Status(500), DeadLetter, -1, "HTTP 500" },
        { 8, WebhookAttemptOutcome.Timeout, DeadLetter, -1, "timed out" },
        { 9, Status(500), DeadLetter, -1, "HTTP 500" },
        { 8, Status(429, "120"), DeadLetter, -1, "HTTP 429, Retry-After 120" },
        // a refused target: dead letter at once
        { 1, WebhookAttemptOutcome.TargetRefused, DeadLetter, -1, "target refused" },
        // 429 and 503 with Retry-After: max(scheduled, Retry-After capped at 1 h)
        { 1, Status(429, "120"), Retry, 120, "HTTP 429, Retry-After 120" },
        { 1, Status(503, "120"), Retry, 120, "HTTP 503, Retry-After 120" },
        { 3, Status(429, "2"), Retry, 1_800, "HTTP 429, Retry-After 2" },
        { 1, Status(429, "7200"), Retry, 3_600, "HTTP 429, Retry-After 7200" },
        { 5, Status(429, "7200"), Retry, 18_000, "HTTP 429, Retry-After 7200" },
        { 1, Status(503, "0"), Retry, 5, "HTTP 503, Retry-After 0" },
        { 2, Status(503, "Mon, 05 Jan 2026 10:10:00 GMT"), Retry, 600, "HTTP 503, Retry-After Mon, 05 Jan 2026 10:10:00 GMT" },
        { 1, Status(429, "Mon, 05 Jan 2026 12:00:00 GMT"), Retry, 3_600, "HTTP 429, Retry-After Mon, 05 Jan 2026 12:00:00 GMT" },
        { 2, Status(503, "Mon, 05 Jan 2026 09:00:00 GMT"), Retry, 300, "HTTP 503, Retry-After Mon, 05 Jan 2026 09:00:00 GMT" },
        // Retry-After ignored: absent, unparsable, or on another status
        { 1, Status(429), Retry, 5, "HTTP 429" },
        { 1, Status(503, "soon"), Retry, 5, "HTTP 503, Retry-After soon" },
        { 1, Status(429, "-60"), Retry, 5, "HTTP 429, Retry-After -60" },
        { 1, Status(500, "600"), Retry, 5, "HTTP 500, Retry-After 600" },
        { 1, Status(502, "600"), Retry, 5, "HTTP 502, Retry-After 600" },
    };

    [Theory]
    [MemberData(nameof(Rows))]
    public void Decide_DefaultSchedule(int attempt, WebhookAttemptOutcome outcome, WebhookDecisionKind kind, int seconds, string reason)
    {
        var decision = NoJitter.Decide(attempt, outcome, Now);

        Assert.Equal(new WebhookDecision(kind, seconds < 0 ? null : Now.AddSeconds(seconds), reason), decision);
    }

    [Fact]
    public void DefaultSchedule_IsEightAttemptsOverAbout27Hours()
    {
        Assert.Equal(8, NoJitter.Attempts);
        Assert.Equal(new TimeSpan(27, 35, 5), NoJitter.Delays.Aggregate(TimeSpan.Zero, (sum, d) => sum + d));
        Assert.Equal(Now, NoJitter.FirstAttemptAt(Now));
    }

    // (u from the random source, attempt just made, milliseconds to the retry): delay × (1 + 0.1 × (2u − 1))
    [Theory]
    [InlineData(0.0, 1, 4_500)]
    [InlineData(0.25, 1, 4_750)]
    [InlineData(0.75, 1, 5_250)]
    [InlineData(0.999999, 1, 5_500)]
    [InlineData(1.0, 1, 5_500)]
    [InlineData(0.0, 4, 6_480_000)]
    [InlineData(1.0, 4, 7_920_000)]
    [InlineData(-3.0, 1, 4_500)]
    [InlineData(7.0, 1, 5_500)]
    public void Decide_Jitter_StaysWithinTenPercent(double u, int attempt, int milliseconds)
    {
        var schedule = new RetrySchedule(new WebhookOptions(), () => u);

        var decision = schedule.Decide(attempt, WebhookAttemptOutcome.Timeout, Now);

        Assert.Equal(Now.AddMilliseconds(milliseconds), decision.RetryAt);
    }

    [Fact]
    public void Decide_SharedRandom_StaysWithinTheJitterBounds()
    {
        var schedule = new RetrySchedule(new WebhookOptions());

        for (var i = 0; i < 1_000; i++)
        {
            var wait = schedule.Decide(3, WebhookAttemptOutcome.ConnectionFailed, Now).RetryAt!.Value - Now;
            Assert.InRange(wait, TimeSpan.FromMinutes(27), TimeSpan.FromMinutes(33));
        }
    }

    [Fact]
    public void Decide_RetryAfter_IsNotJittered()
    {
        var schedule = new RetrySchedule(new WebhookOptions(), () => 0);

        var decision = schedule.Decide(1, Status(429, "120"), Now);

        Assert.Equal(Now.AddSeconds(120), decision.RetryAt);
    }

    [Fact]
    public void FirstAttemptAt_ZeroDelay_IsNeverJittered()
    {
        var schedule = new RetrySchedule(new WebhookOptions(), () => 0);

        Assert.Equal(Now, schedule.FirstAttemptAt(Now));
    }

    [Fact]
    public void Decide_ConfiguredSchedule_AttemptsAsManyTimesAsEntries()
    {
        var options = new WebhookOptions { RetrySchedule = [TimeSpan.Zero, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2)], Jitter = 0 };
        var schedule = new RetrySchedule(options);

        Assert.Equal(Now.AddSeconds(1), schedule.Decide(1, Status(500), Now).RetryAt);
        Assert.Equal(Now.AddSeconds(2), schedule.Decide(2, Status(500), Now).RetryAt);
        Assert.Equal(DeadLetter, schedule.Decide(3, Status(500), Now).Kind);
    }

    [Fact]
    public void Decide_AttemptZero_IsRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => NoJitter.Decide(0, Status(500), Now));
    }

    // (exception, outcome)
    public static TheoryData<Exception, WebhookOutcomeKind> Exceptions() => new()
    {
        { new HttpRequestException("refused", new WebhookTargetRefusedException()), WebhookOutcomeKind.TargetRefused },
        { new TaskCanceledException("HttpClient.Timeout", new TimeoutException()), WebhookOutcomeKind.Timeout },
        { new TimeoutException(), WebhookOutcomeKind.Timeout },
        { new HttpRequestException("connection refused", new System.Net.Sockets.SocketException(111)), WebhookOutcomeKind.ConnectionFailed },
        { new IOException("reset"), WebhookOutcomeKind.ConnectionFailed },
    };

    [Theory]
    [MemberData(nameof(Exceptions))]
    public void FromException_ClassifiesTheChain(Exception exception, WebhookOutcomeKind kind)
    {
        Assert.Equal(kind, WebhookAttemptOutcome.FromException(exception).Kind);
    }

    [Fact]
    public void Options_BoundFromConfiguration_ReplaceTheDefaults()
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["LabMesh:Notification:Webhooks:RetrySchedule:0"] = "00:00:00",
            ["LabMesh:Notification:Webhooks:RetrySchedule:1"] = "00:00:30",
            ["LabMesh:Notification:Webhooks:Jitter"] = "0.2",
            ["LabMesh:Notification:Webhooks:Timeout"] = "00:00:20",
            ["LabMesh:Notification:Webhooks:MaxRetryAfter"] = "00:10:00",
            ["LabMesh:Notification:Webhooks:AllowedHosts:0"] = "hooks.lab.internal",
            ["LabMesh:Notification:Webhooks:AllowedNetworks:0"] = "127.0.0.0/8",
            ["LabMesh:Notification:Webhooks:AllowedNetworks:1"] = "::1/128",
        }).Build();

        var options = configuration.GetSection(WebhookOptions.SectionName).Get<WebhookOptions>()!;
        options.Validate();

        Assert.Equal([TimeSpan.Zero, TimeSpan.FromSeconds(30)], options.EffectiveRetrySchedule);
        Assert.Equal(0.2, options.Jitter);
        Assert.Equal(TimeSpan.FromSeconds(20), options.Timeout);
        Assert.Equal(TimeSpan.FromMinutes(10), options.MaxRetryAfter);
        Assert.Equal(["hooks.lab.internal"], options.AllowedHosts);
        Assert.Equal(["127.0.0.0/8", "::1/128"], options.AllowedNetworks);
    }

    [Fact]
    public void Options_Defaults()
    {
        var options = new ConfigurationBuilder().Build().GetSection(WebhookOptions.SectionName).Get<WebhookOptions>() ?? new WebhookOptions();

        Assert.Equal(
            [TimeSpan.Zero, TimeSpan.FromSeconds(5), TimeSpan.FromMinutes(5), TimeSpan.FromMinutes(30),
             TimeSpan.FromHours(2), TimeSpan.FromHours(5), TimeSpan.FromHours(10), TimeSpan.FromHours(10)],
            options.EffectiveRetrySchedule);
        Assert.Equal(0.1, options.Jitter);
        Assert.Equal(TimeSpan.FromSeconds(15), options.Timeout);
        Assert.Equal(TimeSpan.FromHours(1), options.MaxRetryAfter);
        Assert.Empty(options.AllowedHosts);
        Assert.Empty(options.AllowedNetworks);
    }

    // (setting, value, message)
    public static TheoryData<string, string, string> InvalidOptions() => new()
    {
        { "RetrySchedule:0", "-00:00:05", "LabMesh:Notification:Webhooks:RetrySchedule:0 must not be negative, not -00:00:05. (Parameter 'options')" },
        { "Jitter", "1", "LabMesh:Notification:Webhooks:Jitter must be from 0 to 1 (excluded), not 1. (Parameter 'options')" },
        { "Jitter", "-0.1", "LabMesh:Notification:Webhooks:Jitter must be from 0 to 1 (excluded), not -0.1. (Parameter 'options')" },
        { "Jitter", "NaN", "LabMesh:Notification:Webhooks:Jitter must be from 0 to 1 (excluded), not NaN. (Parameter 'options')" },
        { "MaxRetryAfter", "-00:00:01", "LabMesh:Notification:Webhooks:MaxRetryAfter must not be negative, not -00:00:01. (Parameter 'options')" },
        { "Timeout", "00:00:00", "LabMesh:Notification:Webhooks:Timeout must be positive, not 00:00:00." },
        { "AllowedNetworks:0", "10.0.0.0/33", "LabMesh:Notification:Webhooks:AllowedNetworks:0: '10.0.0.0/33' is not a network in CIDR form such as 10.20.0.0/16 or ::1/128. (Parameter 'options')" },
        { "AllowedNetworks:0", "intranet", "LabMesh:Notification:Webhooks:AllowedNetworks:0: 'intranet' is not a network in CIDR form such as 10.20.0.0/16 or ::1/128. (Parameter 'options')" },
        { "AllowedHosts:0", "http://hooks.lab.internal/", "LabMesh:Notification:Webhooks:AllowedHosts:0: 'http://hooks.lab.internal/' is not a host name or address. (Parameter 'options')" },
        { "AllowedHosts:0", " ", "LabMesh:Notification:Webhooks:AllowedHosts:0: ' ' is not a host name or address. (Parameter 'options')" },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void Validate_BadSetting_NamesItsKey(string setting, string value, string message)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            [$"{WebhookOptions.SectionName}:{setting}"] = value,
        }).Build();
        var options = configuration.GetSection(WebhookOptions.SectionName).Get<WebhookOptions>()!;

        var error = Assert.Throws<ArgumentException>(options.Validate);

        Assert.Equal(message, error.Message);
    }
}
