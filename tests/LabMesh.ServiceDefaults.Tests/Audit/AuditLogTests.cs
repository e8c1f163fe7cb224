using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using LabMesh.Testing;
using LabMesh.Contracts.Audit.V1;
using LabMesh.Security.Audit;

namespace LabMesh.ServiceDefaults.Tests.Audit;

public sealed class SqliteAuditLogTests(SqliteAuditedMesh mesh) : AuditLogTests(mesh), IClassFixture<SqliteAuditedMesh>;

public sealed class PostgresAuditLogTests(PostgresAuditedMesh mesh) : AuditLogTests(mesh), IClassFixture<PostgresAuditedMesh>;

/// <summary>The audit log the all-in-one host kept of one lab order's life (<see cref="AuditedMesh"/>), read through AuditService.</summary>
public abstract class AuditLogTests(AuditedMesh mesh)
{
    private const string Requisitions = "/labmesh.requisition.v1.RequisitionService/";
    private const string ServiceRequests = "/labmesh.servicerequest.v1.ServiceRequestService/";
    private const string Results = "/labmesh.results.v1.ResultsInterpretationService/";
    private const string Notifications = "/labmesh.notification.v1.NotificationService/";

    [Fact]
    public async Task RequisitionMutations_AreRecorded_WithActorTimeTargetAndChangedFields()
    {
        var records = await mesh.RecordsAsync();

        var created = Single(records, Requisitions + "CreateRequisition", mesh.Reported.Id);
        AssertRecord(created, AuditedMesh.Clinician, "clinician", "Requisition");
        Assert.Equal(
            ["patient.id", "patient.given_name", "patient.family_name", "patient.birth_date", "patient.sex",
             "ordering_provider.id", "ordering_provider.name", "lab", "modality", "tests"],
            created.ChangedFields);
        AssertRecord(Single(records, Requisitions + "PlaceRequisition", mesh.Reported.Id), AuditedMesh.Clinician, "clinician", "Requisition");
        var cancelled = Single(records, Requisitions + "CancelRequisition", mesh.Cancelled.Id);
        AssertRecord(cancelled, AuditedMesh.Clinician, "clinician", "Requisition");
        Assert.Empty(cancelled.ChangedFields);
    }

    [Fact]
    public async Task ServiceRequestMutations_AreRecorded_WithActorTimeTargetAndChangedFields()
    {
        var records = await mesh.RecordsAsync();

        var update = Single(records, ServiceRequests + "UpdateTaskStatus", mesh.Reported.ServiceRequests[0].Id);
        AssertRecord(update, "partner:" + AuditedMesh.Partner, "partner", "ServiceRequest");
        Assert.Equal(["task_business_status"], update.ChangedFields);
        var revoke = Single(records, ServiceRequests + "RevokeServiceRequest", mesh.Revoked.ServiceRequests[0].Id);
        AssertRecord(revoke, AuditedMesh.Clinician, "clinician", "ServiceRequest");
        Assert.Equal(["reason"], revoke.ChangedFields);
        // The Requisition service created the service requests, relaying the clinician's PlaceRequisition.
        var create = Single(records, ServiceRequests + "CreateServiceRequests", mesh.Reported.Id);
        AssertRecord(create, "service:requisition", "service", "Requisition", onBehalfOf: AuditedMesh.Clinician);
        Assert.Equal(["service_requests"], create.ChangedFields);
    }

    [Fact]
    public async Task ResultsMutations_AreRecorded_WithActorTimeTargetAndChangedFields()
    {
        var records = await mesh.RecordsAsync();

        var submit = Single(records, Results + "SubmitResults", mesh.Report.Id);
        AssertRecord(submit, AuditedMesh.Lab, "service", "Report");
        Assert.Equal(
            ["requisition_id", "service_request_ids", "metadata.laboratory", "metadata.specimen_number", "metadata.date_collected", "metadata.status", "results"],
            submit.ChangedFields);
        var amend = Single(records, Results + "AmendResults", mesh.Report.Id);
        AssertRecord(amend, AuditedMesh.Lab, "service", "Report");
        Assert.Equal(["reason", "metadata.laboratory", "metadata.specimen_number", "metadata.date_collected", "metadata.status", "results"], amend.ChangedFields);
        var share = Single(records, Results + "ShareInterpretation", mesh.Reported.Id);
        AssertRecord(share, AuditedMesh.Clinician, "clinician", "Requisition");
        Assert.Equal(["note"], share.ChangedFields);
    }

