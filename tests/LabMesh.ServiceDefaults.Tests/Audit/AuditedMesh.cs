using LabMesh.Security.Identity;
using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.Contracts.Audit.V1;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Testing;

namespace LabMesh.ServiceDefaults.Tests.Audit;

/// <summary>
/// The four services in one all-in-one host (four stores, one audit endpoint), and one lab order's
/// life through them made once per backend with recognisable patient data: the mutations of each
/// service by a clinician, a partner, a lab and an admin, then reads by a reader and failing
/// mutations by a mistaken caller. The tests read the audit log this left.
/// </summary>
public abstract class AuditedMesh(Backend backend) : IAsyncLifetime
{
    public const string Team = "audit-team";
    public const string OtherTeam = "other-team";
    public const string Clinician = "dr-ana";
    public const string Partner = "partner-1";
    public const string Lab = "service:lab-gateway";
    public const string Admin = "admin-olga";
    public const string Reader = "reader-rui";
    public const string Mistaken = "mistaken-mo";

    // Patient data and result values no audit record may hold.
    public const string GivenName = "Zebulon";
    public const string FamilyName = "Quackenbush";
    public const string BirthDate = "1931-07-04";
    public const string ShareNote = "Zebulon, your potassium is fine";
    public const double ResultValue = 4.37;
    public const double AmendedValue = 4.41;

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly List<GrpcChannel> _channels = [];

    public ServiceHost Host { get; private set; } = null!;

    public DateTimeOffset Started { get; private set; }

    public DateTimeOffset Finished { get; private set; }

    /// <summary>Created as a draft, placed, given results that were amended and shared.</summary>
    public Contracts.Requisition.V1.Requisition Reported { get; private set; } = null!;

    /// <summary>Placed, then cancelled.</summary>
    public Contracts.Requisition.V1.Requisition Cancelled { get; private set; } = null!;

    /// <summary>Placed; its service request revoked.</summary>
    public Contracts.Requisition.V1.Requisition Revoked { get; private set; } = null!;

    public Report Report { get; private set; } = null!;

    public WebhookEndpoint Endpoint { get; private set; } = null!;

    public static DateTime Deadline => DateTime.UtcNow.Add(Timeout);

    public async Task InitializeAsync()
    {
        var settings = await TestSettings.CreateAsync(backend);
        settings["LabMesh:Notification:Webhooks:AllowedNetworks:0"] = "127.0.0.0/8";
        Host = await MeshHosts.StartAllInOneAsync(settings, FreePort.Next()).WaitAsync(TimeSpan.FromSeconds(120));
        Started = DateTimeOffset.UtcNow;
        await MutateAsync();
        await ReadAsync();
        await FailAsync();
        await QuietAsync();
        Finished = DateTimeOffset.UtcNow;
    }

