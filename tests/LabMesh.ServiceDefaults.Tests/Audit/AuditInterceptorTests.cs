using LabMesh.Messaging.Events;
using LabMesh.Security.Identity;
using Dapper;
using Grpc.Core;
using LabMesh.Contracts.Audit.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Security.Audit;
using LabMesh.Core.Errors;
using LabMesh.ServiceDefaults.Hosting;
using LabMesh.Messaging.Storage;
using LabMesh.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.ServiceDefaults.Tests.Audit;

/// <summary>
/// When the interceptor records, against a stand-in Requisition service whose handlers write its
/// store in the ways real handlers do (or fail), so each case of the recording rule is exercised.
/// </summary>
public sealed class AuditInterceptorTests : IAsyncLifetime
{
    private const string Team = "t1";
    private const string Method = "/labmesh.requisition.v1.RequisitionService/";
    private static DateTime Deadline => DateTime.UtcNow.AddSeconds(30);

    private ServiceHost _host = null!;
    private Grpc.Net.Client.GrpcChannel _channel = null!;

    public async Task InitializeAsync()
    {
        _host = await ServiceHost.StartAsync(await TestSettings.CreateAsync(Backend.Sqlite),
            builder =>
            {
                builder.AddServiceDefaults();
                builder.Services.AddLabMeshStore("requisition",
                [
                    AuditLog.Migration(1),
                    // The trigger counts the writes that complete a record after its call (a create's target id).
                    new Migration(2, "scratch", """
                        CREATE TABLE scratch (id TEXT PRIMARY KEY);
                        CREATE TRIGGER audit_target_set AFTER UPDATE OF target_id ON audit_log
                        BEGIN INSERT INTO scratch (id) VALUES ('target-set-' || NEW.id); END;
                        """),
                ]);
            },
            app =>
            {
                app.MapGrpcService<StandInRequisitions>();
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

    [Fact]
    public async Task ACreate_IsRecordedWithItsChange_AndTheIdFromTheResponse()
    {
        await Client().CreateRequisitionAsync(new CreateRequisitionRequest { RequestId = "r1", Lab = "LabCorp" }, deadline: Deadline);

        var record = Assert.Single(await RecordsAsync("CreateRequisition"));
        Assert.Equal("made-r1", record.TargetId);
        Assert.Equal(["lab"], record.ChangedFields);
        Assert.Equal("OK", record.Outcome);
        Assert.Equal(1, await ScratchRowsAsync("create-r1"));
        Assert.Equal(1, await ScratchRowsAsync("target-set-"));
    }

    [Fact]
    public async Task ACreateWhoseStoreNamesItsIdBeforeTheCommit_IsRecordedWithIt_AndNotWrittenAgain()
    {
        await Client().CreateRequisitionAsync(new CreateRequisitionRequest { RequestId = "named-r2", Lab = "named:made-named-r2" }, deadline: Deadline);

        var record = Assert.Single(await RecordsAsync("CreateRequisition"));
        Assert.Equal("made-named-r2", record.TargetId);
        Assert.Equal("OK", record.Outcome);
        Assert.Equal(0, await ScratchRowsAsync("target-set-"));
    }

    [Fact]
    public async Task ACreateAnsweringAnotherIdThanItNamed_IsRecordedWithTheAnsweredOne()
    {
        // As a repeat answered with a stored report after the new one's insert failed on a unique violation.
        await Client().CreateRequisitionAsync(new CreateRequisitionRequest { RequestId = "r3", Lab = "named:lost-r3" }, deadline: Deadline);

        Assert.Equal("made-r3", Assert.Single(await RecordsAsync("CreateRequisition")).TargetId);
        Assert.Equal(1, await ScratchRowsAsync("target-set-"));
    }

    [Fact]
    public async Task AHandlerFailingAfterItCommitted_KeepsItsRecord_WithTheFailureAsOutcome()
    {
        var error = await Assert.ThrowsAsync<RpcException>(
            () => Client().PlaceRequisitionAsync(new PlaceRequisitionRequest { Id = "p1" }, deadline: Deadline).ResponseAsync);

        Assert.Equal(StatusCode.FailedPrecondition, error.StatusCode);
        var record = Assert.Single(await RecordsAsync("PlaceRequisition"));
        Assert.Equal("p1", record.TargetId);
        Assert.Equal("FAILED_PRECONDITION", record.Outcome);
    }

    [Fact]
    public async Task AHandlerFailingBeforeItWrote_LeavesNoRecord()
    {
        var error = await Assert.ThrowsAsync<RpcException>(
            () => Client().CancelRequisitionAsync(new CancelRequisitionRequest { Id = "c1" }, deadline: Deadline).ResponseAsync);

        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.Empty(await RecordsAsync("CancelRequisition"));
    }

    [Fact]
    public async Task AMutationThatWritesNothing_IsRecordedAfterItReturns()
    {
        await Client().SimulateOrderAsync(new SimulateOrderRequest { Id = "s1" }, deadline: Deadline);

        Assert.Equal("s1", Assert.Single(await RecordsAsync("SimulateOrder")).TargetId);
    }

    [Fact]
    public async Task SeveralWrites_AndBackgroundWorkAfterTheCall_GiveOneRecord()
    {
        await Client().RecordOrderEventAsync(new RecordOrderEventRequest { Id = "e1", Status = "received.testkit.ordered" }, deadline: Deadline);

        await Eventually.HoldsAsync(async () => await ScratchRowsAsync("event-e1-") == 3, TimeSpan.FromSeconds(10), "the background write");
        var record = Assert.Single(await RecordsAsync("RecordOrderEvent"));
        Assert.Equal(["status"], record.ChangedFields);
    }

    [Fact]
    public async Task ARolledBackTransaction_TakesTheRecordWithIt_AndTheNextCommitCarriesIt()
    {
        await Client().RecordResultsStageAsync(new RecordResultsStageRequest { Id = "x1", Sequence = 1 }, deadline: Deadline);

        Assert.Equal(0, await ScratchRowsAsync("rolled-back-x1"));
        Assert.Equal("x1", Assert.Single(await RecordsAsync("RecordResultsStage")).TargetId);
    }

    [Fact]
    public async Task AMethodNotClassified_IsRefusedUnimplemented_BeforeItsHandlerRuns()
    {
        var error = await Assert.ThrowsAsync<RpcException>(
            () => Client().GetRequisitionAsync(new GetRequisitionRequest { Id = "g1" }, deadline: Deadline).ResponseAsync);

        Assert.Equal(StatusCode.Unimplemented, error.StatusCode);
        Assert.Equal(0, await ScratchRowsAsync("get-g1"));
    }

    [Fact]
    public async Task AStandaloneService_AnswersForItsOwnStore()
    {
        await using var host = await MeshHosts.StartServiceRequestsAsync(await TestSettings.CreateAsync(Backend.Sqlite));
        using var channel = host.CreateChannel();
        var service = new ServiceRequestService.ServiceRequestServiceClient(TestCaller.InvokerAs(channel, Team, CallerRole.Service, "service:requisition"));
        await service.CreateServiceRequestsAsync(
            new CreateServiceRequestsRequest { RequisitionId = "req-1", ServiceRequests = { new NewServiceRequest { Code = "BMP", PartnerId = "p" } } },
            deadline: Deadline);

        var audit = new AuditService.AuditServiceClient(TestCaller.InvokerAs(channel, Team, CallerRole.Admin, "boss"));
        var record = Assert.Single((await audit.GetAuditLogAsync(new GetAuditLogRequest(), deadline: Deadline)).Records);

        Assert.Equal(("/labmesh.servicerequest.v1.ServiceRequestService/CreateServiceRequests", "Requisition", "req-1", "service:requisition"),
            (record.Method, record.TargetType, record.TargetId, record.Actor));
        host.Logs.AssertNoErrors();
    }

    // Each call as the first role the access matrix lets call it: these tests are about recording, not about who may call.
    private RequisitionService.RequisitionServiceClient Client() => new(TestCaller.Invoker(_channel, Team, subject: "u1"));

    private async Task<List<AuditRecord>> RecordsAsync(string method)
    {
        var audit = new AuditService.AuditServiceClient(TestCaller.InvokerAs(_channel, Team, CallerRole.Admin, "boss"));
        var page = await audit.GetAuditLogAsync(new GetAuditLogRequest { Method = Method + method }, deadline: Deadline);
        return [.. page.Records];
    }

    private async Task<long> ScratchRowsAsync(string prefix)
    {
        var database = _host.Services.GetRequiredKeyedService<Database>("requisition");
        await using var connection = await database.OpenAsync(CancellationToken.None);
        return await connection.ExecuteScalarAsync<long>("SELECT COUNT(*) FROM scratch WHERE id LIKE @prefix", new { prefix = prefix + "%" });
    }

    /// <summary>
    /// Handlers that write the store (or not) and fail (or not) in each way the recording rule distinguishes,
    /// classified as the real service's are; and one that nobody classified.
    /// </summary>
    [AuditStore("requisition")]
    private sealed class StandInRequisitions(IServiceProvider services) : RequisitionService.RequisitionServiceBase
    {
        private Database Store => services.GetRequiredKeyedService<Database>("requisition");

        [Allow(Roles.TeamMembers)]
        public override async Task<GetRequisitionResponse> GetRequisition(GetRequisitionRequest request, ServerCallContext context)
        {
            await WriteAsync("get-" + request.Id);
            return new GetRequisitionResponse();
        }

        [Allow(Roles.Service | Roles.Clinician)]
        [Creates("Requisition", "requisition.id")]
        public override async Task<CreateRequisitionResponse> CreateRequisition(CreateRequisitionRequest request, ServerCallContext context)
        {
            // lab "named:ID": the store names ID as the id it creates, inside its transaction (as ResultsStore does).
            await Store.WriteAsync((connection, transaction) =>
            {
                if (request.Lab.StartsWith("named:", StringComparison.Ordinal))
                {
                    AuditLog.NameCreated("requisition", request.Lab["named:".Length..]);
                }

                return connection.ExecuteAsync("INSERT INTO scratch (id) VALUES (@id)", new { id = "create-" + request.RequestId }, transaction);
            }, CancellationToken.None);
            return new CreateRequisitionResponse { Requisition = new Contracts.Requisition.V1.Requisition { Id = "made-" + request.RequestId }, Created = true };
        }

        [Allow(Roles.Service | Roles.Clinician)]
        [Changes("Requisition", "id")]
        public override async Task<PlaceRequisitionResponse> PlaceRequisition(PlaceRequisitionRequest request, ServerCallContext context)
        {
            await WriteAsync("place-" + request.Id);
            throw new IllegalTransitionException("requisition", "received", "received", []);
        }

        [Allow(Roles.Service | Roles.Clinician)]
        [Changes("Requisition", "id")]
        public override Task<CancelRequisitionResponse> CancelRequisition(CancelRequisitionRequest request, ServerCallContext context) =>
            throw new NotFoundException("requisition", request.Id);

        [Allow(Roles.Service | Roles.Admin)]
        [Changes("Requisition", "id")]
        public override Task<SimulateOrderResponse> SimulateOrder(SimulateOrderRequest request, ServerCallContext context) =>
            Task.FromResult(new SimulateOrderResponse());

        [Allow(Roles.Service)]
        [Changes("Requisition", "id")]
        public override async Task<RecordOrderEventResponse> RecordOrderEvent(RecordOrderEventRequest request, ServerCallContext context)
        {
            await WriteAsync($"event-{request.Id}-1");
            await WriteAsync($"event-{request.Id}-2");
            var store = Store; // the call's service scope ends with it
            _ = Task.Run(async () =>
            {
                await Task.Delay(100);
                await WriteAsync(store, $"event-{request.Id}-3");
            });
            return new RecordOrderEventResponse();
        }

        [Allow(Roles.Service)]
        [Changes("Requisition", "id")]
        public override async Task<RecordResultsStageResponse> RecordResultsStage(RecordResultsStageRequest request, ServerCallContext context)
        {
            try
            {
                await Store.WriteAsync<int>(async (connection, transaction) =>
                {
                    await connection.ExecuteAsync("INSERT INTO scratch (id) VALUES (@id)", new { id = "rolled-back-" + request.Id }, transaction);
                    throw new InvalidOperationException("rolled back");
                }, context.CancellationToken);
            }
            catch (InvalidOperationException)
            {
            }

            await WriteAsync("kept-" + request.Id);
            return new RecordResultsStageResponse();
        }

        private Task<int> WriteAsync(string id) => WriteAsync(Store, id);

        private static Task<int> WriteAsync(Database store, string id) =>
            store.WriteAsync((connection, transaction) =>
                connection.ExecuteAsync("INSERT INTO scratch (id) VALUES (@id)", new { id }, transaction), CancellationToken.None);
    }
}
