using System.Globalization;
using System.Net.Http.Headers;

namespace LabMesh.Notification.Webhooks;

/// <summary>How an attempt to deliver a webhook ended.</summary>
public enum WebhookOutcomeKind
{
    /// <summary>The endpoint answered with a status code (any: 2xx, 3xx, 4xx, 5xx).</summary>
    Response,

    /// <summary>No answer within <see cref="WebhookOptions.Timeout"/>.</summary>
    Timeout,

    /// <summary>No answer at all: name not resolved, connection refused or reset, TLS failure.</summary>
    ConnectionFailed,

    /// <summary>The target resolved to an address <see cref="WebhookTargetPolicy"/> refuses.</summary>
    TargetRefused,
}

/// <summary>How an attempt ended: a response (status and <c>Retry-After</c>) or why there was none.</summary>
/// <param name="Kind">Response, or why there was none.</param>
/// <param name="StatusCode">The response's status code; 0 when there was no response.</param>
/// <param name="RetryAfter">The response's <c>Retry-After</c> header as sent (seconds or an HTTP-date), if any.</param>
public readonly record struct WebhookAttemptOutcome(WebhookOutcomeKind Kind, int StatusCode = 0, string? RetryAfter = null)
{
    public static WebhookAttemptOutcome Timeout => new(WebhookOutcomeKind.Timeout);

    public static WebhookAttemptOutcome ConnectionFailed => new(WebhookOutcomeKind.ConnectionFailed);

    public static WebhookAttemptOutcome TargetRefused => new(WebhookOutcomeKind.TargetRefused);

    /// <summary>A response with <paramref name="statusCode"/> and, if sent, its <c>Retry-After</c> header.</summary>
    public static WebhookAttemptOutcome Response(int statusCode, string? retryAfter = null) =>
        new(WebhookOutcomeKind.Response, statusCode, retryAfter);

    /// <summary>
    /// The outcome of an attempt that threw: <see cref="WebhookTargetRefusedException"/> anywhere in the
    /// chain is TargetRefused, a <see cref="TimeoutException"/> anywhere in it (HttpClient.Timeout throws a
    /// TaskCanceledException wrapping one) is Timeout, anything else ConnectionFailed.
    /// </summary>
    /// <remarks>The caller tells its own cancellation (shutdown) apart first: that is no outcome at all.
    /// A per-attempt <see cref="CancellationTokenSource"/> that expired is a timeout the caller knows of too.</remarks>
    public static WebhookAttemptOutcome FromException(Exception exception)
    {
        if (WebhookTargetRefusedException.Find(exception) is not null)
        {
            return TargetRefused;
        }
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is TimeoutException)
            {
                return Timeout;
            }
        }
        return ConnectionFailed;
    }

    /// <summary>A short description for logs and the dead-letter list, e.g. <c>HTTP 503, Retry-After 120</c>.</summary>
    public override string ToString() => Kind switch
    {
        WebhookOutcomeKind.Response when RetryAfter is { Length: > 0 } =>
            string.Create(CultureInfo.InvariantCulture, $"HTTP {StatusCode}, Retry-After {RetryAfter}"),
        WebhookOutcomeKind.Response => string.Create(CultureInfo.InvariantCulture, $"HTTP {StatusCode}"),
        WebhookOutcomeKind.Timeout => "timed out",
        WebhookOutcomeKind.ConnectionFailed => "connection failed",
        WebhookOutcomeKind.TargetRefused => "target refused",
        _ => Kind.ToString(),
    };
}

/// <summary>What to do after an attempt.</summary>
public enum WebhookDecisionKind
{
    /// <summary>Done: the endpoint answered 2xx.</summary>
    Delivered,

    /// <summary>Attempt again at <see cref="WebhookDecision.RetryAt"/>, with the same <c>webhook-id</c>.</summary>
    Retry,

    /// <summary>No more attempts: move the delivery to the dead-letter list (it can be replayed from there).</summary>
    DeadLetter,

    /// <summary>The endpoint answered 410 Gone: disable it and dead-letter this delivery (and hold back its others).</summary>
    DisableEndpoint,
}

/// <summary>What to do after an attempt, and why (the outcome, for logs and the dead-letter list).</summary>
/// <param name="Kind">What to do.</param>
/// <param name="RetryAt">When to attempt again; set only for <see cref="WebhookDecisionKind.Retry"/>.</param>
/// <param name="Reason">The attempt's outcome (<see cref="WebhookAttemptOutcome.ToString"/>).</param>
public sealed record WebhookDecision(WebhookDecisionKind Kind, DateTimeOffset? RetryAt, string Reason);

/// <summary>
/// When a webhook delivery is attempted again, from <see cref="WebhookOptions"/>: a pure function of
/// the attempt just made, its outcome and the clock (plus jitter). Immutable; thread-safe when the
/// random source is.
/// </summary>
/// <remarks>
/// <code>
/// outcome of attempt n (1-based)                n &lt; Attempts                              n = Attempts
/// 2xx                                           Delivered                                 Delivered
/// 410 Gone                                      DisableEndpoint                           DisableEndpoint
/// target refused (WebhookTargetPolicy)          DeadLetter: a retry would be refused too  DeadLetter
/// 429 or 503 with a valid Retry-After           Retry at now + max(d, min(R, MaxRetryAfter))  DeadLetter
/// any other status (1xx, 3xx, 4xx, 5xx),        Retry at now + d                          DeadLetter
/// 429/503 without one, timeout, connection failed
///
/// d = schedule[n] × (1 + Jitter × (2u − 1)), u uniform in [0, 1): within [1 − Jitter, 1 + Jitter) of
///     the scheduled delay, rounded to the millisecond (schedule[n] is the delay before attempt n + 1).
/// R = the Retry-After: delta-seconds, or an HTTP-date minus now (0 when past). It only ever lengthens
///     the wait, and by at most MaxRetryAfter; an unparsable value is ignored.
/// </code>
/// <para>3xx is a failure and is not followed (the spec: update the URL instead). Retry-After is read only
/// on 429 and 503, where it means "not before". A refused target is dead-lettered at once: the address
/// policy would refuse every retry the same way, and the dead letter can be replayed once the URL or the
/// allow-list is fixed. Attempt 1 happens schedule[0] (normally zero) after the delivery is queued:
/// <see cref="FirstAttemptAt"/>.</para>
/// </remarks>
public sealed class RetrySchedule
{
    /// <summary>The most attempts a schedule may have.</summary>
    public const int MaxAttempts = 100;

