using System.Diagnostics;
using System.Net.Http.Headers;
using System.Threading.Channels;
using LabMesh.Notification.Webhooks;
using LabMesh.Messaging.Events;
using LabMesh.Core.Diagnostics;
using Microsoft.Extensions.Options;

namespace LabMesh.Notification;

/// <summary>
/// Attempts due webhook deliveries: claims them in the store with a lease (so exactly one replica
/// attempts each), POSTs the stored body signed for this attempt (Standard Webhooks headers, the
/// delivery id as <c>webhook-id</c> on every attempt), and records the outcome and the next step
/// that <see cref="RetrySchedule"/> decides. A replica that dies mid-attempt leaves the delivery to
/// the others once its lease ends.
/// <para>
/// The store work per delivery is kept small and flat whatever the backlog: a claim takes several due
/// deliveries at once (it waits until at least half of the slots are free while busy) with their
/// endpoints in one statement along the due index, and the attempts that finish together are recorded
/// in one transaction, the same one that claims the deliveries for the slots they free. An attempt holds
/// its slot until its outcome is recorded, so the number of leases in play stays at
/// <see cref="NotificationOptions.DeliveryConcurrency"/>.
/// </para>
/// </summary>
public sealed partial class WebhookDeliveryWorker : BackgroundService
{
    // Attempts recorded per transaction at most.
    private const int RecordBatch = 256;

    private readonly NotificationStore _store;
    private readonly NotificationOptions _options;
    private readonly WebhookOptions _webhooks;
    private readonly RetrySchedule _schedule;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly HttpClient _http;
    private readonly WakeSignal _wake = new();
    private readonly Channel<(AttemptRecord Attempt, TaskCompletionSource<bool> Recorded)> _outcomes =
        Channel.CreateUnbounded<(AttemptRecord, TaskCompletionSource<bool>)>(new UnboundedChannelOptions { SingleReader = true });
    private readonly string _owner;

