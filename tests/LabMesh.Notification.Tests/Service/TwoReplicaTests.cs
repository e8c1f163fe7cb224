using System.Threading.Channels;
using Grpc.Core;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Messaging.Events;
using LabMesh.Testing;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.Notification.Tests.Service;

/// <summary>Two Notification replicas on one store, real Redis, and the services that produce the events.</summary>
public sealed class TwoReplicaFixture : IAsyncLifetime
{
    public NotificationMesh Mesh { get; private set; } = null!;

    public async Task InitializeAsync() => Mesh = await NotificationMesh.StartAsync();

    public async Task DisposeAsync()
    {
        var logs = Mesh.Logs.ToList();
        await Mesh.DisposeAsync();
        foreach (var log in logs)
        {
            log.AssertNoErrors();
        }
    }
}

public sealed class TwoReplicaTests(TwoReplicaFixture fixture) : IClassFixture<TwoReplicaFixture>
{
    private static readonly TimeSpan Timeout = NotificationMesh.Timeout;
    private readonly NotificationMesh _mesh = fixture.Mesh;
    private readonly string _team = "team-" + Guid.NewGuid().ToString("N")[..8];

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    private static SubscribeRequest Filter(params string[] types)
    {
        var request = new SubscribeRequest { Filter = new EventFilter() };
        request.Filter.Types_.AddRange(types);
        return request;
    }

    [Fact]
    public async Task CriticalResultSubmitted_ReachesSubscribersOnBothReplicas_OnceEach()
    {
        await using var onA = await StreamReader.OpenAsync(_mesh.Notifications("a", _team), Filter(EventTypes.LabTestResultCritical));
        await using var onB = await StreamReader.OpenAsync(_mesh.Notifications("b", _team), Filter(EventTypes.LabTestResultCritical));
        var order = await Orders.PlaceAsync(_mesh.RequisitionClient(_team), "BMP", "CBC");

        var report = (await _mesh.ResultsClient(_team).SubmitResultsAsync(Orders.CriticalPotassium(order), deadline: Deadline)).Report;

        var fromA = (await onA.EventsAsync(1))[0];
        var fromB = (await onB.EventsAsync(1))[0];
        Assert.Equal(fromA.Event.Id, fromB.Event.Id);
        Assert.Equal(fromA.Cursor, fromB.Cursor);
        Assert.Equal(report.Id, fromA.Event.CriticalResult.ReportId);
        Assert.Equal(["potassium"], fromA.Event.CriticalResult.CriticalAnalytes);
        Assert.Equal(order.Id, fromA.Event.RequisitionId);

        // Opened once for a person to acknowledge, whichever replica took the event.
        var open = await Eventually.MatchAsync(
            async () => (await _mesh.Notifications("b", _team).ListUnacknowledgedCriticalResultsAsync(new ListUnacknowledgedCriticalResultsRequest(), deadline: Deadline)).CriticalResults,
            list => list.Count == 1, Timeout, "the critical result is open");
        Assert.Equal(fromA.Event.Id, open[0].Id);
        Assert.Equal(CriticalResultState.Open, open[0].State);
        Assert.Equal("", open[0].ReadBack);
        await Eventually.StaysAsync(() => onA.DrainEvents().Count == 0 && onB.DrainEvents().Count == 0, TimeSpan.FromMilliseconds(600), "no second event on either replica's stream");
    }

    [Fact]
    public async Task Webhook_Answering500Then200_GetsTheEventTwiceWithTheSameId_BothSignedWithItsSecret()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        receiver.Respond = (n, _) => n == 1 ? (500, null) : (200, null);
        var admin = _mesh.Notifications("a", _team);
        var created = await admin.CreateWebhookEndpointAsync(new CreateWebhookEndpointRequest
        {
            RequestId = "create-1",
            Url = receiver.Url,
            EventTypes = { EventTypes.LabTestResultCritical },
        }, deadline: Deadline);
        Assert.StartsWith("whsec_", created.Secret, StringComparison.Ordinal);
        var order = await Orders.PlaceAsync(_mesh.RequisitionClient(_team), "BMP");

        await _mesh.ResultsClient(_team).SubmitResultsAsync(Orders.CriticalPotassium(order), deadline: Deadline);

