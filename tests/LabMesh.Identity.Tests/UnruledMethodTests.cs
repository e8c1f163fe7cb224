using System.Collections.Concurrent;
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
public sealed class UnruledMethodTests(UnruledMethodTests.StandInHost host) : IClassFixture<UnruledMethodTests.StandInHost>
{
    private const string Team = "unruled";
    private readonly Grpc.Net.Client.GrpcChannel _channel = host.Channel();

    /// <summary>A host with <see cref="StandIn"/> as its only gRPC service, shared by the class (each case asks for an id of its own).</summary>
    public sealed class StandInHost : HostFixture
    {
        protected override Task<ServiceHost> StartAsync(IReadOnlyDictionary<string, string?> settings) =>
            ServiceHost.StartAsync(settings,
                builder => builder.AddServiceDefaults(),
                app =>
                {
                    app.MapGrpcService<StandIn>();
                    app.MapDefaultEndpoints();
                });
    }

    [Theory]
    [InlineData(CallerRole.Service)]
    [InlineData(CallerRole.Partner)]
    [InlineData(CallerRole.Clinician)]
    [InlineData(CallerRole.Admin)]
    public async Task AMethodWithoutARule_IsRefusedToEveryRole_BeforeItsHandlerRuns(CallerRole role)
    {
        var client = new RequisitionService.RequisitionServiceClient(TestCaller.InvokerAs(_channel, Team, role, partner: role == CallerRole.Partner ? "lab-a" : null));
        var id = "r-" + Guid.NewGuid().ToString("N");

        var error = await Assert.ThrowsAsync<RpcException>(
            () => client.GetRequisitionAsync(new GetRequisitionRequest { Id = id }, deadline: DateTime.UtcNow.AddSeconds(30)).ResponseAsync);

        Assert.Equal(StatusCode.PermissionDenied, error.StatusCode);
        Assert.Contains(TokenIdentity.RoleName(role), error.Status.Detail, StringComparison.Ordinal);
        Assert.Equal(0, StandIn.CallsFor(id));
    }

    [Fact]
    public async Task ItsNeighbourWithARule_IsServed()
    {
        var client = new RequisitionService.RequisitionServiceClient(TestCaller.InvokerAs(_channel, Team, CallerRole.Admin));

        var id = "r-" + Guid.NewGuid().ToString("N");

        var status = await client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = id }, deadline: DateTime.UtcNow.AddSeconds(30));

        Assert.Equal(id, status.Status.Id);
        Assert.Equal(1, StandIn.CallsFor(id));
    }

    /// <summary>A Requisition service whose <c>GetRequisition</c> has an audit classification but no access rule.</summary>
    private sealed class StandIn : RequisitionService.RequisitionServiceBase
    {
        private static readonly ConcurrentDictionary<string, int> Calls = new(StringComparer.Ordinal);

        /// <summary>How many times a handler ran for requisition <paramref name="id"/>.</summary>
        public static int CallsFor(string id) => Calls.GetValueOrDefault(id);

        [Reads]
        public override Task<GetRequisitionResponse> GetRequisition(GetRequisitionRequest request, ServerCallContext context)
        {
            Calls.AddOrUpdate(request.Id, 1, (_, calls) => calls + 1);
            return Task.FromResult(new GetRequisitionResponse());
        }

        [Allow(Roles.Admin)]
        [Reads]
        public override Task<GetRequisitionStatusResponse> GetRequisitionStatus(GetRequisitionStatusRequest request, ServerCallContext context)
        {
            Calls.AddOrUpdate(request.Id, 1, (_, calls) => calls + 1);
            return Task.FromResult(new GetRequisitionStatusResponse { Status = new RequisitionStatusView { Id = request.Id } });
        }
    }
}