    [Fact]
    public async Task NotificationMutations_AreRecorded_WithActorTimeTargetAndChangedFields()
    {
        var records = await mesh.RecordsAsync();

        var create = Single(records, Notifications + "CreateWebhookEndpoint", mesh.Endpoint.Id);
        AssertRecord(create, AuditedMesh.Admin, "admin", "WebhookEndpoint");
        Assert.Equal(["url", "event_types"], create.ChangedFields);
        var update = Single(records, Notifications + "UpdateWebhookEndpoint", mesh.Endpoint.Id);
        AssertRecord(update, AuditedMesh.Admin, "admin", "WebhookEndpoint");
        Assert.Equal(["description"], update.ChangedFields);
        var delete = Single(records, Notifications + "DeleteWebhookEndpoint", mesh.Endpoint.Id);
        AssertRecord(delete, AuditedMesh.Admin, "admin", "WebhookEndpoint");
        Assert.Empty(delete.ChangedFields);
    }

    [Fact]
    public async Task Reads_AreNotRecorded()
    {
        var records = await mesh.RecordsAsync();

        Assert.DoesNotContain(records, r => r.Actor == AuditedMesh.Reader);
        Assert.All(records, r => Assert.True(AuditCatalog.Methods[r.Method].Mutates, $"{r.Method} is a read, yet recorded."));
    }

    [Fact]
    public async Task FailedMutations_AreNotRecorded()
    {
        var records = await mesh.RecordsAsync(new GetAuditLogRequest { Actor = AuditedMesh.Mistaken });

        Assert.Empty(records);
    }

