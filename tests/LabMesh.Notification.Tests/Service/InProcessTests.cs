using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Messaging.Events;
using LabMesh.Testing;

namespace LabMesh.Notification.Tests.Service;

/// <summary>The all-in-one host without Redis: the in-process bus, and the store keeping what must survive a restart.</summary>
public sealed class InProcessTests
{
    private static readonly TimeSpan Timeout = NotificationMesh.Timeout;
    private const string Team = "solo-team";

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    [Fact]
    public async Task WithoutRedis_CriticalResultsReachSubscribers_AndAPendingWebhookAndAnOpenAcknowledgementSurviveARestart()
    {
        var settings = NotificationMesh.NotificationSettings(await TestSettings.CreateAsync(Backend.Sqlite), TimeSpan.FromMinutes(30));
        settings["LabMesh:Notification:Webhooks:RetrySchedule:1"] = "00:00:04";
        var port = FreePort.Next();
        var receiverPort = FreePort.Next();
        var url = $"http://127.0.0.1:{receiverPort}/hooks/labmesh";

        string criticalId;
        string deliveryId;
        await using (var host = await MeshHosts.StartAllInOneAsync(settings, port))
        {
            using var channel = host.CreateChannel();
            var notifications = new NotificationService.NotificationServiceClient(TestCaller.Invoker(channel, Team));
            await notifications.CreateWebhookEndpointAsync(new CreateWebhookEndpointRequest { RequestId = "solo", Url = url, EventTypes = { EventTypes.LabTestResultCritical } }, deadline: Deadline);
            var request = new SubscribeRequest { Filter = new EventFilter { Types_ = { EventTypes.LabTestResultCritical } } };
            await using var stream = await StreamReader.OpenAsync(notifications, request);
            var order = await Orders.PlaceAsync(new RequisitionService.RequisitionServiceClient(TestCaller.Invoker(channel, Team)), "BMP");

            await new ResultsInterpretationService.ResultsInterpretationServiceClient(TestCaller.Invoker(channel, Team))
                .SubmitResultsAsync(Orders.CriticalPotassium(order), deadline: Deadline);

            criticalId = (await stream.EventsAsync(1))[0].Event.Id;

            // Nobody listens at the endpoint yet: the first attempt fails, the next is 4 s away.
            var pending = await Eventually.MatchAsync(
                async () => (await notifications.ListDeliveriesAsync(new ListDeliveriesRequest(), deadline: Deadline)).Deliveries,
                d => d.Count == 1 && d[0].Attempts == 1, Timeout, "the first attempt failed");
            Assert.Equal(DeliveryState.Pending, pending[0].State);
            Assert.Equal(0, pending[0].LastStatusCode);
            deliveryId = pending[0].Id;
        }

        await using var receiver = await WebhookReceiver.StartAsync(receiverPort);
        await using var restarted = await MeshHosts.StartAllInOneAsync(settings, port);
        using var again = restarted.CreateChannel();
        var after = new NotificationService.NotificationServiceClient(TestCaller.Invoker(again, Team));

        var open = await after.ListUnacknowledgedCriticalResultsAsync(new ListUnacknowledgedCriticalResultsRequest(), deadline: Deadline);
        Assert.Equal(criticalId, Assert.Single(open.CriticalResults).Id);
        var received = await Eventually.MatchAsync(() => Task.FromResult(receiver.Received), r => r.Count == 1, Timeout, "the retried delivery after the restart");
        Assert.Equal(deliveryId, received[0].Id);
        Assert.Equal(criticalId, received[0].Event.Id);
        var delivered = await Eventually.MatchAsync(
            async () => (await after.ListDeliveriesAsync(new ListDeliveriesRequest(), deadline: Deadline)).Deliveries,
            d => d[0].State == DeliveryState.Delivered, Timeout, "recorded as delivered");
        Assert.Equal(2, delivered[0].Attempts);
        restarted.Logs.AssertNoErrors();
    }
}

