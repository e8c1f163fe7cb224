using Grpc.Core;
using LabMesh.Testing;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Security.Identity;

namespace LabMesh.Identity.Tests;

/// <summary>
/// Who sees what: a partner only the service requests assigned to it, nobody another team's data
/// (NOT_FOUND, as if it did not exist), only a service acts for another team, and a denied write
/// with a well-formed request stores nothing.
/// </summary>
[Collection(MeshCollection.Name)]
public sealed class ScopingTests(Mesh mesh)
{
    private readonly string _team = "scope-" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task Partner_ReadsAndUpdatesItsOwnServiceRequests()
    {
        var requisition = await mesh.PlaceAsync(_team, "own", partner: "lab-a", secondPartner: "lab-b");
        var mine = requisition.ServiceRequests.Single(s => s.PartnerId == "lab-a");
        var client = new ServiceRequestService.ServiceRequestServiceClient(mesh.As(_team, CallerRole.Partner, partner: "lab-a"));

        var read = await client.GetServiceRequestAsync(new GetServiceRequestRequest { Id = mine.Id }, deadline: Mesh.Deadline);
        var updated = await client.UpdateTaskStatusAsync(new UpdateTaskStatusRequest { Id = mine.Id, TaskBusinessStatus = TaskBusinessStatus.OrderConfirmed }, deadline: Mesh.Deadline);
        var history = await client.GetServiceRequestHistoryAsync(new GetServiceRequestHistoryRequest { Id = mine.Id }, deadline: Mesh.Deadline);
        var listed = await client.ListServiceRequestsAsync(new ListServiceRequestsRequest(), deadline: Mesh.Deadline);
        var batch = await client.BatchGetStatusAsync(new BatchGetStatusRequest { Ids = { requisition.ServiceRequests.Select(s => s.Id) } }, deadline: Mesh.Deadline);

        Assert.Equal(mine.Id, read.ServiceRequest.Id);
        Assert.Equal(TaskBusinessStatus.OrderConfirmed, updated.ServiceRequest.TaskBusinessStatus);
        Assert.Contains(history.Changes, c => c.Actor == "partner:lab-a");
        Assert.Equal([mine.Id], listed.ServiceRequests.Select(s => s.Id));
        Assert.Equal([mine.Id], batch.Statuses.Select(s => s.Id));
        Assert.Equal(requisition.ServiceRequests.Where(s => s.PartnerId != "lab-a").Select(s => s.Id), batch.NotFoundIds);
    }

