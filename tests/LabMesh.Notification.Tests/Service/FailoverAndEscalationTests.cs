using LabMesh.Contracts.Notification.V1;
using LabMesh.Messaging.Events;
using LabMesh.Testing;

namespace LabMesh.Notification.Tests.Service;

/// <summary>Each test with its own mesh: one stops a replica, one compresses the acknowledgement window to a second.</summary>
public sealed class FailoverAndEscalationTests
{
    private static readonly TimeSpan Timeout = NotificationMesh.Timeout;
    private readonly string _team = "team-" + Guid.NewGuid().ToString("N")[..8];

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    [Fact]
    public async Task ReplicaStoppedMidDelivery_TheOtherReplicaDeliversTheSameWebhookOnce()
    {
        await using var mesh = await NotificationMesh.StartAsync(null, "a");
        await using var receiver = await WebhookReceiver.StartAsync();
        var release = new TaskCompletionSource();
        receiver.Hold = n => n == 1 ? release.Task : Task.CompletedTask;
        var client = mesh.Notifications("a", _team);
        var endpoint = (await client.CreateWebhookEndpointAsync(
            new CreateWebhookEndpointRequest { RequestId = "fo", Url = receiver.Url, EventTypes = { EventTypes.LabTestResultCritical } }, deadline: Deadline)).Endpoint;
        var order = await Orders.PlaceAsync(mesh.RequisitionClient(_team), "BMP");

        await mesh.ResultsClient(_team).SubmitResultsAsync(Orders.CriticalPotassium(order), deadline: Deadline);

        // Replica a is attempting (the receiver holds its request); it goes away mid-attempt.
        await Eventually.MatchAsync(() => Task.FromResult(receiver.Received.Count), c => c == 1, Timeout, "replica a's attempt");
        await mesh.StartReplicaAsync("b");
        await mesh.StopReplicaAsync("a").WaitAsync(Timeout);
        release.TrySetResult();

        var received = await Eventually.MatchAsync(() => Task.FromResult(receiver.Received), r => r.Count == 2, Timeout, "replica b's attempt after a's lease ended");
        Assert.Equal(received[0].Id, received[1].Id);
        var delivery = await Eventually.MatchAsync(
            async () => (await mesh.Notifications("b", _team).ListDeliveriesAsync(new ListDeliveriesRequest { EndpointId = endpoint.Id }, deadline: Deadline)).Deliveries,
            d => d.Count == 1 && d[0].State == DeliveryState.Delivered, Timeout, "delivered by b");

        // a never recorded its attempt: the one on record is b's.
        Assert.Equal(1, delivery[0].Attempts);
        await Eventually.StaysAsync(() => receiver.Received.Count == 2, TimeSpan.FromMilliseconds(1500), "no third attempt once b delivered it");
        Assert.Contains(mesh.Replicas["b"].Logs.Records, r => r.Message.Contains(received[0].Id, StringComparison.Ordinal) && r.Message.Contains("Delivered", StringComparison.Ordinal));
    }