    public WebhookDeliveryWorker(
        NotificationStore store,
        IOptions<NotificationOptions> options,
        IOptions<WebhookOptions> webhooks,
        RetrySchedule schedule,
        WebhookTargetPolicy policy,
        TimeProvider time,
        ILogger<WebhookDeliveryWorker> logger)
    {
        _store = store;
        _options = options.Value;
        _webhooks = webhooks.Value;
        _schedule = schedule;
        _time = time;
        _logger = logger;
        _owner = _options.EffectiveConsumerName + "/" + Guid.NewGuid().ToString("N")[..8];
        _http = new HttpClient(policy.CreateHandler()) { Timeout = Timeout.InfiniteTimeSpan };
        _http.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("LabMesh-Webhooks", "1.0"));
    }

    /// <summary>Looks for due deliveries at once (after new ones were queued).</summary>
    public void Nudge() => _wake.Set();

    public override void Dispose()
    {
        _http.Dispose();
        _wake.Dispose();
        base.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var inFlight = new List<Task>();
        var batch = new List<(AttemptRecord Attempt, TaskCompletionSource<bool> Recorded)>(RecordBatch);
        var failures = 0;
        // While attempts run, a claim waits for this many free slots, so claims come in batches, not one per finished attempt
        // (half the slots: 9-10% less CPU per delivery than a quarter in a warm drain, fewer and larger claims; bench/README.md).
        var minClaim = Math.Max(1, _options.DeliveryConcurrency / 2);
        // The last claim found fewer due deliveries than it asked for: a claim of its own (one that records nothing)
        // waits for a nudge or the poll interval; a recording still claims for the slots it frees.
        var drained = false;

        // One wait outlives the iterations an attempt ends early: a new wait per iteration would leave the
        // old one queued on the signal, swallowing the next nudge.
        Task? wake = null;
        Task? outcomes = null;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                Gather(batch);
                inFlight.RemoveAll(t => t.IsCompleted);
                // The attempts being recorded free their slots in the same transaction.
                var free = _options.DeliveryConcurrency - inFlight.Count + batch.Count;
                var limit = free >= minClaim && (batch.Count > 0 || !drained) ? free : 0;
                if (batch.Count > 0 || limit > 0)
                {
                    var (claimed, error) = await RecordAndClaimAsync(batch, limit, stoppingToken);
                    if (claimed is not null)
                    {
                        foreach (var delivery in claimed)
                        {
                            inFlight.Add(AttemptAsync(delivery, stoppingToken));
                        }

                        drained = limit > 0 ? claimed.Count < limit : drained;
                        failures = 0;
                    }
                    else if (limit > 0)
                    {
                        failures++;
                        LogClaimFailed(_logger, failures, error!);
                    }
                }

                if (failures == 0 && _outcomes.Reader.TryPeek(out _))
                {
                    continue;
                }

                var wait = failures > 0 ? TimeSpan.FromMilliseconds(Math.Min(5000, 200 * failures)) : _options.DeliveryPollInterval;
                wake ??= _wake.WaitAsync(wait, stoppingToken);
                outcomes ??= _outcomes.Reader.WaitToReadAsync(CancellationToken.None).AsTask();
                if (!drained && failures == 0 && inFlight.Count > 0)
                {
                    // More may be due: claim again as soon as enough slots are free (an attempt may end without an outcome to record).
                    await Task.WhenAny(outcomes, wake, Task.WhenAny(inFlight));
                }
                else
                {
                    await Task.WhenAny(outcomes, wake);
                }

                if (outcomes.IsCompleted)
                {
                    outcomes = null;
                }

                if (wake.IsCompleted)
                {
                    await wake;
                    wake = null;
                    drained = false;
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: attempts in flight keep their leases and are taken again later.
        }

        // Stopping: nothing more is claimed, but what the attempts in flight finish with is recorded, so what was
        // POSTed is written down even while the host stops and is not sent again after the restart.
        inFlight.RemoveAll(t => t.IsCompleted);
        while (inFlight.Count > 0 || _outcomes.Reader.TryPeek(out _))
        {
            if (!_outcomes.Reader.TryPeek(out _))
            {
                await Task.WhenAny(Task.WhenAll(inFlight), _outcomes.Reader.WaitToReadAsync(CancellationToken.None).AsTask());
            }

            Gather(batch);
            if (batch.Count > 0)
            {
                await RecordAndClaimAsync(batch, 0, stoppingToken);
            }

            inFlight.RemoveAll(t => t.IsCompleted);
        }
    }

    // The finished attempts waiting to be recorded, up to RecordBatch.
    private void Gather(List<(AttemptRecord Attempt, TaskCompletionSource<bool> Recorded)> batch)
    {
        while (batch.Count < RecordBatch && _outcomes.Reader.TryRead(out var item))
        {
            batch.Add(item);
        }
    }

    /// <summary>
    /// Records the finished attempts gathered in <paramref name="batch"/> and claims up to <paramref name="limit"/> due
    /// deliveries, in one transaction (<see cref="NotificationStore.RecordAndClaimAsync"/>), and tells each attempt
    /// whether it was recorded. The claimed deliveries; none and the error when the transaction failed (nothing
    /// recorded, nothing claimed: the attempts' leases lapse and they are attempted again). A transaction that records
    /// goes through even while the host stops.
    /// </summary>
    private async Task<(IReadOnlyList<ClaimedDelivery>? Claimed, Exception? Error)> RecordAndClaimAsync(
        List<(AttemptRecord Attempt, TaskCompletionSource<bool> Recorded)> batch, int limit, CancellationToken stoppingToken)
    {
        try
        {
            var now = _time.GetUtcNow();
            var attempts = new AttemptRecord[batch.Count];
            for (var i = 0; i < batch.Count; i++)
            {
                attempts[i] = batch[i].Attempt;
            }

            var done = await _store.RecordAndClaimAsync(
                attempts, _owner, now, now + _webhooks.Timeout + _options.DeliveryLeaseMargin, limit, batch.Count > 0 ? CancellationToken.None : stoppingToken);
            for (var i = 0; i < batch.Count; i++)
            {
                batch[i].Recorded.TrySetResult(done.Recorded[i]);
            }

            return (done.Claimed, null);
        }
        catch (Exception ex) when (batch.Count > 0 || !stoppingToken.IsCancellationRequested)
        {
            batch.ForEach(b => b.Recorded.TrySetException(ex));
            return (null, ex);
        }
        finally
        {
            batch.Clear();
        }
    }

    private async Task AttemptAsync(ClaimedDelivery claimed, CancellationToken stoppingToken)
    {
        var (delivery, endpoint) = claimed;
        try
        {
            if (!endpoint.Enabled)
            {
                // Disabled since the claim's filter ran (a concurrent update): the lease lapses and the claim query skips it.
                return;
            }

            var attempt = delivery.Attempts + 1;
            var attemptedAt = _time.GetUtcNow();
            // A child of the span that caused the event; HttpClient's POST span is this one's child.
            using var span = LabMeshTelemetry.StartForEvent("webhook", ActivityKind.Producer, delivery.EventType, delivery.Traceparent, tracestate: null);
            span?.SetTag("labmesh.webhook.attempt", attempt);
            var (outcome, error, elapsed) = await SendAsync(endpoint, delivery, attemptedAt, stoppingToken);
            if (stoppingToken.IsCancellationRequested)
            {
                return;
            }

            var decision = _schedule.Decide(attempt, outcome, _time.GetUtcNow());
            // Low cardinality: what was decided (delivered, retry, dead-letter, disable) and how the endpoint answered.
            var decided = decision.Kind.ToString().ToLowerInvariant();
            var answered = outcome.Kind == WebhookOutcomeKind.Response ? $"{outcome.StatusCode / 100}xx" : outcome.Kind.ToString().ToLowerInvariant();
            span?.SetTag("labmesh.webhook.decision", decided);
            span?.SetTag("labmesh.webhook.response", answered);
            LabMeshMetrics.WebhookAttempts.Add(1, new TagList { { "labmesh.webhook.decision", decided }, { "labmesh.webhook.response", answered } });
            var recorded = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            _outcomes.Writer.TryWrite((new AttemptRecord(delivery, decision, outcome.StatusCode, error, attemptedAt), recorded));
            if (!await recorded.Task)
            {
                LogLeaseLost(_logger, delivery.Id, endpoint.Id);
                return;
            }

            LogAttempt(_logger, delivery.Id, delivery.EventType, endpoint.Id, attempt, decision.Reason, decision.Kind, (long)elapsed.TotalMilliseconds);
            if (decision.Kind == WebhookDecisionKind.DisableEndpoint)
            {
                LogDisabled(_logger, endpoint.Id);
            }
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
        {
            // The store failed: the lease lapses and the delivery is attempted again.
            LogAttemptFailed(_logger, delivery.Id, ex);
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private async Task<(WebhookAttemptOutcome Outcome, string Error, TimeSpan Elapsed)> SendAsync(
        EndpointRecord endpoint, DeliveryRecord delivery, DateTimeOffset attemptedAt, CancellationToken stoppingToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, endpoint.Url)
        {
            Content = new ByteArrayContent(delivery.Body),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        foreach (var (name, value) in WebhookSigner.Headers(delivery.Id, attemptedAt, delivery.Body, endpoint.SigningSecrets(attemptedAt)))
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        timeout.CancelAfter(_webhooks.Timeout);
        var started = Stopwatch.GetTimestamp();
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            var retryAfter = response.Headers.TryGetValues("Retry-After", out var values) ? values.FirstOrDefault() : null;
            var status = (int)response.StatusCode;
            return (WebhookAttemptOutcome.Response(status, retryAfter), status is >= 200 and <= 299 ? "" : $"HTTP {status}", Stopwatch.GetElapsedTime(started));
        }
        catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
        {
            var outcome = timeout.IsCancellationRequested ? WebhookAttemptOutcome.Timeout : WebhookAttemptOutcome.FromException(ex);
            return (outcome, outcome.ToString(), Stopwatch.GetElapsedTime(started));
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Webhook {DeliveryId} ({EventType}) to endpoint {EndpointId}, attempt {Attempt}: {Outcome} -> {Decision} in {ElapsedMs} ms")]
    private static partial void LogAttempt(ILogger logger, string deliveryId, string eventType, string endpointId, int attempt, string outcome, WebhookDecisionKind decision, long elapsedMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook endpoint {EndpointId} answered 410 Gone and is disabled")]
    private static partial void LogDisabled(ILogger logger, string endpointId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Webhook {DeliveryId} to endpoint {EndpointId}: the lease ended before the attempt was recorded; another replica owns it")]
    private static partial void LogLeaseLost(ILogger logger, string deliveryId, string endpointId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Claiming due webhook deliveries failed ({Failures} in a row)")]
    private static partial void LogClaimFailed(ILogger logger, int failures, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Webhook {DeliveryId}: recording the attempt failed; it is attempted again when its lease ends")]
    private static partial void LogAttemptFailed(ILogger logger, string deliveryId, Exception exception);
}
