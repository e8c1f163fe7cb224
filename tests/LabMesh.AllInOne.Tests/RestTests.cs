using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Google.Api;
using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.Security.Identity;
using NotificationV1 = LabMesh.Contracts.Notification.V1;
using RequisitionV1 = LabMesh.Contracts.Requisition.V1;
using ResultsV1 = LabMesh.Contracts.Results.V1;
using ServiceRequestV1 = LabMesh.Contracts.ServiceRequest.V1;

namespace LabMesh.AllInOne.Tests;

/// <summary>
/// REST by gRPC JSON transcoding, with plain HttpClient calls to the all-in-one host: seed 000's partner paths, the
/// same tokens and access matrix as gRPC, errors as HTTP statuses with the <c>google.rpc.Status</c> and its details
/// in the body; and gRPC staying h2c on its own port.
/// </summary>
public sealed class RestTests(RestHost host) : IClassFixture<RestHost>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>RPCs only the mesh's own services call ("For the ... service" in the protos): gRPC only.</summary>
    private static readonly HashSet<string> InternalMethods =
    [
        "labmesh.servicerequest.v1.ServiceRequestService/CreateServiceRequests",
        "labmesh.servicerequest.v1.ServiceRequestService/ConfirmServiceRequests",
        "labmesh.servicerequest.v1.ServiceRequestService/ApplyOrderEvent",
        "labmesh.servicerequest.v1.ServiceRequestService/RecordResults",
        "labmesh.servicerequest.v1.ServiceRequestService/RescheduleServiceRequests",
        "labmesh.requisition.v1.RequisitionService/RecordResultsStage",
    ];

    [Fact]
    public void EveryPublicRpc_HasAnHttpRule()
    {
        Google.Protobuf.Reflection.ServiceDescriptor[] services =
        [
            RequisitionV1.RequisitionService.Descriptor,
            ServiceRequestV1.ServiceRequestService.Descriptor,
            ResultsV1.ResultsInterpretationService.Descriptor,
            NotificationV1.NotificationService.Descriptor,
        ];
        var methods = services.SelectMany(s => s.Methods).ToList();
        var unmapped = methods
            .Where(m => !InternalMethods.Contains($"{m.Service.FullName}/{m.Name}") && m.GetOptions()?.GetExtension(AnnotationsExtensions.Http) is null)
            .Select(m => $"{m.Service.FullName}/{m.Name}")
            .ToList();
        Assert.True(unmapped.Count == 0, "RPCs without a google.api.http option: " + string.Join(", ", unmapped));
        Assert.All(InternalMethods, name => Assert.Contains(methods, m => $"{m.Service.FullName}/{m.Name}" == name));
        Assert.All(methods.Where(m => InternalMethods.Contains($"{m.Service.FullName}/{m.Name}")),
            m => Assert.Null(m.GetOptions()?.GetExtension(AnnotationsExtensions.Http)));
    }

    [Fact]
    public async Task PartnerPaths_ReadTheRequisitionsServiceRequests_AndPatchTheTaskStatus_AsSeed000Does()
    {
        using var http = new HttpClient { BaseAddress = new Uri(host.RestAddress), Timeout = Timeout };
        var clinician = RestHost.Token(CallerRole.Clinician);
        var (requisitionId, byPartner) = await CreateOrderAsync(http, clinician);
        var labA = RestHost.Token(CallerRole.Partner, "lab-a");

        // GET /v2/partner/requisition/{id}: the partner sees its own service request of the order, the clinician both.
        using (var partnerView = await SendAsync(http, HttpMethod.Get, $"/v2/partner/requisition/{requisitionId}", labA))
        {
            Assert.Equal(HttpStatusCode.OK, partnerView.Status);
            var own = Assert.Single(partnerView.Body.RootElement.GetProperty("serviceRequests").EnumerateArray());
            Assert.Equal(byPartner["lab-a"], own.GetProperty("id").GetString());
            Assert.Equal("lab-a", own.GetProperty("partnerId").GetString());
        }

        using (var clinicianView = await SendAsync(http, HttpMethod.Get, $"/v2/partner/requisition/{requisitionId}", clinician))
        {
            Assert.Equal(HttpStatusCode.OK, clinicianView.Status);
            var ids = clinicianView.Body.RootElement.GetProperty("serviceRequests").EnumerateArray().Select(s => s.GetProperty("id").GetString()).Order();
            Assert.Equal(byPartner.Values.Order(), ids);
        }

        // GET /v2/partner/service-request/{id}/status: the service request itself, unwrapped, with seed 000's fields.
        var id = byPartner["lab-a"];
        using (var read = await SendAsync(http, HttpMethod.Get, $"/v2/partner/service-request/{id}/status", labA))
        {
            Assert.Equal(HttpStatusCode.OK, read.Status);
            var serviceRequest = read.Body.RootElement;
            Assert.Equal(id, serviceRequest.GetProperty("id").GetString());
            Assert.Equal("SERVICE_REQUEST_STATUS_ACTIVE", serviceRequest.GetProperty("status").GetString());
            Assert.Equal("LIPID_PANEL", serviceRequest.GetProperty("code").GetString());
            Assert.Equal("TASK_BUSINESS_STATUS_UNSPECIFIED", serviceRequest.GetProperty("taskBusinessStatus").GetString());
            Assert.Equal("Fasting lipid panel", serviceRequest.GetProperty("taskDescription").GetString());
        }

        // PATCH with seed 000's body (its snake_case field name), answered with the service request as it is now.
        using (var patched = await SendAsync(http, HttpMethod.Patch, $"/v2/partner/service-request/{id}/status", labA, """{"task_business_status": "ORDER_CONFIRMED"}"""))
        {
            Assert.Equal(HttpStatusCode.OK, patched.Status);
            Assert.Equal(id, patched.Body.RootElement.GetProperty("id").GetString());
            Assert.Equal("ORDER_CONFIRMED", patched.Body.RootElement.GetProperty("taskBusinessStatus").GetString());
        }

        // The same store as gRPC: the change is there for a gRPC caller, with the partner as its actor.
        using var channel = GrpcChannel.ForAddress(host.GrpcAddress);
        var client = new ServiceRequestV1.ServiceRequestService.ServiceRequestServiceClient(channel);
        var headers = new Metadata { { "authorization", "Bearer " + clinician } };
        var viaGrpc = await client.GetServiceRequestAsync(new ServiceRequestV1.GetServiceRequestRequest { Id = id }, headers, DateTime.UtcNow + Timeout);
        Assert.Equal(ServiceRequestV1.TaskBusinessStatus.OrderConfirmed, viaGrpc.ServiceRequest.TaskBusinessStatus);
        var history = await client.GetServiceRequestHistoryAsync(new ServiceRequestV1.GetServiceRequestHistoryRequest { Id = id }, headers, DateTime.UtcNow + Timeout);
        Assert.Contains(history.Changes, c => c.ToTaskBusinessStatus == ServiceRequestV1.TaskBusinessStatus.OrderConfirmed && c.Actor == "partner:lab-a");

        // Its history a page at a time over REST: page_size and page_token are query parameters.
        string token;
        using (var first = await SendAsync(http, HttpMethod.Get, $"/v1/service-requests/{id}/history?page_size=1", clinician))
        {
            Assert.Equal(HttpStatusCode.OK, first.Status);
            // An int64 is a JSON string in proto3 JSON.
            Assert.Equal("1", Assert.Single(first.Body.RootElement.GetProperty("changes").EnumerateArray()).GetProperty("sequence").GetString());
            token = first.Body.RootElement.GetProperty("nextPageToken").GetString()!;
        }

        using (var second = await SendAsync(http, HttpMethod.Get, $"/v1/service-requests/{id}/history?page_size=1&page_token={Uri.EscapeDataString(token)}", clinician))
        {
            Assert.Equal(HttpStatusCode.OK, second.Status);
            var change = Assert.Single(second.Body.RootElement.GetProperty("changes").EnumerateArray());
            Assert.Equal("ORDER_CONFIRMED", change.GetProperty("toTaskBusinessStatus").GetString());
        }

        using var again = await SendAsync(http, HttpMethod.Get, $"/v2/partner/service-request/{id}/status", labA);
        Assert.Equal("ORDER_CONFIRMED", again.Body.RootElement.GetProperty("taskBusinessStatus").GetString());
    }

    [Fact]
    public async Task Errors_AreHttpStatuses_WithTheGrpcStatusAndItsDetailsInTheBody()
    {
        using var http = new HttpClient { BaseAddress = new Uri(host.RestAddress), Timeout = Timeout };
        var clinician = RestHost.Token(CallerRole.Clinician);
        var (_, byPartner) = await CreateOrderAsync(http, clinician);
        var id = byPartner["lab-a"];
        var path = $"/v2/partner/service-request/{id}/status";
        var labA = RestHost.Token(CallerRole.Partner, "lab-a");

        // No token: UNAUTHENTICATED, 401, with the same message as over gRPC.
        using (var anonymous = await SendAsync(http, HttpMethod.Get, path, token: null))
        {
            AssertStatus(anonymous, HttpStatusCode.Unauthorized, StatusCode.Unauthenticated);
            Assert.Equal("Missing or invalid bearer token.", anonymous.Body.RootElement.GetProperty("message").GetString());
        }

        // The access matrix: a clinician may not move a task status (PERMISSION_DENIED, 403).
        using (var clinicianPatch = await SendAsync(http, HttpMethod.Patch, path, clinician, """{"task_business_status": "ORDER_CONFIRMED"}"""))
        {
            AssertStatus(clinicianPatch, HttpStatusCode.Forbidden, StatusCode.PermissionDenied);
        }

        // Another partner's service request is NOT_FOUND (404), as one that does not exist, with its ResourceInfo.
        using (var otherPartner = await SendAsync(http, HttpMethod.Patch, path, RestHost.Token(CallerRole.Partner, "lab-b"), """{"task_business_status": "ORDER_CONFIRMED"}"""))
        {
            AssertStatus(otherPartner, HttpStatusCode.NotFound, StatusCode.NotFound);
            var info = Detail(otherPartner, "google.rpc.ResourceInfo");
            Assert.Equal(id, info.GetProperty("resourceName").GetString());
        }

        // An unknown status name: INVALID_ARGUMENT (400) from the transcoder itself, before any handler.
        using (var unknown = await SendAsync(http, HttpMethod.Patch, path, labA, """{"task_business_status": "DONE"}"""))
        {
            AssertStatus(unknown, HttpStatusCode.BadRequest, StatusCode.InvalidArgument);
        }

        // The terminal issue status, then a move out of it: FAILED_PRECONDITION (400) with the PreconditionFailure.
        using (var issue = await SendAsync(http, HttpMethod.Patch, path, labA, """{"task_business_status": "ORDER_ISSUE"}"""))
        {
            Assert.Equal(HttpStatusCode.OK, issue.Status);
        }

        using (var backwards = await SendAsync(http, HttpMethod.Patch, path, labA, """{"task_business_status": "ORDER_CONFIRMED"}"""))
        {
            AssertStatus(backwards, HttpStatusCode.BadRequest, StatusCode.FailedPrecondition);
            var violation = Detail(backwards, "google.rpc.PreconditionFailure").GetProperty("violations")[0];
            Assert.Contains("ORDER_ISSUE", violation.GetProperty("description").GetString(), StringComparison.Ordinal);
        }

        // A stale etag: ABORTED, 409, with LabMesh's ErrorInfo.
        using (var stale = await SendAsync(http, HttpMethod.Patch, $"/v2/partner/service-request/{byPartner["lab-b"]}/status",
            RestHost.Token(CallerRole.Partner, "lab-b"), """{"task_business_status": "ORDER_CONFIRMED", "etag": "not-the-etag"}"""))
        {
            AssertStatus(stale, HttpStatusCode.Conflict, StatusCode.Aborted);
            Assert.Equal("STALE_ETAG", Detail(stale, "google.rpc.ErrorInfo").GetProperty("reason").GetString());
        }

        // Validation: INVALID_ARGUMENT with the BadRequest's field violations.
        using (var invalid = await SendAsync(http, HttpMethod.Post, "/v1/results:interpret", clinician, """{"results": [{"name": "", "numeric_value": 6.4}]}"""))
        {
            AssertStatus(invalid, HttpStatusCode.BadRequest, StatusCode.InvalidArgument);
            var fields = Detail(invalid, "google.rpc.BadRequest").GetProperty("fieldViolations").EnumerateArray().Select(v => v.GetProperty("field").GetString());
            Assert.Contains("results[0].name", fields);
        }
    }

    [Fact]
    public async Task GrpcStaysH2cOnItsPort_RestAnswersThereToo_OverHttp2()
    {
        // A gRPC client with HTTP/2 prior knowledge (as grpcurl -plaintext) on the gRPC port.
        using var channel = GrpcChannel.ForAddress(host.GrpcAddress);
        var limits = await new ResultsV1.ResultsInterpretationService.ResultsInterpretationServiceClient(channel)
            .GetCriticalLimitsAsync(new ResultsV1.GetCriticalLimitsRequest(), new Metadata { { "authorization", "Bearer " + RestHost.Token(CallerRole.Clinician) } }, DateTime.UtcNow + Timeout);
        Assert.NotEmpty(limits.Limits);

        // The gRPC port is HTTP/2 only (which is what lets grpcurl -plaintext in): Kestrel refuses HTTP/1.1 there.
        using var http1 = new HttpClient { Timeout = Timeout };
        using var refused = new HttpRequestMessage(HttpMethod.Get, $"{host.GrpcAddress}/v1/results/critical-limits") { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        refused.Headers.Authorization = new AuthenticationHeaderValue("Bearer", RestHost.Token(CallerRole.Clinician));
        using (var answer = await http1.SendAsync(refused))
        {
            Assert.Equal(HttpStatusCode.BadRequest, answer.StatusCode);
            Assert.Contains("HTTP/2 only endpoint", await answer.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }

        // And the REST port is HTTP/1.1 only: gRPC (HTTP/2 with prior knowledge) does not get through there.
        using var restChannel = GrpcChannel.ForAddress(host.RestAddress);
        var wrongPort = await Assert.ThrowsAsync<RpcException>(() => new ResultsV1.ResultsInterpretationService.ResultsInterpretationServiceClient(restChannel)
            .GetCriticalLimitsAsync(new ResultsV1.GetCriticalLimitsRequest(), new Metadata { { "authorization", "Bearer " + RestHost.Token(CallerRole.Clinician) } }, DateTime.UtcNow + Timeout).ResponseAsync);
        // (The HTTP/2 client reads Kestrel's HTTP/1.1 answer as a protocol error: INTERNAL, or UNAVAILABLE.)
        Assert.Contains(wrongPort.StatusCode, new[] { StatusCode.Internal, StatusCode.Unavailable });

        // The same REST route over h2c on the gRPC port, for HTTP/2 clients (curl --http2-prior-knowledge).
        using var http2 = new HttpClient { Timeout = Timeout };
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{host.GrpcAddress}/v1/results/critical-limits") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", RestHost.Token(CallerRole.Clinician));
        using var response = await http2.SendAsync(request);
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        Assert.Equal(HttpVersion.Version20, response.Version);
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal(limits.Limits.Count, body.RootElement.GetProperty("limits").GetArrayLength());
    }

    /// <summary>A placed order of team demo with LIPID_PANEL at lab-a and CMP at lab-b, created over REST; its id and service request ids by partner.</summary>
    private static async Task<(string RequisitionId, Dictionary<string, string> ServiceRequestByPartner)> CreateOrderAsync(HttpClient http, string clinicianToken)
    {
        var body = JsonSerializer.Serialize(new
        {
            request_id = Guid.NewGuid().ToString("N"),
            patient = new { id = "p-rest" },
            modality = "TEST_MODALITY_TESTKIT",
            tests = new object[]
            {
                new { code = "LIPID_PANEL", description = "Fasting lipid panel", partner_id = "lab-a" },
                new { code = "CMP", partner_id = "lab-b" },
            },
            place = true,
        });
        using var created = await SendAsync(http, HttpMethod.Post, "/v1/requisitions", clinicianToken, body);
        Assert.True(created.Status == HttpStatusCode.OK, created.ToString());
        var requisition = created.Body.RootElement.GetProperty("requisition");
        var byPartner = requisition.GetProperty("serviceRequests").EnumerateArray()
            .ToDictionary(s => s.GetProperty("partnerId").GetString()!, s => s.GetProperty("id").GetString()!);
        Assert.Equal(2, byPartner.Count);
        return (requisition.GetProperty("id").GetString()!, byPartner);
    }

    private static void AssertStatus(Answer answer, HttpStatusCode http, StatusCode grpc)
    {
        Assert.True(answer.Status == http, answer.ToString());
        Assert.Equal((int)grpc, answer.Body.RootElement.GetProperty("code").GetInt32());
    }

    /// <summary>The detail of <paramref name="type"/> in the body's <c>details</c> (Any in JSON: <c>@type</c> and the fields).</summary>
    private static JsonElement Detail(Answer answer, string type)
    {
        var details = answer.Body.RootElement.GetProperty("details").EnumerateArray().ToList();
        return Assert.Single(details, d => d.GetProperty("@type").GetString() == "type.googleapis.com/" + type);
    }

    private static async Task<Answer> SendAsync(HttpClient http, HttpMethod method, string path, string? token, string? json = null)
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
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return new Answer(response.StatusCode, text, JsonDocument.Parse(text));
    }

    private sealed record Answer(HttpStatusCode Status, string Text, JsonDocument Body) : IDisposable
    {
        public void Dispose() => Body.Dispose();

        public override string ToString() => $"{(int)Status} {Text}";
    }
}