    [Fact]
    public async Task StoppingReplica_EndsItsStreamsAtOnce_WithUnavailableAndTheCursorToResumeFrom()
    {
        await using var mesh = await NotificationMesh.StartAsync(null, "a");
        await using var stream = await StreamReader.OpenAsync(mesh.Notifications("a", _team), new SubscribeRequest());
        var started = System.Diagnostics.Stopwatch.StartNew();

        await mesh.StopReplicaAsync("a");

        Assert.True(started.Elapsed < TimeSpan.FromSeconds(10), $"the replica stopped in {started.Elapsed}, not after a stream's timeout");
        await Eventually.MatchAsync(() => Task.FromResult(stream.Error), e => e is not null, Timeout, "the stream ends");
        Assert.Equal(Grpc.Core.StatusCode.Unavailable, stream.Error!.StatusCode);
        Assert.Contains("resume_after", stream.Error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnacknowledgedCriticalResult_IsEscalatedEveryWindowUntilAcknowledged_AndTheAuditTrailTellsIt()
    {
        await using var mesh = await NotificationMesh.StartAsync(TimeSpan.FromSeconds(1));
        await using var escalations = await WebhookReceiver.StartAsync();
        var admin = mesh.Notifications("a", _team);
        var endpoint = (await admin.CreateWebhookEndpointAsync(
            new CreateWebhookEndpointRequest { RequestId = "esc", Url = escalations.Url, Escalation = true, EventTypes = { EventTypes.OrderPlaced } }, deadline: Deadline)).Endpoint;
        var request = new SubscribeRequest { Filter = new EventFilter() };
        request.Filter.Types_.AddRange([EventTypes.LabTestResultCritical, EventTypes.CriticalResultEscalated, EventTypes.CriticalResultAcknowledged]);
        await using var stream = await StreamReader.OpenAsync(mesh.Notifications("b", _team, "nurse-station"), request);
        var order = await Orders.PlaceAsync(mesh.RequisitionClient(_team), "BMP");

        await mesh.ResultsClient(_team).SubmitResultsAsync(Orders.CriticalPotassium(order), deadline: Deadline);

        var critical = (await stream.EventsAsync(1))[0].Event;
        var first = (await stream.EventsAsync(1))[0].Event;
        var second = (await stream.EventsAsync(1))[0].Event;
        Assert.Equal(EventTypes.CriticalResultEscalated, first.Type);
        Assert.Equal((critical.Id, 1), (first.CriticalResultEscalated.CriticalResultId, first.CriticalResultEscalated.Escalation));
        Assert.Equal(2, second.CriticalResultEscalated.Escalation);
        Assert.Equal(["potassium"], first.CriticalResultEscalated.CriticalAnalytes);

        // The escalation endpoint gets them although its filter names only order.placed.
        var hooks = await Eventually.MatchAsync(
            () => Task.FromResult(escalations.Received.Where(h => h.Event.Type != EventTypes.OrderPlaced).ToList()), r => r.Count >= 2, Timeout, "escalations by webhook");
        Assert.All(hooks, h => Assert.Equal(EventTypes.CriticalResultEscalated, h.Event.Type));
        Assert.DoesNotContain(escalations.Received, h => h.Event.Type == EventTypes.LabTestResultCritical);

        var clinician = mesh.Notifications("a", _team, "dr-lee");
        var listed = await clinician.ListUnacknowledgedCriticalResultsAsync(new ListUnacknowledgedCriticalResultsRequest { RequisitionId = order.Id }, deadline: Deadline);
        Assert.Equal(CriticalResultState.Escalated, Assert.Single(listed.CriticalResults).State);
        var acknowledged = await clinician.AcknowledgeCriticalResultAsync(new AcknowledgeCriticalResultRequest
        {
            Id = critical.Id,
            ReadBack = "Potassium critical high, read back to Dr. Lee",
            Channel = AcknowledgementChannel.Phone,
        }, deadline: Deadline);
        Assert.Equal(CriticalResultState.Acknowledged, acknowledged.CriticalResult.State);
        Assert.Equal("dr-lee", acknowledged.CriticalResult.AcknowledgedBy);

        var ack = await stream.NextAsync(m => m.Event?.Type == EventTypes.CriticalResultAcknowledged);
        Assert.Equal(critical.Id, ack.Event.CriticalResultAcknowledged.CriticalResultId);
        Assert.Equal("phone", ack.Event.CriticalResultAcknowledged.Channel);
        Assert.DoesNotContain("read back", ack.Event.ToString(), StringComparison.OrdinalIgnoreCase);

        // No escalation after the acknowledgement, however many windows pass.
        var detail = await clinician.GetCriticalResultAsync(new GetCriticalResultRequest { Id = critical.Id }, deadline: Deadline);
        var escalatedBefore = detail.CriticalResult.Escalations;
        await Eventually.StaysAsync(
            async () => (await clinician.GetCriticalResultAsync(new GetCriticalResultRequest { Id = critical.Id }, deadline: Deadline)).CriticalResult.Escalations == escalatedBefore,
            TimeSpan.FromMilliseconds(2500), "no escalation after the acknowledgement");
        Assert.Empty((await clinician.ListUnacknowledgedCriticalResultsAsync(new ListUnacknowledgedCriticalResultsRequest(), deadline: Deadline)).CriticalResults);
        var again = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => clinician.AcknowledgeCriticalResultAsync(new AcknowledgeCriticalResultRequest
        {
            Id = critical.Id, ReadBack = "again", Channel = AcknowledgementChannel.App,
        }, deadline: Deadline).ResponseAsync);
        Assert.Equal(Grpc.Core.StatusCode.FailedPrecondition, again.StatusCode);

        // The audit trail: opened, notified on the stream and by webhook, escalated, acknowledged.
        var audit = await Eventually.MatchAsync(
            async () => (await clinician.GetCriticalResultAsync(new GetCriticalResultRequest { Id = critical.Id }, deadline: Deadline)).Audit,
            a => a.Any(e => e.Action == "notified" && e.Channel == "webhook"), Timeout, "the webhook notification in the audit");
        Assert.Equal("opened", audit[0].Action);
        Assert.Contains(audit, e => e.Action == "notified" && e.Actor == "subscriber:nurse-station" && e.Channel == "stream");
        Assert.Contains(audit, e => e.Action == "notified" && e.Actor == "webhook:" + endpoint.Id);
        Assert.Equal(escalatedBefore, audit.Count(e => e.Action == "escalated"));
        var closing = Assert.Single(audit, e => e.Action == "acknowledged");
        Assert.Equal(("dr-lee", "phone"), (closing.Actor, closing.Channel));
        Assert.Equal("Potassium critical high, read back to Dr. Lee", detail.CriticalResult.ReadBack);
        Assert.True(audit.Select(a => a.At.ToDateTimeOffset()).SequenceEqual(audit.Select(a => a.At.ToDateTimeOffset()).Order()), "oldest first");
    }
}