        var received = await Eventually.MatchAsync(() => Task.FromResult(receiver.Received), r => r.Count >= 2, Timeout, "two attempts");
        Assert.Equal(received[0].Id, received[1].Id);
        Assert.StartsWith("msg_", received[0].Id, StringComparison.Ordinal);
        Assert.All(received, r => Assert.True(r.VerifiesWith(created.Secret), "the signature verifies with the endpoint's secret"));
        Assert.False(received[0].VerifiesWith(LabMesh.Notification.Webhooks.WebhookSecret.Generate()));
        Assert.Equal(received[0].Body, received[1].Body);
        Assert.Equal(EventTypes.LabTestResultCritical, received[0].Event.Type);
        Assert.Equal(order.Id, received[0].Event.CriticalResult.OrderId);

        var deliveries = await Eventually.MatchAsync(
            async () => (await admin.ListDeliveriesAsync(new ListDeliveriesRequest { EndpointId = created.Endpoint.Id }, deadline: Deadline)).Deliveries,
            d => d.Count == 1 && d[0].State == DeliveryState.Delivered, Timeout, "the delivery is recorded as delivered");
        Assert.Equal(2, deliveries[0].Attempts);
        Assert.Equal(received[0].Id, deliveries[0].Id);
        Assert.Equal(200, deliveries[0].LastStatusCode);

        // Neither replica sends it a third time.
        await Eventually.HoldsAsync(() => receiver.Received.Count == 2, TimeSpan.FromSeconds(1.5), "exactly two requests");

