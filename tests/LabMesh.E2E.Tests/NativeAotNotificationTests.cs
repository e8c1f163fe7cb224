using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Security.Identity;
using LabMesh.Testing;

namespace LabMesh.E2E.Tests;

/// <summary>
/// Notification as deploy/local runs it by default, its Native AOT executable (lib.sh's <c>AOT_DEFAULT</c>; which process
/// each replica runs is <see cref="NativeAotReplicaTests.EveryReplica_RunsWhatLabMeshLocalAotSays"/>'s): its store
/// (Dapper.AOT), event streams, REST (JSON transcoding with rd.xml) and errors with their details (health and reflection:
/// NativeAotReplicaTests' theory),
/// through the gateway and on each replica's own port.
/// </summary>
[Collection(LocalTopologyCollection.Name)]
public sealed class NativeAotNotificationTests(LocalTopologyFixture topology) : IDisposable
{
    private const string Notification = "notification";
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly GrpcChannel _gateway = GrpcChannel.ForAddress(topology.Gateway);

    [Fact]
    public async Task Notification_AnswersGrpcAndRest_ThroughTheGateway_AndOnEachReplica()
    {
        var kinds = await ReplicaKindsAsync();
        var team = "e2e-aot-" + Guid.NewGuid().ToString("N")[..8];
        var admin = new NotificationService.NotificationServiceClient(TestCaller.InvokerAs(_gateway, team, CallerRole.Admin));

        // A write and its read back through the store, then an update by version and a list with a cursor.
        var created = await admin.CreateWebhookEndpointAsync(new CreateWebhookEndpointRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            Url = "https://hooks.example.com/labmesh",
            Description = "native aot",
            EventTypes = { "order.status_changed" },
        }, deadline: DateTime.UtcNow + Timeout);
        var id = created.Endpoint.Id;
        Assert.NotEmpty(created.Secret);
        var updated = await admin.UpdateWebhookEndpointAsync(new UpdateWebhookEndpointRequest
        {
            Id = id, Etag = created.Endpoint.Etag, UpdateDescription = true, Description = "native aot, updated",
        }, deadline: DateTime.UtcNow + Timeout);
        Assert.Equal("native aot, updated", updated.Endpoint.Description);

        // An event on its stream (the service's own webhook.test, queued as a delivery) and each replica's reads.
        await admin.SendTestEventAsync(new SendTestEventRequest { EndpointId = id }, deadline: DateTime.UtcNow + Timeout);
        foreach (var r in LocalTopology.Replicas)
        {
            using var direct = GrpcChannel.ForAddress(topology.Address(Notification, r));
            var own = new NotificationService.NotificationServiceClient(TestCaller.InvokerAs(direct, team, CallerRole.Admin));
            var read = await own.GetWebhookEndpointAsync(new GetWebhookEndpointRequest { Id = id }, deadline: DateTime.UtcNow + Timeout);
            Assert.True(read.Endpoint.Description == "native aot, updated", $"{LocalTopology.Replica(Notification, r)} ({kinds}) answered {read}");
            var deliveries = await own.ListDeliveriesAsync(new ListDeliveriesRequest { EndpointId = id }, deadline: DateTime.UtcNow + Timeout);
            Assert.True(deliveries.Deliveries.Count == 1, $"{LocalTopology.Replica(Notification, r)} ({kinds}) listed {deliveries}");
            await own.ListEventsAsync(new ListEventsRequest { PageSize = 1 }, deadline: DateTime.UtcNow + Timeout);
        }

        // A bad request: INVALID_ARGUMENT with its field violation, nothing stored.
        var refused = await Assert.ThrowsAsync<RpcException>(() => admin.CreateWebhookEndpointAsync(new CreateWebhookEndpointRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            Url = "ftp://hooks.example.com/labmesh",
            EventTypes = { "order.status_changed" },
        }, deadline: DateTime.UtcNow + Timeout).ResponseAsync);
        Assert.True(refused.StatusCode == StatusCode.InvalidArgument, $"({kinds}) {refused.Status}");
        Assert.Contains("url", refused.Status.Detail, StringComparison.Ordinal);

        // REST: a read, a list filtered by an enum (the transcoder's enum converter), and an error body with its details.
        using var http = new HttpClient { BaseAddress = new Uri(topology.RestGateway), Timeout = Timeout };
        var token = TestCaller.Token(team, CallerRole.Admin);
        using (var endpoint = await SendAsync(http, HttpMethod.Get, $"/v1/notifications/webhooks/{id}", token, kinds, HttpStatusCode.OK))
        {
            Assert.Equal(id, endpoint.RootElement.GetProperty("endpoint").GetProperty("id").GetString());
            Assert.Equal("native aot, updated", endpoint.RootElement.GetProperty("endpoint").GetProperty("description").GetString());
        }

        using (var listed = await SendAsync(
            http, HttpMethod.Get, $"/v1/notifications/deliveries?endpointId={id}&state=DELIVERY_STATE_PENDING", token, kinds, HttpStatusCode.OK))
        {
            foreach (var delivery in listed.RootElement.GetProperty("deliveries").EnumerateArray())
            {
                Assert.Equal("DELIVERY_STATE_PENDING", delivery.GetProperty("state").GetString());
            }
        }

        using var error = await SendAsync(
            http, HttpMethod.Post, "/v1/notifications/webhooks", token, kinds, HttpStatusCode.BadRequest,
            """{"requestId":"00000000-0000-4000-8000-000000000001","url":"ftp://hooks.example.com/x","eventTypes":["order.status_changed"]}""");
        var badRequest = Assert.Single(
            error.RootElement.GetProperty("details").EnumerateArray(),
            d => d.GetProperty("@type").GetString() == "type.googleapis.com/google.rpc.BadRequest");
        Assert.Contains("url", badRequest.GetProperty("fieldViolations").EnumerateArray().Select(v => v.GetProperty("field").GetString()));
    }

    private static async Task<JsonDocument> SendAsync(
        HttpClient http, HttpMethod method, string path, string token, string kinds, HttpStatusCode expected, string? json = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == expected, $"{method} {path} ({kinds}): {(int)response.StatusCode} {text}");
        return JsonDocument.Parse(text);
    }

    /// <summary>What Notification's replicas run, for failure messages: a failure reads differently for a native replica.</summary>
    private async Task<string> ReplicaKindsAsync()
    {
        var aot = await topology.AotExecutablesAsync();
        return aot.ContainsKey(Notification) ? "Native AOT replicas" : "dotnet replicas";
    }

    public void Dispose() => _gateway.Dispose();
}