    [Fact]
    public async Task NoRecord_HoldsPatientDataOrResultValues()
    {
        var records = await mesh.RecordsAsync();

        Assert.NotEmpty(records);
        // The record's time is left out: its fraction of a second may hold the value's digits by chance.
        foreach (var text in records.Select(r => JsonFormatter.Default.Format(WithoutTime(r))))
        {
            Assert.DoesNotContain(AuditedMesh.GivenName, text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(AuditedMesh.FamilyName, text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain(AuditedMesh.BirthDate, text, StringComparison.Ordinal);
            Assert.DoesNotContain(AuditedMesh.ResultValue.ToString(System.Globalization.CultureInfo.InvariantCulture), text, StringComparison.Ordinal);
            Assert.DoesNotContain(AuditedMesh.AmendedValue.ToString(System.Globalization.CultureInfo.InvariantCulture), text, StringComparison.Ordinal);
            Assert.DoesNotContain("patient-42", text, StringComparison.Ordinal);
        }
    }

    private static AuditRecord WithoutTime(AuditRecord record)
    {
        var copy = record.Clone();
        copy.Time = null;
        return copy;
    }

    [Fact]
    public async Task AnotherTeamsAdmin_SeesNothing()
    {
        var page = await mesh.AuditLog(AuditedMesh.OtherTeam).GetAuditLogAsync(new GetAuditLogRequest(), deadline: AuditedMesh.Deadline);

        Assert.Empty(page.Records);
        Assert.Empty(page.NextPageToken);
    }

    [Theory]
    [InlineData("clinician")]
    [InlineData("partner")]
    [InlineData("service")]
    public async Task NonAdmins_ArePermissionDenied(string role)
    {
        var error = await Assert.ThrowsAsync<RpcException>(
            () => mesh.AuditLog(role: role).GetAuditLogAsync(new GetAuditLogRequest(), deadline: AuditedMesh.Deadline).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
    }

    [Fact]
    public async Task Paging_WalksEveryRecordOnce_NewestFirst()
    {
        var all = (await mesh.AuditLog().GetAuditLogAsync(
            new GetAuditLogRequest { PageSize = 500, EndTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(mesh.Finished) },
            deadline: AuditedMesh.Deadline)).Records;

        var paged = await mesh.RecordsAsync(new GetAuditLogRequest { PageSize = 3 });

        Assert.True(all.Count > 3, $"only {all.Count} records");
        Assert.Equal(all.Select(r => r.Id), paged.Select(r => r.Id));
        Assert.Equal(all.Select(r => r.Id).OrderDescending(StringComparer.Ordinal), all.Select(r => r.Id));
        Assert.Equal(all.Count, all.Select(r => r.Id).Distinct().Count());
    }

    [Fact]
    public async Task Filters_SelectByTargetActorMethodAndTime()
    {
        var all = await mesh.RecordsAsync();

        var byTarget = await mesh.RecordsAsync(new GetAuditLogRequest { TargetType = "Requisition", TargetId = mesh.Cancelled.Id });
        var byActor = await mesh.RecordsAsync(new GetAuditLogRequest { Actor = AuditedMesh.Admin });
        var byClinician = await mesh.RecordsAsync(new GetAuditLogRequest { Actor = AuditedMesh.Clinician });
        var byMethod = await mesh.RecordsAsync(new GetAuditLogRequest { Method = ServiceRequests + "UpdateTaskStatus" });
        var middle = all[all.Count / 2].Time;
        var before = await mesh.RecordsAsync(new GetAuditLogRequest { EndTime = middle });
        var from = await mesh.RecordsAsync(new GetAuditLogRequest { StartTime = middle });

        Assert.Equal(all.Where(r => r is { TargetType: "Requisition" } && r.TargetId == mesh.Cancelled.Id).Select(r => r.Id), byTarget.Select(r => r.Id));
        Assert.Contains(byTarget, r => r.Method == Requisitions + "CancelRequisition");
        Assert.Equal(3, byActor.Count);
        Assert.All(byActor, r => Assert.StartsWith(Notifications, r.Method, StringComparison.Ordinal));
        // A user's own changes and those a service made for them.
        Assert.Equal(
            all.Where(r => r.Actor == AuditedMesh.Clinician || r.OnBehalfOf == AuditedMesh.Clinician).Select(r => r.Id),
            byClinician.Select(r => r.Id));
        Assert.Contains(byClinician, r => r.Method == ServiceRequests + "CreateServiceRequests" && r.Actor == "service:requisition");
        Assert.Contains(byClinician, r => r.Method == Requisitions + "PlaceRequisition");
        Assert.Equal(mesh.Reported.ServiceRequests[0].Id, Assert.Single(byMethod).TargetId);
        Assert.All(before, r => Assert.True(r.Time < middle));
        Assert.All(from, r => Assert.True(r.Time >= middle));
        Assert.Equal(all.Count, before.Count + from.Count);
    }

    [Fact]
    public async Task BadQueries_AreInvalidArgument_WithTheFieldsNamed()
    {
        var client = mesh.AuditLog();
        async Task<string[]> Violations(GetAuditLogRequest request)
        {
            var error = await Assert.ThrowsAsync<RpcException>(() => client.GetAuditLogAsync(request, deadline: AuditedMesh.Deadline).ResponseAsync);
            Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
            return [.. error.GetDetail<BadRequest>()!.FieldViolations.Select(v => v.Field)];
        }

        var now = DateTimeOffset.UtcNow;

        Assert.Equal(["page_size"], await Violations(new GetAuditLogRequest { PageSize = 501 }));
        Assert.Equal(["page_token"], await Violations(new GetAuditLogRequest { PageToken = "not-a-token" }));
        Assert.Equal(["actor", "end_time"], await Violations(new GetAuditLogRequest
        {
            Actor = new string('a', 257),
            StartTime = Timestamp.FromDateTimeOffset(now),
            EndTime = Timestamp.FromDateTimeOffset(now.AddMinutes(-1)),
        }));
        Assert.Equal(["start_time"], await Violations(new GetAuditLogRequest { StartTime = new Timestamp { Seconds = 1, Nanos = -5 } }));
    }

    private static AuditRecord Single(IEnumerable<AuditRecord> records, string method, string targetId)
    {
        var matching = records.Where(r => r.Method == method && r.TargetId == targetId).ToList();
        return matching.Count == 1 ? matching[0] : throw new Xunit.Sdk.XunitException($"{matching.Count} records of {method} on {targetId}.");
    }

    private void AssertRecord(AuditRecord record, string actor, string role, string targetType, string onBehalfOf = "")
    {
        Assert.Equal(AuditedMesh.Team, record.TeamId);
        Assert.Equal(actor, record.Actor);
        Assert.Equal(onBehalfOf, record.OnBehalfOf);
        Assert.Equal(role, record.Role);
        Assert.Equal(targetType, record.TargetType);
        Assert.Equal("OK", record.Outcome);
        Assert.InRange(record.Time.ToDateTimeOffset(), mesh.Started, mesh.Finished);
        Assert.True(Guid.TryParse(record.Id, out _));
    }
}
