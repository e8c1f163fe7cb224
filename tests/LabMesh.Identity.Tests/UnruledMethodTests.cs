using Grpc.Core;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Security.Audit;
using LabMesh.ServiceDefaults.Hosting;
using LabMesh.Security.Identity;
using LabMesh.Testing;
using Microsoft.AspNetCore.Builder;

namespace LabMesh.Identity.Tests;

/// <summary>
/// Fail closed: on a host registered as every service is (<c>AddServiceDefaults</c>), a method whose class
/// forgot its <see cref="AllowAttribute"/> is PERMISSION_DENIED to every role before its handler runs,
/// while its neighbour with a rule is served.
/// </summary>
public sealed class UnruledMethodTests : IAsyncLifetime
{
    private const string Team = "unruled";
    private ServiceHost _host = null!;
    private Grpc.Net.Client.GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        StandIn.Calls = 0;
        _host = await ServiceHost.StartAsync(await TestSettings.CreateAsync(Backend.Sqlite),
            builder => builder.AddServiceDefaults(),
            app =>
            {
                app.MapGrpcService<StandIn>();
                app.MapDefaultEndpoints();
            });
        _channel = _host.CreateChannel();
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        var logs = _host.Logs;
        await _host.DisposeAsync();
        logs.AssertNoErrors();
    }

    [Theory]
    [InlineData(CallerRole.Service)]
    [InlineData(CallerRole.Partner)]
    [InlineData(CallerRole.Clinician)]
    [InlineData(CallerRole.Admin)]
    public async Task AMethodWithoutARule_IsRefusedToEveryRole_BeforeItsHandlerRuns(CallerRole role)
    {
        var client = new RequisitionService.RequisitionServiceClient(TestCaller.InvokerAs(_channel, Team, role, partner: role == CallerRole.Partner ? "lab-a" : null));

        var error = await Assert.ThrowsAsync<RpcException>(
            () => client.GetRequisitionAsync(new GetRequisitionRequest { Id = "r1" }, deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        Assert.Contains(TokenIdentity.RoleName(role), error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(0, StandIn.Calls);
    }

    [Fact]
    public async Task ItsNeighbourWithARule_IsServed()
    {
        var client = new RequisitionService.RequisitionServiceClient(TestCaller.InvokerAs(_channel, Team, CallerRole.Admin));

        var status = await client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = "r1" }, deadline: DateTime.UtcNow.AddSeconds(30));

        Assert.Equal("r1", status.Status.Id);
        Assert.Equal(1, StandIn.Calls);
    }

    /// <summary>A Requisition service whose <c>GetRequisition</c> has an audit classification but no access rule.</summary>
    private sealed class StandIn : RequisitionService.RequisitionServiceBase
    {
        public static int Calls;

        [Reads]
        public override Task<GetRequisitionResponse> GetRequisition(GetRequisitionRequest request, ServerCallContext context)
        {
            Interlocked.Increment(ref Calls);
            return Task.FromResult(new GetRequisitionResponse());
        }

        [Allow(Roles.Admin)]
        [Reads]
        public override Task<GetRequisitionStatusResponse> GetRequisitionStatus(GetRequisitionStatusRequest request, ServerCallContext context)
        {
            Interlocked.Increment(ref Calls);
            return Task.FromResult(new GetRequisitionStatusResponse { Status = new RequisitionStatusView { Id = request.Id } });
        }
    }
}
