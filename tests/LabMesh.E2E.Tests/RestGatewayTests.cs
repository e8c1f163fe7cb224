using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Security.Identity;
using LabMesh.ServiceDefaults.Peers;
using LabMesh.Testing;

namespace LabMesh.E2E.Tests;

/// <summary>
/// REST through deploy/local's gateway (services/LabMesh.Gateway's HTTP/1.1 listener and its REST routes) to the
/// replicas' REST listeners, with plain HttpClient calls: seed 000's partner paths, a path of every service, and the
/// same store as gRPC through the gateway's h2c port.
/// </summary>
[Collection(LocalTopologyCollection.Name)]
public sealed class RestGatewayTests(LocalTopologyFixture topology)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task PartnerPaths_ThroughTheGateway_ReadAndPatchAServiceRequest()
    {
        var team = "e2e-rest-" + Guid.NewGuid().ToString("N")[..8];
        var clinician = TestCaller.Token(team, CallerRole.Clinician);
        var labA = TestCaller.Token(team, CallerRole.Partner, "partner-a", "lab-a");
        using var http = new HttpClient { BaseAddress = new Uri(topology.RestGateway), Timeout = Timeout };

        var order = JsonSerializer.Serialize(new
        {
            request_id = Guid.NewGuid().ToString("N"),
            patient = new { id = "p-e2e-rest" },
            modality = "TEST_MODALITY_TESTKIT",
            tests = new object[] { new { code = "LIPID_PANEL", partner_id = "lab-a" }, new { code = "CMP", partner_id = "lab-b" } },
            place = true,
        });
        var (createdStatus, created) = await SendAsync(http, HttpMethod.Post, "/v1/requisitions", clinician, order);
        Assert.True(createdStatus == HttpStatusCode.OK, created.ToString());
        var requisition = created.RootElement.GetProperty("requisition");
        var requisitionId = requisition.GetProperty("id").GetString()!;
        var id = requisition.GetProperty("serviceRequests").EnumerateArray().Single(s => s.GetProperty("partnerId").GetString() == "lab-a").GetProperty("id").GetString()!;

        var (listed, list) = await SendAsync(http, HttpMethod.Get, $"/v2/partner/requisition/{requisitionId}", labA);
        Assert.Equal(HttpStatusCode.OK, listed);
        Assert.Equal(id, Assert.Single(list.RootElement.GetProperty("serviceRequests").EnumerateArray()).GetProperty("id").GetString());

        var (patched, serviceRequest) = await SendAsync(http, HttpMethod.Patch, $"/v2/partner/service-request/{id}/status", labA, """{"task_business_status": "ORDER_CONFIRMED"}""");
        Assert.True(patched == HttpStatusCode.OK, serviceRequest.RootElement.ToString());
        Assert.Equal("ORDER_CONFIRMED", serviceRequest.RootElement.GetProperty("taskBusinessStatus").GetString());

        var (read, current) = await SendAsync(http, HttpMethod.Get, $"/v2/partner/service-request/{id}/status", labA);
        Assert.Equal(HttpStatusCode.OK, read);
        Assert.Equal("ORDER_CONFIRMED", current.RootElement.GetProperty("taskBusinessStatus").GetString());

        // The same service request over gRPC through the gateway's h2c port.
        using var channel = MeshChannels.Create(topology.Gateway);
        var viaGrpc = await new ServiceRequestService.ServiceRequestServiceClient(channel).GetServiceRequestAsync(
            new GetServiceRequestRequest { Id = id }, new Metadata { { "authorization", "Bearer " + labA } }, DateTime.UtcNow + Timeout);
        Assert.Equal(TaskBusinessStatus.OrderConfirmed, viaGrpc.ServiceRequest.TaskBusinessStatus);

        // Errors keep their HTTP status and gRPC details through the gateway: another partner's is NOT_FOUND, no token UNAUTHENTICATED.
        var (otherPartner, notFound) = await SendAsync(http, HttpMethod.Patch, $"/v2/partner/service-request/{id}/status",
            TestCaller.Token(team, CallerRole.Partner, "partner-b", "lab-b"), """{"task_business_status": "ORDER_CONFIRMED"}""");
        Assert.Equal(HttpStatusCode.NotFound, otherPartner);
        Assert.Equal((int)StatusCode.NotFound, notFound.RootElement.GetProperty("code").GetInt32());
        Assert.Contains(notFound.RootElement.GetProperty("details").EnumerateArray(), d => d.GetProperty("@type").GetString() == "type.googleapis.com/google.rpc.ResourceInfo");
        var (anonymous, unauthenticated) = await SendAsync(http, HttpMethod.Get, $"/v2/partner/service-request/{id}/status", token: null);
        Assert.Equal(HttpStatusCode.Unauthorized, anonymous);
        Assert.Equal((int)StatusCode.Unauthenticated, unauthenticated.RootElement.GetProperty("code").GetInt32());
    }

    [Theory]
    // One path of each service: the gateway sends each to the service that owns it.
    [InlineData("/v1/requisitions", "requisitions")]
    [InlineData("/v1/service-requests", "serviceRequests")]
    [InlineData("/v1/results/critical-limits", "limits")]
    [InlineData("/v1/notifications/critical-results", "criticalResults")]
    public async Task EveryServicesPaths_AreRoutedToIt(string path, string property)
    {
        using var http = new HttpClient { BaseAddress = new Uri(topology.RestGateway), Timeout = Timeout };

        var (status, body) = await SendAsync(http, HttpMethod.Get, path, TestCaller.Token("e2e-rest-routes", CallerRole.Clinician));

        Assert.True(status == HttpStatusCode.OK, $"{path}: {(int)status} {body.RootElement}");
        Assert.Equal(JsonValueKind.Array, body.RootElement.GetProperty(property).ValueKind);
    }

    [Fact]
    public async Task AnyOtherPath_IsNotFound_AtTheGateway()
    {
        using var http = new HttpClient { BaseAddress = new Uri(topology.RestGateway), Timeout = Timeout };

        using var response = await http.GetAsync("/v1/nothing-here");

        // The gateway's own answer (services/LabMesh.Gateway's NoRoute), not a replica's.
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("No LabMesh route for /v1/nothing-here at this gateway", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    private static async Task<(HttpStatusCode Status, JsonDocument Body)> SendAsync(HttpClient http, HttpMethod method, string path, string? token, string? json = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }

        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }

        using var response = await http.SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.Content.Headers.ContentType?.MediaType == "application/json", $"{path}: {(int)response.StatusCode} {text}");
        return (response.StatusCode, JsonDocument.Parse(text));
    }
}