    [Fact]
    public async Task Partner_OnAnotherPartnersServiceRequest_IsNotFound_AsIfItDidNotExist_AndChangesNothing()
    {
        var requisition = await mesh.PlaceAsync(_team, "others", partner: "lab-b", secondPartner: "lab-b");
        var theirs = requisition.ServiceRequests[0];
        var client = new ServiceRequestService.ServiceRequestServiceClient(mesh.As(_team, CallerRole.Partner, partner: "lab-a"));
        var missing = await Assert.ThrowsAsync<RpcException>(() =>
            client.GetServiceRequestAsync(new GetServiceRequestRequest { Id = "no-such-id" }, deadline: Mesh.Deadline).ResponseAsync);

        var get = await Assert.ThrowsAsync<RpcException>(() =>
            client.GetServiceRequestAsync(new GetServiceRequestRequest { Id = theirs.Id }, deadline: Mesh.Deadline).ResponseAsync);
        var update = await Assert.ThrowsAsync<RpcException>(() =>
            client.UpdateTaskStatusAsync(new UpdateTaskStatusRequest { Id = theirs.Id, TaskBusinessStatus = TaskBusinessStatus.OrderIssue }, deadline: Mesh.Deadline).ResponseAsync);
        var history = await Assert.ThrowsAsync<RpcException>(() =>
            client.GetServiceRequestHistoryAsync(new GetServiceRequestHistoryRequest { Id = theirs.Id }, deadline: Mesh.Deadline).ResponseAsync);
        var list = await Assert.ThrowsAsync<RpcException>(() =>
            client.ListServiceRequestsAsync(new ListServiceRequestsRequest { PartnerId = "lab-b" }, deadline: Mesh.Deadline).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        foreach (var error in new[] { get, update, history })
        {
            Assert.Equal(StatusCode.NotFound, error.StatusCode);
            Assert.Equal(missing.Status.Detail.Replace("no-such-id", theirs.Id, StringComparison.Ordinal), error.Status.Detail);
            Assert.Equal("service request", error.GetDetail<Google.Rpc.ResourceInfo>()?.ResourceType);
        }

        Assert.Equal(StatusCode.PermissionDenied, list.StatusCode);
        var owner = new ServiceRequestService.ServiceRequestServiceClient(mesh.As(_team, CallerRole.Service));
        var after = await owner.GetServiceRequestAsync(new GetServiceRequestRequest { Id = theirs.Id }, deadline: Mesh.Deadline);
        var changes = await owner.GetServiceRequestHistoryAsync(new GetServiceRequestHistoryRequest { Id = theirs.Id }, deadline: Mesh.Deadline);
        Assert.NotEqual(TaskBusinessStatus.OrderIssue, after.ServiceRequest.TaskBusinessStatus);
        Assert.DoesNotContain(changes.Changes, c => c.Actor.StartsWith("partner:", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(CallerRole.Clinician)]
    [InlineData(CallerRole.Admin)]
    [InlineData(CallerRole.Service)]
    [InlineData(CallerRole.Partner)]
    public async Task AnotherTeamsData_IsNotFound_ForEveryRole(CallerRole role)
    {
        var requisition = await mesh.PlaceAsync(_team, "cross-" + role);
        var otherTeam = _team + "-other";
        var serviceRequest = requisition.ServiceRequests[0];

        var serviceRequests = new ServiceRequestService.ServiceRequestServiceClient(mesh.As(otherTeam, role, partner: "lab-a"));
        var error = await Assert.ThrowsAsync<RpcException>(() =>
            serviceRequests.GetServiceRequestAsync(new GetServiceRequestRequest { Id = serviceRequest.Id }, deadline: Mesh.Deadline).ResponseAsync);
        var batch = await serviceRequests.BatchGetStatusAsync(new BatchGetStatusRequest { Ids = { serviceRequest.Id } }, deadline: Mesh.Deadline);

        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Empty(batch.Statuses);
        Assert.Equal([serviceRequest.Id], batch.NotFoundIds);
        if (role != CallerRole.Partner)
        {
            var requisitions = new RequisitionService.RequisitionServiceClient(mesh.As(otherTeam, role));
            var get = await Assert.ThrowsAsync<RpcException>(() =>
                requisitions.GetRequisitionAsync(new GetRequisitionRequest { Id = requisition.Id }, deadline: Mesh.Deadline).ResponseAsync);
            var listed = await requisitions.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Mesh.Deadline);
            Assert.Equal(StatusCode.NotFound, get.StatusCode);
            Assert.Empty(listed.Requisitions);
        }
    }

    [Fact]
    public async Task Service_ActsForTheTeamItNames_AndIsRecordedAsItself()
    {
        var requisition = await mesh.PlaceAsync(_team, "for-team");
        var serviceToken = LabMesh.Testing.TestCaller.Token(null, CallerRole.Service, "service:integration");
        var client = new RequisitionService.RequisitionServiceClient(mesh.WithHeaders(
            ("authorization", "Bearer " + serviceToken), (Caller.ForTeamHeader, _team), (Caller.ForActorHeader, "partner:lab-a")));

        var read = await client.GetRequisitionAsync(new GetRequisitionRequest { Id = requisition.Id }, deadline: Mesh.Deadline);

        Assert.Equal(_team, read.Requisition.TeamId);
        var noTeam = await Assert.ThrowsAsync<RpcException>(() =>
            new RequisitionService.RequisitionServiceClient(mesh.WithToken(serviceToken))
                .GetRequisitionAsync(new GetRequisitionRequest { Id = requisition.Id }, deadline: Mesh.Deadline).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, noTeam.StatusCode);
    }

    [Fact]
    public async Task TeamBoundServiceToken_ActsOnlyForItsOwnTeam()
    {
        var requisition = await mesh.PlaceAsync(_team, "team-bound");
        var integrationToken = LabMesh.Testing.TestCaller.Token(_team + "-lab", CallerRole.Service, "service:lab-gateway");
        RequisitionService.RequisitionServiceClient Client(string forTeam) => new(mesh.WithHeaders(
            ("authorization", "Bearer " + integrationToken), (Caller.ForTeamHeader, forTeam)));

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            Client(_team).GetRequisitionAsync(new GetRequisitionRequest { Id = requisition.Id }, deadline: Mesh.Deadline).ResponseAsync);
        var own = await Assert.ThrowsAsync<RpcException>(() =>
            Client(_team + "-lab").GetRequisitionAsync(new GetRequisitionRequest { Id = requisition.Id }, deadline: Mesh.Deadline).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        // Naming its own team is allowed, and there the other team's requisition does not exist.
        Assert.Equal(StatusCode.NotFound, own.StatusCode);
    }

    public static TheoryData<string> UnusableTeams => [" ", "zürich-lab", new string('a', 129)];

    [Theory]
    [MemberData(nameof(UnusableTeams))]
    public async Task ServiceToken_WithAnUnusableTeamClaim_IsUnauthenticated_NotTakenForTheMeshsOwn(string team)
    {
        var requisition = await mesh.PlaceAsync(_team, "unusable-team-" + team.Length);
        var token = LabMesh.Testing.TestCaller.Token(team, CallerRole.Service, "service:lab-gateway");
        var client = new RequisitionService.RequisitionServiceClient(mesh.WithHeaders(("authorization", "Bearer " + token), (Caller.ForTeamHeader, _team)));

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            client.GetRequisitionAsync(new GetRequisitionRequest { Id = requisition.Id }, deadline: Mesh.Deadline).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
    }

    public static TheoryData<string> TeamClaimsOfOtherJsonTypes => ["number", "array", "object", "boolean"];

    [Theory]
    [MemberData(nameof(TeamClaimsOfOtherJsonTypes))]
    public async Task Token_WhoseTeamClaimIsNotAString_IsUnauthenticated(string kind)
    {
        // Issue 17, finding 3: a team claim 5, ["teamb", "demo"], {...} or true was read as a team named "5", ...
        object team = kind switch
        {
            "number" => 5,
            "array" => new[] { _team, "demo" },
            "object" => new Dictionary<string, object> { ["name"] = _team },
            _ => true,
        };
        var now = DateTime.UtcNow;
        var key = LabMesh.Testing.TestCaller.Key;
        var token = new Microsoft.IdentityModel.JsonWebTokens.JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(
            new Microsoft.IdentityModel.Tokens.SecurityTokenDescriptor
            {
                Issuer = "labmesh",
                Audience = "labmesh",
                IssuedAt = now,
                NotBefore = now.AddSeconds(-5),
                Expires = now.AddMinutes(5),
                Claims = new Dictionary<string, object> { [TokenClaims.Subject] = "someone", [TokenClaims.Role] = "clinician", [TokenClaims.Team] = team },
                SigningCredentials = new Microsoft.IdentityModel.Tokens.SigningCredentials(key.SecurityKey, key.Algorithm),
            });
        var client = new RequisitionService.RequisitionServiceClient(mesh.WithHeaders(("authorization", "Bearer " + token)));

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            client.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Mesh.Deadline).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
    }

    [Theory]
    [InlineData(CallerRole.Partner, "x-labmesh-for-team")]
    [InlineData(CallerRole.Clinician, "x-labmesh-for-team")]
    [InlineData(CallerRole.Admin, "x-labmesh-for-team")]
    [InlineData(CallerRole.Clinician, "x-labmesh-for-actor")]
    [InlineData(CallerRole.Partner, "x-labmesh-for-actor")]
    public async Task OnlyAService_MayActForATeamOrActor(CallerRole role, string header)
    {
        var requisition = await mesh.PlaceAsync(_team, "forge-" + role + header);
        var token = LabMesh.Testing.TestCaller.Token(_team + "-attacker", role, "attacker", role == CallerRole.Partner ? "lab-a" : null);
        var invoker = mesh.WithHeaders(("authorization", "Bearer " + token), (header, header.EndsWith("team", StringComparison.Ordinal) ? _team : "partner:lab-a"));

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            new ServiceRequestService.ServiceRequestServiceClient(invoker)
                .GetServiceRequestAsync(new GetServiceRequestRequest { Id = requisition.ServiceRequests[0].Id }, deadline: Mesh.Deadline).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
    }

    [Fact]
    public async Task DeniedWrites_WithWellFormedRequests_StoreNothing()
    {
        var requisition = await mesh.PlaceAsync(_team, "denied-writes");

        // A partner cannot order.
        await AssertDenied(() => new RequisitionService.RequisitionServiceClient(mesh.As(_team, CallerRole.Partner))
            .CreateRequisitionAsync(Mesh.Order("partner-order"), deadline: Mesh.Deadline).ResponseAsync);
        // A clinician cannot submit results on behalf of a lab.
        await AssertDenied(() => new ResultsInterpretationService.ResultsInterpretationServiceClient(mesh.As(_team, CallerRole.Clinician))
            .SubmitResultsAsync(Report(requisition), deadline: Mesh.Deadline).ResponseAsync);
        // A clinician cannot manage webhook endpoints.
        await AssertDenied(() => new NotificationService.NotificationServiceClient(mesh.As(_team, CallerRole.Clinician))
            .CreateWebhookEndpointAsync(new CreateWebhookEndpointRequest { RequestId = "hook-1", Url = "https://example.com/hook" }, deadline: Mesh.Deadline).ResponseAsync);
        // An admin cannot acknowledge a critical result, nor a partner create service requests.
        await AssertDenied(() => new NotificationService.NotificationServiceClient(mesh.As(_team, CallerRole.Admin))
            .AcknowledgeCriticalResultAsync(new AcknowledgeCriticalResultRequest { Id = "c-1", ReadBack = "K 6.6" }, deadline: Mesh.Deadline).ResponseAsync);
        await AssertDenied(() => new ServiceRequestService.ServiceRequestServiceClient(mesh.As(_team, CallerRole.Partner))
            .CreateServiceRequestsAsync(new CreateServiceRequestsRequest { RequisitionId = "forged", ServiceRequests = { new NewServiceRequest { Code = "CBC", PartnerId = "lab-a" } } }, deadline: Mesh.Deadline).ResponseAsync);

        var requisitions = await new RequisitionService.RequisitionServiceClient(mesh.As(_team, CallerRole.Service))
            .ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Mesh.Deadline);
        Assert.Equal([requisition.Id], requisitions.Requisitions.Select(r => r.Id));
        var results = await new ResultsInterpretationService.ResultsInterpretationServiceClient(mesh.As(_team, CallerRole.Clinician))
            .GetResultsAsync(new GetResultsRequest { RequisitionId = requisition.Id }, deadline: Mesh.Deadline);
        Assert.Empty(results.Reports);
        var hooks = await new NotificationService.NotificationServiceClient(mesh.As(_team, CallerRole.Admin))
            .ListWebhookEndpointsAsync(new ListWebhookEndpointsRequest(), deadline: Mesh.Deadline);
        Assert.Empty(hooks.Endpoints);
        var serviceRequests = await new ServiceRequestService.ServiceRequestServiceClient(mesh.As(_team, CallerRole.Service))
            .ListServiceRequestsAsync(new ListServiceRequestsRequest(), deadline: Mesh.Deadline);
        Assert.Equal(requisition.ServiceRequests.Select(s => s.Id).Order(), serviceRequests.ServiceRequests.Select(s => s.Id).Order());
    }

    private static SubmitResultsRequest Report(LabMesh.Contracts.Requisition.V1.Requisition requisition) => new()
    {
        RequestId = "forged-report",
        RequisitionId = requisition.Id,
        ServiceRequestIds = { requisition.ServiceRequests[0].Id },
        Metadata = new ReportMetadata { Status = ReportStatus.Final, SpecimenNumber = "S-1" },
        Results = { new Marker { Name = "Potassium", Slug = "potassium", Unit = "mmol/L", NumericValue = 4.2, MinRangeValue = 3.5, MaxRangeValue = 5.1 } },
    };

    private static async Task AssertDenied(Func<Task> call)
    {
        var error = await Assert.ThrowsAsync<RpcException>(call);
        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
    }
}
