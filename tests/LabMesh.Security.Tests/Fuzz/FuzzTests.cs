using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Health.V1;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using Xunit.Abstractions;

using LabMesh.Testing;

namespace LabMesh.Security.Tests.Fuzz;

/// <summary>
/// Point 7 of the security issue: every RPC of the four services gets random bytes, wire-level mutations
/// of valid requests, oversize fields, deep nesting and random-but-valid messages. None may end INTERNAL
/// or UNKNOWN (nor DATA_LOSS or UNIMPLEMENTED), nothing is logged as an error, the host keeps serving, and
/// a method whose calls were all refused stored nothing. The seed is printed; set LABMESH_FUZZ_SEED to replay.
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    private const string Team = "team-fuzz";
    private const int RandomByteCalls = 12;
    private const int MutationCalls = 24;
    private const int ValidMessageCalls = 12;
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(20);
    private static readonly TimeSpan FirstStreamMessage = TimeSpan.FromSeconds(2);

    // A caller's mistake, or a refusal: anything else (INTERNAL, UNKNOWN, DATA_LOSS, UNIMPLEMENTED, a reset
    // stream's UNAVAILABLE or CANCELLED, a hang's DEADLINE_EXCEEDED, UNAUTHENTICATED for a good token) is a failure.
    private static readonly StatusCode[] Allowed =
    [
        StatusCode.OK, StatusCode.InvalidArgument, StatusCode.NotFound, StatusCode.FailedPrecondition, StatusCode.AlreadyExists,
        StatusCode.PermissionDenied, StatusCode.ResourceExhausted, StatusCode.Aborted, StatusCode.OutOfRange,
    ];

    [Fact]
    public void Catalog_HasEveryRpcOfTheFourServicesAndTheAuditLog()
    {
        var services = RpcCatalog.All.Select(r => r.Service.FullName).Distinct().ToList();

        Assert.Equal(
            ["labmesh.audit.v1.AuditService", "labmesh.notification.v1.NotificationService", "labmesh.requisition.v1.RequisitionService",
             "labmesh.results.v1.ResultsInterpretationService", "labmesh.servicerequest.v1.ServiceRequestService"],
            services);
        Assert.Contains(RpcCatalog.All, r => r.Name == "labmesh.notification.v1.NotificationService/Subscribe" && r.IsServerStreaming);
        Assert.Equal(RequisitionService.Descriptor.Methods.Count + ServiceRequestService.Descriptor.Methods.Count
            + ResultsInterpretationService.Descriptor.Methods.Count + NotificationService.Descriptor.Methods.Count
            + LabMesh.Contracts.Audit.V1.AuditService.Descriptor.Methods.Count, RpcCatalog.All.Count);
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task EveryRpc_HostileInput_NeverInternalOrUnknown_StoresNothingRefused_AndTheHostKeepsServing(Backend backend)
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("LABMESH_FUZZ_SEED"), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s)
            ? s : 20_260_611;
        output.WriteLine($"fuzz seed {seed} (set LABMESH_FUZZ_SEED to replay another)");
        var random = new Random(seed);
        var payloads = new Payloads(random);

        // Both stores: PostgreSQL refuses text SQLite keeps (a NUL), so a hole may show on one only.
        await using var mesh = await AllInOne.StartAsync(backend: backend);
        var clients = mesh.For(Team);
        var seeded = await SeedAsync(clients);
        var examples = Examples(seeded);
        var failures = new List<string>();
        var watch = Stopwatch.StartNew();
        var codes = new Dictionary<StatusCode, int>();

        foreach (var rpc in RpcCatalog.All)
        {
            var batch = new List<Payload>();
            for (var i = 0; i < RandomByteCalls; i++)
            {
                batch.Add(new Payload("random bytes", payloads.RandomBytes(i < 4 ? 8 : 512)));
            }

            var valid = examples.TryGetValue(rpc.Method.Name, out var example) ? example : payloads.Message(rpc.Input);
            batch.AddRange(payloads.Mutations(rpc.Input, valid.ToByteArray(), MutationCalls));
            batch.AddRange(payloads.Oversize(rpc.Input, stringFields: 2));
            batch.AddRange(Payloads.Nesting(rpc.Input));

            var refusedBefore = await CountStoredAsync(clients, seeded);
            var anyAccepted = false;
            foreach (var payload in batch)
            {
                var (code, detail) = await CallAsync(clients.Invoker, rpc, payload.Bytes);
                codes[code] = codes.GetValueOrDefault(code) + 1;
                anyAccepted |= code == StatusCode.OK;
                if (!Allowed.Contains(code))
                {
                    failures.Add($"{rpc}: {payload} -> {code} {detail}");
                }
            }

            var refusedAfter = await CountStoredAsync(clients, seeded);
            if (!anyAccepted && refusedAfter != refusedBefore)
            {
                failures.Add($"{rpc}: every hostile call was refused, yet the stores changed: {refusedBefore} -> {refusedAfter}");
            }

            // Random messages that are valid protobuf: these may be accepted, but never fail as the server's fault.
            for (var i = 0; i < ValidMessageCalls; i++)
            {
                var message = i == 0 && example is not null ? example : payloads.Message(rpc.Input);
                var (code, detail) = await CallAsync(clients.Invoker, rpc, message.ToByteArray());
                codes[code] = codes.GetValueOrDefault(code) + 1;
                if (!Allowed.Contains(code))
                {
                    failures.Add($"{rpc}: random valid message {message} -> {code} {detail}");
                }
            }
        }

        output.WriteLine($"{codes.Values.Sum()} calls to {RpcCatalog.All.Count} RPCs in {watch.Elapsed.TotalSeconds:F1} s: "
            + string.Join(", ", codes.OrderByDescending(c => c.Value).Select(c => $"{c.Key} {c.Value}")));
        Assert.True(failures.Count == 0, $"seed {seed}: {failures.Count} failures:\n" + string.Join("\n", failures.Take(60))
            + "\nserver errors:\n" + string.Join("\n", mesh.Host.Logs.Errors.Take(10).Select(e => $"{e.Message} {e.Exception}")));

        // Still serving: health, and a real read of what was stored before the fuzzing.
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, await mesh.HealthAsync());
        var read = await clients.Requisitions.GetRequisitionAsync(new GetRequisitionRequest { Id = seeded.Requisition.Id },
            deadline: DateTime.UtcNow + AllInOne.Timeout);
        Assert.Equal(seeded.Requisition.Id, read.Requisition.Id);
        Assert.Equal(seeded.Requisition.ServiceRequests.Count, read.Requisition.ServiceRequests.Count);
        mesh.Host.Logs.AssertNoErrors();
    }

    private static async Task<(StatusCode Code, string Detail)> CallAsync(CallInvoker invoker, Rpc rpc, byte[] payload)
    {
        var options = new CallOptions(deadline: DateTime.UtcNow + CallTimeout);
        try
        {
            if (rpc.IsServerStreaming)
            {
                using var stream = invoker.AsyncServerStreamingCall(rpc.RawMethod, null, options, payload);
                try
                {
                    // A stream that is open (a first message, or nothing yet) was accepted.
                    await stream.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(FirstStreamMessage);
                }
                catch (TimeoutException)
                {
                }

                return (StatusCode.OK, "");
            }

            using var call = invoker.AsyncUnaryCall(rpc.RawMethod, null, options, payload);
            await call.ResponseAsync;
            return (StatusCode.OK, "");
        }
        catch (RpcException ex)
        {
            return (ex.StatusCode, ex.Status.Detail);
        }
    }

    /// <summary>What the stores hold for the fuzzing team, read through the List RPCs and the seeded requisition's results.</summary>
    private static async Task<string> CountStoredAsync(AllInOne.Clients clients, Seeded seeded)
    {
        var deadline = DateTime.UtcNow + AllInOne.Timeout;
        var requisitions = await CountPagesAsync(async token =>
        {
            var page = await clients.Requisitions.ListRequisitionsAsync(new ListRequisitionsRequest { PageSize = 500, PageToken = token }, deadline: deadline);
            return (page.Requisitions.Count, page.NextPageToken);
        });
        var serviceRequests = await CountPagesAsync(async token =>
        {
            var page = await clients.ServiceRequests.ListServiceRequestsAsync(new ListServiceRequestsRequest { PageSize = 500, PageToken = token }, deadline: deadline);
            return (page.ServiceRequests.Count, page.NextPageToken);
        });
        var endpoints = await CountPagesAsync(async token =>
        {
            var page = await clients.Notifications.ListWebhookEndpointsAsync(new ListWebhookEndpointsRequest { PageSize = 500, PageToken = token }, deadline: deadline);
            return (page.Endpoints.Count, page.NextPageToken);
        });
        var reports = (await clients.Results.GetResultsAsync(
            new GetResultsRequest { RequisitionId = seeded.Requisition.Id, IncludeHistory = true }, deadline: deadline)).Reports.Count;
        var history = (await clients.ServiceRequests.GetServiceRequestHistoryAsync(
            new GetServiceRequestHistoryRequest { Id = seeded.Requisition.ServiceRequests[0].Id }, deadline: deadline)).Changes.Count;
        return $"requisitions {requisitions}, service requests {serviceRequests}, endpoints {endpoints}, reports {reports}, history {history}";
    }

    private static async Task<int> CountPagesAsync(Func<string, Task<(int Count, string Next)>> page)
    {
        var total = 0;
        var token = "";
        do
        {
            (var count, token) = await page(token);
            total += count;
        }
        while (token.Length > 0);
        return total;
    }

    private sealed record Seeded(LabMesh.Contracts.Requisition.V1.Requisition Requisition, Report Report, WebhookEndpoint Endpoint);

    private static async Task<Seeded> SeedAsync(AllInOne.Clients clients)
    {
        var deadline = DateTime.UtcNow + AllInOne.Timeout;
        var patient = new Patient { Id = "patient-fuzz", GivenName = "Fuzz", FamilyName = "Subject", BirthDate = "1990-01-01", Sex = "other" };
        var requisition = (await clients.Requisitions.CreateRequisitionAsync(AllInOne.Order(patient, "LIPID_PANEL", "CMP"), deadline: deadline)).Requisition;
        var report = (await clients.Results.SubmitResultsAsync(Report(requisition), deadline: deadline)).Report;
        var endpoint = (await clients.Notifications.CreateWebhookEndpointAsync(new CreateWebhookEndpointRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            Url = "https://hooks.example.com/labmesh",
        }, deadline: deadline)).Endpoint;
        return new Seeded(requisition, report, endpoint);
    }

    private static SubmitResultsRequest Report(LabMesh.Contracts.Requisition.V1.Requisition requisition)
    {
        var request = new SubmitResultsRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            RequisitionId = requisition.Id,
            Metadata = new ReportMetadata { Laboratory = "LabCorp", Status = ReportStatus.Partial, DateCollected = "2026-01-02" },
        };
        request.ServiceRequestIds.Add(requisition.ServiceRequests[0].Id);
        request.Results.Add(new Marker { Name = "Cholesterol", Slug = "cholesterol", Unit = "mg/dL", NumericValue = 180, MinRangeValue = 100, MaxRangeValue = 200 });
        return request;
    }

    /// <summary>Valid requests naming what was seeded, so mutations reach past the "not found" checks.</summary>
    private static Dictionary<string, IMessage> Examples(Seeded seeded)
    {
        var requisition = seeded.Requisition;
        var serviceRequest = requisition.ServiceRequests[0];
        var amend = new AmendResultsRequest { RequestId = Guid.NewGuid().ToString(), ReportId = seeded.Report.Id, Reason = "typo", Metadata = new ReportMetadata { Status = ReportStatus.Final } };
        amend.Results.Add(new Marker { Name = "Cholesterol", Slug = "cholesterol", Unit = "mg/dL", NumericValue = 181 });
        var interpret = new InterpretMarkersRequest();
        interpret.Results.Add(new Marker { Name = "Potassium", Slug = "potassium", Unit = "mmol/L", NumericValue = 6.9 });
        var batch = new BatchGetStatusRequest();
        batch.Ids.Add(serviceRequest.Id);
        return new Dictionary<string, IMessage>(StringComparer.Ordinal)
        {
            ["CreateRequisition"] = AllInOne.Order(requisition.Patient, "LIPID_PANEL"),
            ["GetRequisition"] = new GetRequisitionRequest { Id = requisition.Id },
            ["GetRequisitionStatus"] = new GetRequisitionStatusRequest { Id = requisition.Id },
            ["RecordOrderEvent"] = new RecordOrderEventRequest { Id = requisition.Id, Status = "collecting_sample.testkit.transit_customer" },
            ["GetServiceRequest"] = new GetServiceRequestRequest { Id = serviceRequest.Id },
            ["UpdateTaskStatus"] = new UpdateTaskStatusRequest { Id = serviceRequest.Id, TaskBusinessStatus = TaskBusinessStatus.AppointmentAttended },
            ["BatchGetStatus"] = batch,
            ["SubmitResults"] = Report(requisition),
            ["AmendResults"] = amend,
            ["GetResults"] = new GetResultsRequest { RequisitionId = requisition.Id },
            ["GetReport"] = new GetReportRequest { Id = seeded.Report.Id },
            ["InterpretMarkers"] = interpret,
            ["GetWebhookEndpoint"] = new GetWebhookEndpointRequest { Id = seeded.Endpoint.Id },
            ["UpdateWebhookEndpoint"] = new UpdateWebhookEndpointRequest { Id = seeded.Endpoint.Id, Etag = seeded.Endpoint.Etag, UpdateDescription = true, Description = "d" },
            ["Subscribe"] = new SubscribeRequest { Filter = new EventFilter { RequisitionId = requisition.Id } },
        };
    }
}