    private readonly Func<double> _random;

    /// <param name="options">The schedule, jitter and Retry-After cap.</param>
    /// <param name="random">Uniform numbers in [0, 1) for the jitter; <see cref="Random.Shared"/> when null.</param>
    /// <exception cref="ArgumentException">a delay is negative, there are more than <see cref="MaxAttempts"/>,
    /// the jitter is outside [0, 1) or MaxRetryAfter is negative.</exception>
    public RetrySchedule(WebhookOptions options, Func<double>? random = null)
    {
        var section = WebhookOptions.SectionName;
        var delays = options.EffectiveRetrySchedule;
        if (delays.Count > MaxAttempts)
        {
            throw new ArgumentException($"{section}:RetrySchedule has {delays.Count} entries; at most {MaxAttempts}.", nameof(options));
        }
        for (var i = 0; i < delays.Count; i++)
        {
            if (delays[i] < TimeSpan.Zero)
            {
                throw new ArgumentException($"{section}:RetrySchedule:{i} must not be negative, not {delays[i]}.", nameof(options));
            }
        }
        if (!(options.Jitter is >= 0 and < 1))
        {
            throw new ArgumentException(
                string.Create(CultureInfo.InvariantCulture, $"{section}:Jitter must be from 0 to 1 (excluded), not {options.Jitter}."),
                nameof(options));
        }
        if (options.MaxRetryAfter < TimeSpan.Zero)
        {
            throw new ArgumentException($"{section}:MaxRetryAfter must not be negative, not {options.MaxRetryAfter}.", nameof(options));
        }
        Delays = [.. delays];
        Jitter = options.Jitter;
        MaxRetryAfter = options.MaxRetryAfter;
        _random = random ?? Random.Shared.NextDouble;
    }

    /// <summary>The delay before each attempt, without jitter.</summary>
    public IReadOnlyList<TimeSpan> Delays { get; }

    /// <summary>How many attempts a delivery gets.</summary>
    public int Attempts => Delays.Count;

    /// <summary>The jitter fraction.</summary>
    public double Jitter { get; }

    /// <summary>The longest wait a Retry-After can impose.</summary>
    public TimeSpan MaxRetryAfter { get; }

    /// <summary>When to make attempt 1 of a delivery queued at <paramref name="queuedAt"/>: after schedule[0] with jitter.</summary>
    public DateTimeOffset FirstAttemptAt(DateTimeOffset queuedAt) => queuedAt + Jittered(Delays[0]);

    /// <summary>What to do after attempt <paramref name="attempt"/> (1-based) ended with <paramref name="outcome"/> at <paramref name="now"/> (see the table above).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="attempt"/> is below 1.</exception>
    public WebhookDecision Decide(int attempt, WebhookAttemptOutcome outcome, DateTimeOffset now)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(attempt, 1);
        var reason = outcome.ToString();
        var response = outcome.Kind == WebhookOutcomeKind.Response;
        if (response && outcome.StatusCode is >= 200 and <= 299)
        {
            return new WebhookDecision(WebhookDecisionKind.Delivered, null, reason);
        }
        if (response && outcome.StatusCode == 410)
        {
            return new WebhookDecision(WebhookDecisionKind.DisableEndpoint, null, reason);
        }
        if (outcome.Kind == WebhookOutcomeKind.TargetRefused || attempt >= Attempts)
        {
            return new WebhookDecision(WebhookDecisionKind.DeadLetter, null, reason);
        }
        var delay = Jittered(Delays[attempt]);
        if (response && outcome.StatusCode is 429 or 503 && TryReadRetryAfter(outcome.RetryAfter, now, out var retryAfter))
        {
            var wait = retryAfter < MaxRetryAfter ? retryAfter : MaxRetryAfter;
            delay = wait > delay ? wait : delay;
        }
        return new WebhookDecision(WebhookDecisionKind.Retry, now + delay, reason);
    }

    /// <summary>The wait a <c>Retry-After</c> value asks for at <paramref name="now"/>: delta-seconds, or an HTTP-date (0 when past).</summary>
    public static bool TryReadRetryAfter(string? value, DateTimeOffset now, out TimeSpan wait)
    {
        wait = TimeSpan.Zero;
        if (string.IsNullOrWhiteSpace(value) || !RetryConditionHeaderValue.TryParse(value, out var parsed))
        {
            return false;
        }
        if (parsed.Delta is { } delta)
        {
            wait = delta;
            return true;
        }
        if (parsed.Date is { } date)
        {
            wait = date > now ? date - now : TimeSpan.Zero;
            return true;
        }
        return false;
    }

    private TimeSpan Jittered(TimeSpan delay)
    {
        if (delay == TimeSpan.Zero || Jitter == 0)
        {
            return delay;
        }
        var u = Math.Clamp(_random(), 0, 1);
        var factor = 1 + (Jitter * ((2 * u) - 1));
        return TimeSpan.FromMilliseconds(Math.Round(delay.TotalMilliseconds * factor));
    }
}