        // The audit trail says who was notified by webhook.
        var critical = await admin.GetCriticalResultAsync(new GetCriticalResultRequest { Id = received[0].Event.Id }, deadline: Deadline);
        Assert.Contains(critical.Audit, a => a.Action == "notified" && a.Channel == "webhook" && a.Actor == "webhook:" + created.Endpoint.Id);
    }

    [Fact]
    public async Task Subscriber_DisconnectsAndResumesOnTheOtherReplica_GetsEveryMissedEventExactlyOnce()
    {
        var bus = _mesh.Results.Services.GetRequiredService<IEventBus>();
        var requisition = "req-" + Guid.NewGuid().ToString("N")[..8];
        var request = new SubscribeRequest { Filter = new EventFilter { RequisitionId = requisition } };
        var first = await StreamReader.OpenAsync(_mesh.Notifications("a", _team), request);
        var published = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var evt = Orders.Synthetic(_team, requisition);
            await bus.PublishAsync(evt, CancellationToken.None).WaitAsync(Timeout);
            published.Add(evt.Id);
        }

        var seen = await first.EventsAsync(3);
        await first.DisposeAsync();
        for (var i = 0; i < 20; i++)
        {
            var evt = Orders.Synthetic(_team, requisition);
            await bus.PublishAsync(evt, CancellationToken.None).WaitAsync(Timeout);
            published.Add(evt.Id);
            await bus.PublishAsync(Orders.Synthetic(_team, "another-requisition"), CancellationToken.None).WaitAsync(Timeout);
        }

        await using var resumed = StreamReader.Start(_mesh.Notifications("b", _team), new SubscribeRequest { Filter = request.Filter, ResumeAfter = seen[^1].Cursor });
        var rest = await resumed.EventsAsync(published.Count - 3);
        await Eventually.StaysAsync(() => resumed.DrainEvents().Count == 0, TimeSpan.FromMilliseconds(600), "nothing more on the resumed stream");

        Assert.Equal(published, [.. seen.Select(s => s.Event.Id), .. rest.Select(r => r.Event.Id)]);

        // Resuming after an event id instead of a cursor gives the same.
        await using var byId = StreamReader.Start(_mesh.Notifications("a", _team), new SubscribeRequest { Filter = request.Filter, ResumeAfter = seen[^1].Event.Id });
        Assert.Equal(rest.Select(r => r.Event.Id), (await byId.EventsAsync(rest.Count)).Select(r => r.Event.Id));

        // And ListEvents replays the same range a page at a time.
        var page = await _mesh.Notifications("b", _team).ListEventsAsync(
            new ListEventsRequest { Filter = request.Filter, After = seen[^1].Cursor, PageSize = 7 }, deadline: Deadline);
        Assert.Equal(rest.Take(7).Select(r => r.Event.Id), page.Events.Select(e => e.Event.Id));
        Assert.Equal(rest[6].Cursor, page.Events[^1].Cursor);
    }

    [Fact]
    public async Task Resume_AtACursorOlderThanTheStreamKeeps_IsOutOfRange_NotASilentGap()
    {
        var bus = _mesh.Results.Services.GetRequiredService<IEventBus>();
        var requisition = "req-" + Guid.NewGuid().ToString("N")[..8];
        var request = new SubscribeRequest { Filter = new EventFilter { RequisitionId = requisition } };
        await using var reader = await StreamReader.OpenAsync(_mesh.Notifications("a", _team), request);
        for (var i = 0; i < 4; i++)
        {
            await bus.PublishAsync(Orders.Synthetic(_team, requisition), CancellationToken.None).WaitAsync(Timeout);
        }

        var seen = await reader.EventsAsync(4);
        // The stream's retention drops everything older than the third (what XADD's MAXLEN does once the stream is long).
        await _mesh.Redis.ExecuteAsync("XTRIM", "labmesh:events", "MINID", seen[2].Cursor).WaitAsync(Timeout);

        await using var late = StreamReader.Start(_mesh.Notifications("b", _team), new SubscribeRequest { Filter = request.Filter, ResumeAfter = seen[0].Cursor });
        await Assert.ThrowsAsync<ChannelClosedException>(() => late.EventsAsync(1));
        var subscribe = late.Error!;
        var list = await Assert.ThrowsAsync<RpcException>(() => _mesh.Notifications("b", _team).ListEventsAsync(
            new ListEventsRequest { Filter = request.Filter, After = seen[0].Cursor }, deadline: Deadline).ResponseAsync);
        await using var recent = StreamReader.Start(_mesh.Notifications("b", _team), new SubscribeRequest { Filter = request.Filter, ResumeAfter = seen[2].Cursor });

        Assert.Equal(StatusCode.OutOfRange, subscribe.StatusCode);
        Assert.Equal("CURSOR_EXPIRED", subscribe.GetDetail<Google.Rpc.ErrorInfo>()!.Reason);
        Assert.Equal("resume_after", Assert.Single(subscribe.GetDetail<Google.Rpc.BadRequest>()!.FieldViolations).Field);
        Assert.Equal(StatusCode.OutOfRange, list.StatusCode);
        // From a kept event nothing is missing: that cursor still holds.
        Assert.Equal(seen[3].Event.Id, Assert.Single(await recent.EventsAsync(1)).Event.Id);
    }

    [Fact]
    public async Task SlowSubscriber_IsEndedWithResourceExhausted_NamingTheLastEventItGot_AndResumesFromThere()
    {
        var bus = _mesh.Results.Services.GetRequiredService<IEventBus>();
        var requisition = "req-" + Guid.NewGuid().ToString("N")[..8];
        var filter = new EventFilter { RequisitionId = requisition };
        using var call = _mesh.Notifications("a", _team).Subscribe(new SubscribeRequest { Filter = filter });
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal(SubscribeResponse.ItemOneofCase.Heartbeat, call.ResponseStream.Current.ItemCase);

        // It reads the first ten promptly, then nothing while far more than its buffer (16) and the
        // HTTP/2 windows can hold is published.
        var published = new List<string>();
        var got = new List<SubscribeResponse>();
        for (var i = 0; i < 10; i++)
        {
            var evt = Orders.Synthetic(_team, requisition);
            await bus.PublishAsync(evt, CancellationToken.None).WaitAsync(Timeout);
            published.Add(evt.Id);
        }

        while (got.Count < 10 && await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout))
        {
            if (call.ResponseStream.Current.ItemCase == SubscribeResponse.ItemOneofCase.Event)
            {
                got.Add(call.ResponseStream.Current);
            }
        }

        for (var i = 0; i < 4000; i++)
        {
            var evt = Orders.Synthetic(_team, requisition);
            evt.OrderStatusChanged.Status = new string('x', 100);
            await bus.PublishAsync(evt, CancellationToken.None).WaitAsync(Timeout);
            published.Add(evt.Id);
        }

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout))
            {
                if (call.ResponseStream.Current.ItemCase == SubscribeResponse.ItemOneofCase.Event)
                {
                    got.Add(call.ResponseStream.Current);
                }
            }
        });

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.InRange(got.Count, 10, published.Count - 1);
        var info = Assert.IsType<Google.Rpc.ErrorInfo>(error.GetRpcStatus()!.Details.Select(d => d.Unpack<Google.Rpc.ErrorInfo>()).Single());
        Assert.Equal("SUBSCRIBER_TOO_SLOW", info.Reason);
        Assert.Equal(got[^1].Event.Id, info.Metadata["last_event_id"]);
        Assert.Equal(got[^1].Cursor, info.Metadata["last_cursor"]);
        Assert.Contains(got[^1].Event.Id, error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(published.Take(got.Count), got.Select(g => g.Event.Id));

        // Resuming from the named cursor (reading promptly now) gets the rest, each once.
        var rest = new List<string>();
        using var resumed = _mesh.Notifications("b", _team).Subscribe(new SubscribeRequest { Filter = filter, ResumeAfter = info.Metadata["last_cursor"] });
        while (rest.Count < published.Count - got.Count && await resumed.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout))
        {
            if (resumed.ResponseStream.Current.ItemCase == SubscribeResponse.ItemOneofCase.Event)
            {
                rest.Add(resumed.ResponseStream.Current.Event.Id);
            }
        }

        Assert.Equal(published.Skip(got.Count), rest);
        // LabMesh logs it once; grpc-dotnet repeats the status detail at Information (its own category).
        Assert.Single(_mesh.Replicas["a"].Logs.Records, r => r.Category.StartsWith("LabMesh.", StringComparison.Ordinal) && r.Message.Contains("fell more than 16 events behind", StringComparison.Ordinal));
    }

    [Fact]
    public async Task BadRequests_GetPreciseStatuses_AndStoreNothing()
    {
        var client = _mesh.Notifications("a", _team);

        var badTypes = await Assert.ThrowsAsync<RpcException>(() => client.CreateWebhookEndpointAsync(new CreateWebhookEndpointRequest
        {
            RequestId = "r1",
            Url = "https://10.1.2.3/hook",
            EventTypes = { "order.exploded" },
        }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, badTypes.StatusCode);
        var fields = badTypes.GetRpcStatus()!.Details.Select(d => d.Unpack<Google.Rpc.BadRequest>()).Single().FieldViolations.Select(v => v.Field);
        Assert.Equal(["url", "event_types[0]"], fields);
        Assert.Empty((await client.ListWebhookEndpointsAsync(new ListWebhookEndpointsRequest(), deadline: Deadline)).Endpoints);

        var otherTeam = await Assert.ThrowsAsync<RpcException>(() => client.Subscribe(new SubscribeRequest { Filter = new EventFilter { TeamId = "someone-else" } })
            .ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal(StatusCode.PermissionDenied, otherTeam.StatusCode);

        var badCursor = await Assert.ThrowsAsync<RpcException>(() => client.ListEventsAsync(new ListEventsRequest { After = "not-a-cursor" }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, badCursor.StatusCode);

        var unknownEvent = await Assert.ThrowsAsync<RpcException>(() => client.ListEventsAsync(new ListEventsRequest { After = Guid.CreateVersion7().ToString() }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, unknownEvent.StatusCode);

        var noReadBack = await Assert.ThrowsAsync<RpcException>(() => client.AcknowledgeCriticalResultAsync(
            new AcknowledgeCriticalResultRequest { Id = Guid.CreateVersion7().ToString() }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, noReadBack.StatusCode);
        Assert.Equal(["read_back", "channel"], noReadBack.GetRpcStatus()!.Details.Select(d => d.Unpack<Google.Rpc.BadRequest>()).Single().FieldViolations.Select(v => v.Field));

        var unknownCritical = await Assert.ThrowsAsync<RpcException>(() => client.AcknowledgeCriticalResultAsync(
            new AcknowledgeCriticalResultRequest { Id = Guid.CreateVersion7().ToString(), ReadBack = "K 6.9 read back", Channel = AcknowledgementChannel.Phone }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, unknownCritical.StatusCode);
    }

    [Fact]
    public async Task OutOfRangeArguments_AreInvalidArgument_NamingTheField_AndUnknownDeliveriesNotFound()
    {
        var client = _mesh.Notifications("b", _team);

        async Task<string[]> FieldsOf(Func<Task> call)
        {
            var error = await Assert.ThrowsAsync<RpcException>(call);
            Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
            return [.. error.GetRpcStatus()!.Details.Select(d => d.Unpack<Google.Rpc.BadRequest>()).Single().FieldViolations.Select(v => v.Field)];
        }

        Assert.Equal(["etag", "update_*"], await FieldsOf(() => client.UpdateWebhookEndpointAsync(new UpdateWebhookEndpointRequest { Id = "whep_x" }, deadline: Deadline).ResponseAsync));
        Assert.Equal(["overlap"], await FieldsOf(() => client.RotateWebhookSecretAsync(
            new RotateWebhookSecretRequest { Id = "whep_x", Overlap = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromDays(8)) }, deadline: Deadline).ResponseAsync));
        Assert.Equal(["page_size"], await FieldsOf(() => client.ListEventsAsync(new ListEventsRequest { PageSize = 5000 }, deadline: Deadline).ResponseAsync));
        Assert.Equal(["heartbeat_interval"], await FieldsOf(() => client.Subscribe(
            new SubscribeRequest { HeartbeatInterval = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(TimeSpan.FromMilliseconds(100)) })
            .ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout)));
        Assert.Equal(["acknowledged_at"], await FieldsOf(() => client.AcknowledgeCriticalResultAsync(new AcknowledgeCriticalResultRequest
        {
            Id = Guid.CreateVersion7().ToString(), ReadBack = "read back", Channel = AcknowledgementChannel.Pager,
            AcknowledgedAt = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow.AddHours(1)),
        }, deadline: Deadline).ResponseAsync));
        Assert.Equal(["delivery_id"], await FieldsOf(() => client.RedeliverEventAsync(
            new RedeliverEventRequest { DeliveryId = "msg_x", EventId = "e" }, deadline: Deadline).ResponseAsync));

        var unknown = await Assert.ThrowsAsync<RpcException>(() => client.RedeliverEventAsync(new RedeliverEventRequest { DeliveryId = "msg_unknown" }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
    }

    [Fact]
    public async Task Endpoints_AreTeamScoped_EtagChecked_Rotated_AndIdempotentByRequestId()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var client = _mesh.Notifications("a", _team);
        var request = new CreateWebhookEndpointRequest { RequestId = "idem-1", Url = receiver.Url, Description = "lab portal" };
        var created = await client.CreateWebhookEndpointAsync(request, deadline: Deadline);
        var again = await client.CreateWebhookEndpointAsync(request, deadline: Deadline);
        Assert.Equal(created.Endpoint.Id, again.Endpoint.Id);
        Assert.NotEmpty(created.Secret);
        // The secret only at creation and rotation: a repeat does not hand it out again (issue 17, finding 1).
        Assert.Empty(again.Secret);
        var reused = await Assert.ThrowsAsync<RpcException>(() => client.CreateWebhookEndpointAsync(
            new CreateWebhookEndpointRequest { RequestId = "idem-1", Url = receiver.Url, Description = "other" }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.AlreadyExists, reused.StatusCode);

        var stranger = _mesh.Notifications("b", "another-" + _team);
        var hidden = await Assert.ThrowsAsync<RpcException>(() => stranger.GetWebhookEndpointAsync(new GetWebhookEndpointRequest { Id = created.Endpoint.Id }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, hidden.StatusCode);

        var stale = await Assert.ThrowsAsync<RpcException>(() => client.UpdateWebhookEndpointAsync(new UpdateWebhookEndpointRequest
        {
            Id = created.Endpoint.Id, Etag = "\"99\"", UpdateDescription = true, Description = "x",
        }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.Aborted, stale.StatusCode);

        var rotated = await client.RotateWebhookSecretAsync(new RotateWebhookSecretRequest { Id = created.Endpoint.Id }, deadline: Deadline);
        Assert.NotEqual(created.Secret, rotated.Secret);
        Assert.NotNull(rotated.Endpoint.PreviousSecretExpiresAt);
        // A change answers the endpoint as a later read gives it back, its times included (to the microsecond, as stored).
        var read = await client.GetWebhookEndpointAsync(new GetWebhookEndpointRequest { Id = created.Endpoint.Id }, deadline: Deadline);
        Assert.Equal(rotated.Endpoint, read.Endpoint);
        var test = await client.SendTestEventAsync(new SendTestEventRequest { EndpointId = created.Endpoint.Id }, deadline: Deadline);

        var received = await Eventually.MatchAsync(() => Task.FromResult(receiver.Received), r => r.Count == 1, Timeout, "the test event");
        Assert.Equal(test.Delivery.Id, received[0].Id);
        Assert.Equal(EventTypes.WebhookTest, received[0].Event.Type);
        Assert.Equal(2, received[0].Signature.Split(' ').Length);
        Assert.True(received[0].VerifiesWith(rotated.Secret), "signed with the new secret");
        Assert.True(received[0].VerifiesWith(created.Secret), "and, during the overlap, with the old one");
        var afterRotation = await client.CreateWebhookEndpointAsync(request, deadline: Deadline);
        Assert.Empty(afterRotation.Secret);

        await client.DeleteWebhookEndpointAsync(new DeleteWebhookEndpointRequest { Id = created.Endpoint.Id }, deadline: Deadline);
        var gone = await Assert.ThrowsAsync<RpcException>(() => client.GetWebhookEndpointAsync(new GetWebhookEndpointRequest { Id = created.Endpoint.Id }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
        // A repeat after the delete does not report the deleted endpoint (it answered it as enabled, with its secret).
        var replayed = await Assert.ThrowsAsync<RpcException>(() => client.CreateWebhookEndpointAsync(request, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, replayed.StatusCode);
    }

    [Fact]
    public async Task Endpoint_Answering410_IsDisabled_FailingDeliveriesAreDeadLettered_AndRedeliverReplaysThem()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var failing = true;
        receiver.Respond = (_, _) => failing ? (503, "0") : (200, null);
        var client = _mesh.Notifications("b", _team);
        var endpoint = (await client.CreateWebhookEndpointAsync(new CreateWebhookEndpointRequest { RequestId = "dl", Url = receiver.Url }, deadline: Deadline)).Endpoint;
        var test = await client.SendTestEventAsync(new SendTestEventRequest { EndpointId = endpoint.Id }, deadline: Deadline);

        // Three attempts (the test schedule), then the dead-letter list.
        var dead = await Eventually.MatchAsync(
            async () => (await client.ListDeliveriesAsync(new ListDeliveriesRequest { State = DeliveryState.DeadLetter }, deadline: Deadline)).Deliveries,
            d => d.Count == 1, Timeout, "the delivery is dead-lettered");
        Assert.Equal(3, dead[0].Attempts);
        Assert.Equal(503, dead[0].LastStatusCode);
        Assert.Equal(3, receiver.Received.Count);

        failing = false;
        var replay = await client.RedeliverEventAsync(new RedeliverEventRequest { DeliveryId = test.Delivery.Id }, deadline: Deadline);
        Assert.Equal(DeliveryState.Pending, replay.Delivery.State);
        var delivered = await Eventually.MatchAsync(
            async () => (await client.ListDeliveriesAsync(new ListDeliveriesRequest { EndpointId = endpoint.Id }, deadline: Deadline)).Deliveries,
            d => d[0].State == DeliveryState.Delivered, Timeout, "the replayed delivery arrives");
        Assert.Equal(test.Delivery.Id, receiver.Received[^1].Id);
        Assert.Equal(1, delivered[0].Attempts);

        receiver.Respond = (_, _) => (410, null);
        await client.SendTestEventAsync(new SendTestEventRequest { EndpointId = endpoint.Id }, deadline: Deadline);
        var disabled = await Eventually.MatchAsync(
            async () => (await client.GetWebhookEndpointAsync(new GetWebhookEndpointRequest { Id = endpoint.Id }, deadline: Deadline)).Endpoint,
            e => !e.Enabled, Timeout, "the endpoint is disabled");
        Assert.Contains("410", disabled.DisabledReason, StringComparison.Ordinal);
        var refused = await Assert.ThrowsAsync<RpcException>(() => client.SendTestEventAsync(new SendTestEventRequest { EndpointId = endpoint.Id }, deadline: Deadline).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
    }
}
