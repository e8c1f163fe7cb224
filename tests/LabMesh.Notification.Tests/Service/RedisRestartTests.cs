using System.Diagnostics;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Messaging.Events;
using LabMesh.Testing;
using Xunit.Abstractions;

namespace LabMesh.Notification.Tests.Service;

/// <summary>
/// Issue 23 item 3: after Redis comes back, webhook delivery and stream fan-out resume within a bound (the relays', the
/// ingest's and the Redis client's reconnect timings). A real redis-server stopped and started again.
/// </summary>
public sealed class RedisRestartTests(ITestOutputHelper output)
{
    // The target is 2 s; the bound leaves room for a loaded test machine and is still far below what the old timings
    // gave (the relay's backoff had grown to 4-8 s after an outage of this length).
    private static readonly TimeSpan ResumeBound = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan Outage = TimeSpan.FromSeconds(8);
    private readonly string _team = "team-" + Guid.NewGuid().ToString("N")[..8];

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    [Fact]
    public async Task RedisStoppedAndStarted_ACriticalResultCommittedDuringTheOutage_ReachesTheWebhookAndTheStreamSoonAfterRedisIsBack()
    {
        await using var mesh = await NotificationMesh.StartAsync(null, "b");
        await using var receiver = await WebhookReceiver.StartAsync();
        var notifications = mesh.Notifications("b", _team);
        await notifications.CreateWebhookEndpointAsync(
            new CreateWebhookEndpointRequest { RequestId = "restart", Url = receiver.Url, EventTypes = { EventTypes.LabTestResultCritical } }, deadline: Deadline);
        var request = new SubscribeRequest { Filter = new EventFilter() };
        request.Filter.Types_.Add(EventTypes.LabTestResultCritical);
        await using var stream = await StreamReader.OpenAsync(notifications, request);
        var order = await Orders.PlaceAsync(mesh.RequisitionClient(_team), "BMP");

        await mesh.Redis.StopAsync();
        var down = Stopwatch.StartNew();
        var report = (await mesh.ResultsClient(_team).SubmitResultsAsync(Orders.CriticalPotassium(order), deadline: Deadline)).Report;

        // The outage itself (the scenario, not a wait for an outcome): long enough for every backoff to reach its cap.
        await Eventually.StaysAsync(() => receiver.Received.Count == 0, Outage - down.Elapsed, "no webhook while Redis is down");
        await mesh.Redis.StartAsync();
        var back = Stopwatch.StartNew();

        var arrived = stream.NextAsync(m => m.ItemCase == SubscribeResponse.ItemOneofCase.Event && m.Event.CriticalResult.ReportId == report.Id)
            .ContinueWith(_ => back.Elapsed, TaskScheduler.Default);
        await Eventually.HoldsAsync(() => receiver.Received.Any(r => r.Event.CriticalResult.ReportId == report.Id), NotificationMesh.Timeout, "the webhook after Redis is back");
        var webhookAfter = back.Elapsed;
        var streamAfter = await arrived.WaitAsync(NotificationMesh.Timeout);
        output.WriteLine($"Redis down {down.Elapsed - back.Elapsed:g}; after it answered: stream event {streamAfter.TotalMilliseconds:0} ms, webhook {webhookAfter.TotalMilliseconds:0} ms");

        Assert.True(streamAfter < ResumeBound, $"the stream resumed {streamAfter.TotalMilliseconds:0} ms after Redis was back");
        Assert.True(webhookAfter < ResumeBound, $"the webhook arrived {webhookAfter.TotalMilliseconds:0} ms after Redis was back");
    }
}