/// <summary>
/// The in-process bus starts empty: an event a relay handed to it just before the process died was marked
/// sent but never reached Notification. At start each relay publishes its store's retained sent events again.
/// </summary>
public sealed class InProcessReplayTests
{
    private static readonly TimeSpan Timeout = NotificationMesh.Timeout;
    private const string Team = "replay-team";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromMinutes(2);

    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    [Fact]
    public async Task AnEventSentButNeverIngestedBeforeACrash_IsIngestedAfterTheRestart_OnceAndOnlyForEndpointsOlderThanIt()
    {
        var settings = NotificationMesh.NotificationSettings(await TestSettings.CreateAsync(Backend.Sqlite), TimeSpan.FromMinutes(30));
        var port = FreePort.Next();
        const string Url = "http://127.0.0.1:9/hooks/labmesh";
        string olderEndpoint;
        await using (var host = await MeshHosts.StartAllInOneAsync(settings, port).WaitAsync(StartTimeout))
        {
            using var channel = host.CreateChannel();
            var notifications = new NotificationService.NotificationServiceClient(TestCaller.Invoker(channel, Team));
            olderEndpoint = (await notifications.CreateWebhookEndpointAsync(
                new CreateWebhookEndpointRequest { RequestId = "older", Url = Url, EventTypes = { EventTypes.LabTestResultCritical } }, deadline: Deadline)).Endpoint.Id;
        }

        // What the results service's relay left behind when the process died: the critical event, marked sent.
        var critical = new Event
        {
            Id = Guid.CreateVersion7().ToString(),
            Type = EventTypes.LabTestResultCritical,
            TeamId = Team,
            RequisitionId = "req-crashed",
            Source = "results",
            CreatedAt = Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow),
            CriticalResult = new CriticalResult { ReportId = "rep-crashed", ReportVersion = 1, Status = "partial", CriticalAnalytes = { "potassium" } },
        };
        await MarkSentInOutboxAsync(settings, "results", critical).WaitAsync(Timeout);

        await using (var restarted = await MeshHosts.StartAllInOneAsync(settings, port).WaitAsync(StartTimeout))
        {
            using var channel = restarted.CreateChannel();
            var notifications = new NotificationService.NotificationServiceClient(TestCaller.Invoker(channel, Team));

            var open = await Eventually.MatchAsync(
                async () => (await notifications.ListUnacknowledgedCriticalResultsAsync(new ListUnacknowledgedCriticalResultsRequest(), deadline: Deadline)).CriticalResults,
                c => c.Count == 1, Timeout, "the critical result opened from the replayed event");
            Assert.Equal((critical.Id, "req-crashed"), (open[0].Id, open[0].RequisitionId));
            var events = (await notifications.ListEventsAsync(new ListEventsRequest(), deadline: Deadline)).Events;
            Assert.Contains(events, e => e.Event.Id == critical.Id);
            var deliveries = await Eventually.MatchAsync(
                async () => (await notifications.ListDeliveriesAsync(new ListDeliveriesRequest(), deadline: Deadline)).Deliveries,
                d => d.Count == 1, Timeout, "the webhook owed to the endpoint older than the event");
            Assert.Equal((critical.Id, olderEndpoint), (deliveries[0].EventId, deliveries[0].EndpointId));

            // An endpoint made after the event is not owed it, whatever replays it.
            await notifications.CreateWebhookEndpointAsync(
                new CreateWebhookEndpointRequest { RequestId = "newer", Url = Url, EventTypes = { EventTypes.LabTestResultCritical } }, deadline: Deadline);
            restarted.Logs.AssertNoErrors();
        }

        await using var again = await MeshHosts.StartAllInOneAsync(settings, port).WaitAsync(StartTimeout);
        using var againChannel = again.CreateChannel();
        var afterSecondRestart = new NotificationService.NotificationServiceClient(TestCaller.Invoker(againChannel, Team));
        // Replayed once more at this start: still one critical result and one delivery.
        await Eventually.MatchAsync(
            async () => (await afterSecondRestart.ListEventsAsync(new ListEventsRequest(), deadline: Deadline)).Events,
            e => e.Any(x => x.Event.Id == critical.Id), Timeout, "the replay after the second restart");
        // Replaying it opens no second critical result and owes no second delivery, however long it is watched.
        await Eventually.StaysAsync(
            async () => (await afterSecondRestart.ListUnacknowledgedCriticalResultsAsync(new ListUnacknowledgedCriticalResultsRequest(), deadline: Deadline)).CriticalResults.Count == 1
                && (await afterSecondRestart.ListDeliveriesAsync(new ListDeliveriesRequest(), deadline: Deadline)).Deliveries.Count == 1,
            TimeSpan.FromMilliseconds(500), "one critical result and one delivery after the second replay");
        var all = (await afterSecondRestart.ListDeliveriesAsync(new ListDeliveriesRequest(), deadline: Deadline)).Deliveries;
        Assert.Equal(olderEndpoint, Assert.Single(all).EndpointId);
        again.Logs.AssertNoErrors();
    }

    private static async Task MarkSentInOutboxAsync(Dictionary<string, string?> settings, string store, Event evt)
    {
        var file = Path.Combine(settings["LabMesh:Storage:DataDirectory"]!, store + ".db");
        await using var connection = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={file}");
        await connection.OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "INSERT INTO outbox (event_id, event_type, payload, created_at, sent_at) VALUES ($id, $type, $payload, $at, $at);";
        command.Parameters.AddWithValue("$id", evt.Id);
        command.Parameters.AddWithValue("$type", evt.Type);
        command.Parameters.AddWithValue("$payload", evt.ToByteArray());
        command.Parameters.AddWithValue("$at", DateTimeOffset.UtcNow.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", System.Globalization.CultureInfo.InvariantCulture));
        await command.ExecuteNonQueryAsync();
    }
}