    /// <summary>
    /// Waits (bounded) until the audit log stops growing: effects a service applies in the background after a
    /// call returns (a results stage told to the Requisition service) are audited too, and on a loaded machine one
    /// can land a second later, between two reads of a test.
    /// </summary>
    private async Task QuietAsync()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        var (count, unchanged) = (-1, 0);
        while (unchanged < 3)
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"The audit log kept growing for 20 s (last count {count}).");
            }

            var now = (await RecordsAsync()).Count;
            unchanged = now == count ? unchanged + 1 : 0;
            count = now;
            await Task.Delay(250);
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var channel in _channels)
        {
            channel.Dispose();
        }

        var logs = Host.Logs;
        await Host.DisposeAsync();
        logs.AssertNoErrors();
    }

    public CallInvoker Invoker(string subject, string? role = null, string? partner = null, string team = Team)
    {
        var channel = Host.CreateChannel();
        _channels.Add(channel);
        if (role == "partner")
        {
            partner ??= Partner;
        }

        return partner is not null || role is null
            ? TestCaller.Invoker(channel, team, partner, subject)
            : TestCaller.InvokerAs(channel, team, Enum.Parse<CallerRole>(role, ignoreCase: true), subject);
    }

    public AuditService.AuditServiceClient AuditLog(string team = Team, string role = "admin") => new(Invoker(Admin, role, team: team));

    /// <summary>Every record the team's admin can read that matches <paramref name="query"/>, page by page, newest first.</summary>
    public async Task<List<AuditRecord>> RecordsAsync(GetAuditLogRequest? query = null, string team = Team)
    {
        var client = AuditLog(team);
        var request = query?.Clone() ?? new GetAuditLogRequest();
        if (request.EndTime is null && Finished != default)
        {
            // The log as the fixture left it: a background effect may still land later (a results stage told to
            // the Requisition service), and two reads of one test must see the same records.
            request.EndTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(Finished);
        }

        var records = new List<AuditRecord>();
        do
        {
            var page = await client.GetAuditLogAsync(request, deadline: Deadline);
            records.AddRange(page.Records);
            request.PageToken = page.NextPageToken;
        }
        while (request.PageToken.Length > 0);
        return records;
    }

    public static CreateRequisitionRequest Order(bool place) => new()
    {
        RequestId = Guid.NewGuid().ToString(),
        Patient = new Patient { Id = "patient-42", GivenName = GivenName, FamilyName = FamilyName, BirthDate = BirthDate, Sex = "male" },
        OrderingProvider = new Provider { Id = "prov-1", Name = "Dr. Ana Silva" },
        Lab = "LabCorp",
        Modality = TestModality.Testkit,
        Place = place,
        Tests = { new OrderedTest { Code = "BMP", PartnerId = Partner } },
    };

    public static Marker Potassium(double value) =>
        new() { Name = "Potassium", Slug = "potassium", Unit = "mmol/L", NumericValue = value, MinRangeValue = 3.5, MaxRangeValue = 5.1 };

    private async Task MutateAsync()
    {
        var requisitions = new RequisitionService.RequisitionServiceClient(Invoker(Clinician, "clinician"));
        var serviceRequests = new ServiceRequestService.ServiceRequestServiceClient(Invoker(Clinician, "clinician"));
        var partner = new ServiceRequestService.ServiceRequestServiceClient(Invoker("partner-user", partner: Partner));
        var lab = new ResultsInterpretationService.ResultsInterpretationServiceClient(Invoker(Lab, "service"));
        var clinicianResults = new ResultsInterpretationService.ResultsInterpretationServiceClient(Invoker(Clinician, "clinician"));
        var notifications = new NotificationService.NotificationServiceClient(Invoker(Admin, "admin"));

        var draft = (await requisitions.CreateRequisitionAsync(Order(place: false), deadline: Deadline)).Requisition;
        await requisitions.PlaceRequisitionAsync(new PlaceRequisitionRequest { Id = draft.Id }, deadline: Deadline);
        Reported = (await requisitions.GetRequisitionAsync(new GetRequisitionRequest { Id = draft.Id }, deadline: Deadline)).Requisition;
        await partner.UpdateTaskStatusAsync(
            new UpdateTaskStatusRequest { Id = Reported.ServiceRequests[0].Id, TaskBusinessStatus = TaskBusinessStatus.OrderConfirmed },
            deadline: Deadline);

        var submit = new SubmitResultsRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            RequisitionId = Reported.Id,
            ServiceRequestIds = { Reported.ServiceRequests[0].Id },
            Metadata = new ReportMetadata { Laboratory = "LabCorp", SpecimenNumber = "W4123", Status = ReportStatus.Final, DateCollected = "2026-11-20" },
            Results = { Potassium(ResultValue) },
        };
        Report = (await lab.SubmitResultsAsync(submit, deadline: Deadline)).Report;
        var amend = new AmendResultsRequest
        {
            RequestId = Guid.NewGuid().ToString(),
            ReportId = Report.Id,
            Reason = "re-run",
            Metadata = submit.Metadata.Clone(),
            Results = { Potassium(AmendedValue) },
        };
        await lab.AmendResultsAsync(amend, deadline: Deadline);
        // The service request reaches FULL_RESULTS_READY as an effect of the report; sharing waits for it.
        await Eventually.HoldsAsync(async () =>
        {
            try
            {
                await clinicianResults.ShareInterpretationAsync(
                    new ShareInterpretationRequest { RequisitionId = Reported.Id, Note = ShareNote }, deadline: Deadline);
                return true;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.FailedPrecondition)
            {
                return false;
            }
        }, Timeout, "the interpretation to be shareable");

        Cancelled = (await requisitions.CreateRequisitionAsync(Order(place: true), deadline: Deadline)).Requisition;
        await requisitions.CancelRequisitionAsync(new CancelRequisitionRequest { Id = Cancelled.Id }, deadline: Deadline);

        Revoked = (await requisitions.CreateRequisitionAsync(Order(place: true), deadline: Deadline)).Requisition;
        await serviceRequests.RevokeServiceRequestAsync(
            new RevokeServiceRequestRequest { Id = Revoked.ServiceRequests[0].Id, Reason = "duplicate" }, deadline: Deadline);

        Endpoint = (await notifications.CreateWebhookEndpointAsync(
            new CreateWebhookEndpointRequest
            {
                RequestId = Guid.NewGuid().ToString(),
                Url = "http://127.0.0.1:9/hooks/labmesh",
                EventTypes = { "critical_result.acknowledged" },
            },
            deadline: Deadline)).Endpoint;
        Endpoint = (await notifications.UpdateWebhookEndpointAsync(
            new UpdateWebhookEndpointRequest { Id = Endpoint.Id, Etag = Endpoint.Etag, UpdateDescription = true, Description = "ward 7 pager" },
            deadline: Deadline)).Endpoint;
        await notifications.DeleteWebhookEndpointAsync(new DeleteWebhookEndpointRequest { Id = Endpoint.Id, Etag = Endpoint.Etag }, deadline: Deadline);
    }

    private async Task ReadAsync()
    {
        // Each read as the first role the access matrix lets call it: what is checked is that reads leave no record.
        var invoker = Invoker(Reader);
        var requisitions = new RequisitionService.RequisitionServiceClient(invoker);
        var serviceRequests = new ServiceRequestService.ServiceRequestServiceClient(invoker);
        var results = new ResultsInterpretationService.ResultsInterpretationServiceClient(invoker);
        var notifications = new NotificationService.NotificationServiceClient(invoker);
        var serviceRequestId = Reported.ServiceRequests[0].Id;

        await requisitions.GetRequisitionAsync(new GetRequisitionRequest { Id = Reported.Id }, deadline: Deadline);
        await requisitions.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline);
        await requisitions.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = Reported.Id }, deadline: Deadline);
        await serviceRequests.GetServiceRequestAsync(new GetServiceRequestRequest { Id = serviceRequestId }, deadline: Deadline);
        await serviceRequests.ListServiceRequestsAsync(new ListServiceRequestsRequest(), deadline: Deadline);
        await serviceRequests.BatchGetStatusAsync(new BatchGetStatusRequest { Ids = { serviceRequestId } }, deadline: Deadline);
        await serviceRequests.GetServiceRequestHistoryAsync(new GetServiceRequestHistoryRequest { Id = serviceRequestId }, deadline: Deadline);
        await results.GetResultsAsync(new GetResultsRequest { RequisitionId = Reported.Id, IncludeHistory = true }, deadline: Deadline);
        await results.GetReportAsync(new GetReportRequest { Id = Report.Id }, deadline: Deadline);
        await results.InterpretMarkersAsync(new InterpretMarkersRequest { Results = { Potassium(ResultValue) } }, deadline: Deadline);
        await results.GetCriticalLimitsAsync(new GetCriticalLimitsRequest(), deadline: Deadline);
        await notifications.ListWebhookEndpointsAsync(new ListWebhookEndpointsRequest(), deadline: Deadline);
        await notifications.ListEventsAsync(new ListEventsRequest(), deadline: Deadline);
    }

    private async Task FailAsync()
    {
        // Each call as a role the access matrix lets in, so it fails in the handler, not at the door.
        var invoker = Invoker(Mistaken);
        var requisitions = new RequisitionService.RequisitionServiceClient(invoker);
        var serviceRequests = new ServiceRequestService.ServiceRequestServiceClient(invoker);
        var results = new ResultsInterpretationService.ResultsInterpretationServiceClient(invoker);
        var notifications = new NotificationService.NotificationServiceClient(invoker);

        var invalid = Order(place: true);
        invalid.Tests.Clear();
        await Fails(StatusCode.InvalidArgument, requisitions.CreateRequisitionAsync(invalid, deadline: Deadline));
        await Fails(StatusCode.NotFound, requisitions.PlaceRequisitionAsync(new PlaceRequisitionRequest { Id = "no-such-requisition" }, deadline: Deadline));
        await Fails(StatusCode.Aborted, requisitions.CancelRequisitionAsync(new CancelRequisitionRequest { Id = Reported.Id, Etag = "stale" }, deadline: Deadline));
        await Fails(null, serviceRequests.UpdateTaskStatusAsync(
            new UpdateTaskStatusRequest { Id = Reported.ServiceRequests[0].Id, TaskBusinessStatus = TaskBusinessStatus.OrderConfirmed }, deadline: Deadline));
        await Fails(StatusCode.NotFound, results.SubmitResultsAsync(
            new SubmitResultsRequest
            {
                RequestId = Guid.NewGuid().ToString(),
                RequisitionId = "no-such-requisition",
                Metadata = new ReportMetadata { Status = ReportStatus.Final },
                Results = { Potassium(ResultValue) },
            },
            deadline: Deadline));
        await Fails(StatusCode.InvalidArgument, notifications.CreateWebhookEndpointAsync(
            new CreateWebhookEndpointRequest { RequestId = Guid.NewGuid().ToString(), Url = "ftp://example.org/hook" }, deadline: Deadline));
    }

    /// <summary>Waits for <paramref name="call"/> to fail with <paramref name="expected"/>, or with any caller's-mistake status when null.</summary>
    private static async Task Fails<T>(StatusCode? expected, AsyncUnaryCall<T> call)
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseAsync);
        if (expected is { } code)
        {
            Assert.Equal(code, error.StatusCode);
        }
        else
        {
            Assert.DoesNotContain(error.StatusCode, new[] { StatusCode.Unknown, StatusCode.Internal });
        }
    }
}

public sealed class SqliteAuditedMesh() : AuditedMesh(Backend.Sqlite);

public sealed class PostgresAuditedMesh() : AuditedMesh(Backend.Postgres);
