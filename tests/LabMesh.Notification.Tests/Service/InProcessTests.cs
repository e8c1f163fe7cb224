using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.ServiceDefaults.Events;
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
