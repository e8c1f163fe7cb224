using System.Buffers.Text;
using System.Text.Json;
using Grpc.Core;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Testing;

namespace LabMesh.Cli.Tests;

/// <summary>
/// <c>labmesh token</c>: a development token for each role, used as a person debugging with grpcurl would use
/// it (the README's lines): a partner moves its service request, a service records an order event.
/// </summary>
[Collection(MeshCollection.Name)]
public sealed class TokenCommandTests(MeshHost host) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly string _team = "tok-" + Guid.NewGuid().ToString("N")[..8];
    private readonly OutputMark _logFrom = host.Mark();

    public void Dispose() => host.AssertNoErrors(_logFrom);

    [Fact]
    public async Task PartnerToken_MovesItsLabsServiceRequest_AndNotAnotherLabs()
    {
        var requisition = await PlaceAsync(TestModality.WalkInTest, "lab-a", "lab-b");
        var mine = await AssignedAsync(requisition.Id, "lab-a");
        var theirs = await AssignedAsync(requisition.Id, "lab-b");

        var token = await TokenAsync("--role", "partner", "--partner", "lab-a", "--team", _team);
        using var channel = host.CreateChannel();
        var client = new ServiceRequestService.ServiceRequestServiceClient(WithToken(channel, token));

        var moved = await client.UpdateTaskStatusAsync(
            new UpdateTaskStatusRequest { Id = mine.Id, TaskBusinessStatus = TaskBusinessStatus.OrderConfirmed }, deadline: Deadline);
        var refused = await Assert.ThrowsAsync<RpcException>(() => client.UpdateTaskStatusAsync(
            new UpdateTaskStatusRequest { Id = theirs.Id, TaskBusinessStatus = TaskBusinessStatus.OrderConfirmed }, deadline: Deadline).ResponseAsync);

        Assert.True(moved.Changed);
        Assert.Equal(TaskBusinessStatus.OrderConfirmed, moved.ServiceRequest.TaskBusinessStatus);
        Assert.Equal(StatusCode.NotFound, refused.StatusCode);
    }

    [Fact]
    public async Task ServiceToken_RecordsAnOrderEvent_WhichAClinicianTokenMayNot()
    {
        var requisition = await PlaceAsync(TestModality.Testkit, "lab-a", "lab-a");
        var service = await TokenAsync("--role", "service", "--team", _team);
        var clinician = await TokenAsync("--role", "clinician", "--team", _team);
        using var channel = host.CreateChannel();
        var request = new RecordOrderEventRequest { Id = requisition.Id, Status = "collecting_sample.testkit.transit_customer" };

        var denied = await Assert.ThrowsAsync<RpcException>(() =>
            new RequisitionService.RequisitionServiceClient(WithToken(channel, clinician)).RecordOrderEventAsync(request, deadline: Deadline).ResponseAsync);
        var recorded = await new RequisitionService.RequisitionServiceClient(WithToken(channel, service)).RecordOrderEventAsync(request, deadline: Deadline);

        Assert.Equal(StatusCode.PermissionDenied, denied.StatusCode);
        Assert.Equal("collecting_sample.testkit.transit_customer", recorded.Requisition.SubStatus);
    }

    [Theory]
    [InlineData("clinician", null, 3600)]
    [InlineData("admin", "8h", 8 * 3600)]
    [InlineData("partner", "90m", 90 * 60)]
    public async Task Json_SaysWhatTheTokenSays_AndTheTokenSaysIt(string role, string? ttl, long seconds)
    {
        string[] args = ["token", "--role", role, "--team", _team, "--json", .. ttl is null ? Array.Empty<string>() : ["--ttl", ttl]];

        var run = await LabMeshCli.RunAsync(args);

        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal("", run.Stderr);
        var view = run.Json();
        Assert.Equal(role, view.GetProperty("role").GetString());
        Assert.Equal(_team, view.GetProperty("team").GetString());
        var claims = Payload(view.GetProperty("token").GetString()!);
        Assert.Equal(role, claims.GetProperty("role").GetString());
        Assert.Equal(_team, claims.GetProperty("team").GetString());
        Assert.Equal("dev-" + role, claims.GetProperty("sub").GetString());
        Assert.Equal(seconds, claims.GetProperty("exp").GetInt64() - claims.GetProperty("iat").GetInt64());
        if (role == "partner")
        {
            Assert.Equal("lab-demo", claims.GetProperty("partner_id").GetString());
            Assert.Equal("lab-demo", view.GetProperty("partner_id").GetString());
        }
        else
        {
            Assert.False(claims.TryGetProperty("partner_id", out _));
        }
    }

    [Fact]
    public async Task WithoutADevelopmentKey_ExitsOne_PrintingNoToken_AndSaysWhereTokensComeFrom()
    {
        var nowhere = Directory.CreateTempSubdirectory("labmesh-no-key-").FullName;
        try
        {
            var run = await LabMeshCli.RunInAsync(nowhere, "token", "--role", "clinician");

            Assert.True(run.ExitCode == 1, run.ToString());
            Assert.Equal("", run.Stdout);
            Assert.Contains("no development key", run.Stderr, StringComparison.Ordinal);
            Assert.Contains("LABMESH_DEV_KEY", run.Stderr, StringComparison.Ordinal);
            Assert.Contains("identity provider", run.Stderr, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(nowhere, recursive: true);
        }
    }

    private static DateTime Deadline => DateTime.UtcNow + Timeout;

    /// <summary>Runs labmesh token as a script would (TOKEN=$(labmesh token ...)): the token alone on stdout.</summary>
    private static async Task<string> TokenAsync(params string[] args)
    {
        var run = await LabMeshCli.RunAsync(["token", .. args]);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Contains("signed with the development key", run.Stderr, StringComparison.Ordinal);
        var token = run.Stdout.TrimEnd('\n');
        Assert.DoesNotContain('\n', token);
        Assert.Equal(3, token.Split('.').Length);
        return token;
    }

    private static JsonElement Payload(string token) => JsonDocument.Parse(Base64Url.DecodeFromChars(token.Split('.')[1])).RootElement;

    private static CallInvoker WithToken(Grpc.Net.Client.GrpcChannel channel, string token) =>
        TestCaller.InvokerWithHeaders(channel, new Metadata { { "authorization", "Bearer " + token } });

    private async Task<LabMesh.Contracts.Requisition.V1.Requisition> PlaceAsync(TestModality modality, string first, string second)
    {
        using var channel = host.CreateChannel();
        var response = await new RequisitionService.RequisitionServiceClient(TestCaller.Invoker(channel, _team)).CreateRequisitionAsync(new CreateRequisitionRequest
        {
            RequestId = Guid.NewGuid().ToString("N"),
            Patient = new Patient { Id = "token-test-patient" },
            Modality = modality,
            Tests = { new OrderedTest { Code = "BMP", PartnerId = first }, new OrderedTest { Code = "CBC", PartnerId = second } },
            Place = true,
        }, deadline: Deadline);
        return response.Requisition;
    }

    private async Task<LabMesh.Contracts.ServiceRequest.V1.ServiceRequest> AssignedAsync(string requisitionId, string partner)
    {
        using var channel = host.CreateChannel();
        var client = new ServiceRequestService.ServiceRequestServiceClient(TestCaller.Invoker(channel, _team));
        var listed = await Eventually.MatchAsync(
            async () => await client.ListServiceRequestsAsync(new ListServiceRequestsRequest { RequisitionId = requisitionId, PartnerId = partner }, deadline: Deadline),
            r => r.ServiceRequests.Count == 1, Timeout, $"{partner}'s service request");
        return listed.ServiceRequests[0];
    }
}
