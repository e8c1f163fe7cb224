using System.Globalization;
using Google.Protobuf;
using Google.Rpc;
using Grpc.Core;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Security.Tests.Fuzz;
using LabMesh.Core.Errors;
using LabMesh.Security.Limits;
using LabMesh.Testing;

namespace LabMesh.Security.Tests.Limits;

/// <summary>Point 4 of the security issue, through real gRPC calls: rate, request size, page size and open streams.</summary>
public sealed class LimitsTests
{
    private const string Team = "team-limits";

    [Fact]
    public async Task RateLimit_BurstSpent_IsResourceExhaustedWithRetryHint_PerCaller_AndRefills()
    {
        await using var mesh = await AllInOne.StartAsync(new Dictionary<string, string?>
        {
            ["LabMesh:Limits:PermitsPerSecond"] = "2",
            ["LabMesh:Limits:Burst"] = "5",
        });
        var ann = mesh.For(Team, "ann").Results;
        for (var i = 0; i < 5; i++)
        {
            await ann.GetCriticalLimitsAsync(new GetCriticalLimitsRequest(), deadline: Deadline());
        }

        var error = await Assert.ThrowsAsync<RpcException>(() => ann.GetCriticalLimitsAsync(new GetCriticalLimitsRequest(), deadline: Deadline()).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        var delay = error.GetDetail<RetryInfo>()!.RetryDelay.ToTimeSpan();
        Assert.InRange(delay, TimeSpan.FromMilliseconds(1), TimeSpan.FromMilliseconds(500));
        var info = error.GetDetail<ErrorInfo>()!;
        Assert.Equal("RATE_LIMITED", info.Reason);
        Assert.Equal(DomainExceptionInterceptor.ErrorDomain, info.Domain);
        Assert.Equal("2", info.Metadata["permits_per_second"]);
        var pushback = int.Parse(error.Trailers.GetValue(RateLimitInterceptor.PushbackTrailer)!, CultureInfo.InvariantCulture);
        Assert.Equal((int)Math.Ceiling(delay.TotalMilliseconds), pushback);
        Assert.Equal("1", error.Trailers.GetValue(RateLimitInterceptor.RetryAfterTrailer));

        // Another person of the same team has a bucket of their own.
        await mesh.For(Team, "bob").Results.GetCriticalLimitsAsync(new GetCriticalLimitsRequest(), deadline: Deadline());

        // After the hinted delay the caller may call again.
        await Task.Delay(delay + TimeSpan.FromMilliseconds(20));
        await ann.GetCriticalLimitsAsync(new GetCriticalLimitsRequest(), deadline: Deadline());
    }

    [Fact]
    public async Task RateLimit_CountsTheCallerOnce_NotThePeerCallsItsCallCauses()
    {
        // Each create makes peer calls (Requisition -> ServiceRequest) as the team's requisition service.
        await using var mesh = await AllInOne.StartAsync(new Dictionary<string, string?>
        {
            ["LabMesh:Limits:PermitsPerSecond"] = "0.01",
            ["LabMesh:Limits:Burst"] = "3",
        });
        var requisitions = mesh.For(Team, "dr-ann").Requisitions;
        for (var i = 0; i < 3; i++)
        {
            var created = await requisitions.CreateRequisitionAsync(Order(), deadline: Deadline());
            Assert.Single(created.Requisition.ServiceRequests);
        }

        var error = await Assert.ThrowsAsync<RpcException>(() => requisitions.CreateRequisitionAsync(Order(), deadline: Deadline()).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Equal("RATE_LIMITED", error.GetDetail<ErrorInfo>()!.Reason);

        // A service's own calls, not relayed for anyone, are a caller like any other.
        var service = new RequisitionService.RequisitionServiceClient(
            TestCaller.InvokerAs(mesh.Host.CreateChannel(), Team, Security.Identity.CallerRole.Service, "service:integration"));
        for (var i = 0; i < 3; i++)
        {
            await service.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline());
        }

        error = await Assert.ThrowsAsync<RpcException>(() => service.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline()).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);

        // An integration's team-bound service token does not escape its limit by naming an actor it acts for.
        var integration = new RequisitionService.RequisitionServiceClient(TestCaller.InvokerWithHeaders(mesh.Host.CreateChannel(), new Metadata
        {
            { "authorization", "Bearer " + TestCaller.Token(Team, Security.Identity.CallerRole.Service, "service:lab-gateway") },
            { Security.Identity.Caller.ForActorHeader, "partner:lab-a" },
        }));
        for (var i = 0; i < 3; i++)
        {
            await integration.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline());
        }

        error = await Assert.ThrowsAsync<RpcException>(() => integration.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline()).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
    }

    private static CreateRequisitionRequest Order() => new()
    {
        RequestId = Guid.NewGuid().ToString(),
        Patient = new LabMesh.Contracts.Common.V1.Patient { Id = "p-limits" },
        Lab = "LabCorp",
        Modality = LabMesh.Contracts.Common.V1.TestModality.Testkit,
        Place = true,
        Tests = { new OrderedTest { Code = "BMP", PartnerId = "lab-a" } },
    };

    [Fact]
    public async Task RateLimit_AppliesToEveryService_AndToStreams()
    {
        await using var mesh = await AllInOne.StartAsync(new Dictionary<string, string?>
        {
            ["LabMesh:Limits:PermitsPerSecond"] = "0.1",
            ["LabMesh:Limits:Burst"] = "1",
        });
        var calls = new Func<AllInOne.Clients, Task>[]
        {
            c => c.Requisitions.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline()).ResponseAsync,
            c => c.ServiceRequests.ListServiceRequestsAsync(new LabMesh.Contracts.ServiceRequest.V1.ListServiceRequestsRequest(), deadline: Deadline()).ResponseAsync,
            c => c.Results.GetCriticalLimitsAsync(new GetCriticalLimitsRequest(), deadline: Deadline()).ResponseAsync,
            c => c.Notifications.ListEventsAsync(new ListEventsRequest(), deadline: Deadline()).ResponseAsync,
            async c =>
            {
                using var stream = c.Notifications.Subscribe(new SubscribeRequest(), deadline: Deadline());
                await stream.ResponseStream.MoveNext(CancellationToken.None);
            },
        };

        for (var i = 0; i < calls.Length; i++)
        {
            var clients = mesh.For(Team, "caller-" + i.ToString(CultureInfo.InvariantCulture));
            await calls[i](clients);
            var error = await Assert.ThrowsAsync<RpcException>(() => calls[i](clients));
            Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
            Assert.Equal("RATE_LIMITED", error.GetDetail<ErrorInfo>()!.Reason);
        }
    }

    [Fact]
    public async Task RequestSize_AboveTheLimit_IsResourceExhausted_BelowIsValidated_AndTheHostKeepsServing()
    {
        await using var mesh = await AllInOne.StartAsync(new Dictionary<string, string?> { ["LabMesh:Limits:MaxRequestBytes"] = "65536" });
        var requisitions = mesh.For(Team).Requisitions;
        var order = AllInOne.Order(new Patient { Id = "p-1" }, "BMP");

        order.Lab = new string('l', 70_000);
        var tooLarge = await Assert.ThrowsAsync<RpcException>(() => requisitions.CreateRequisitionAsync(order, deadline: Deadline()).ResponseAsync);
        order.Lab = new string('l', 60_000);
        var validated = await Assert.ThrowsAsync<RpcException>(() => requisitions.CreateRequisitionAsync(order, deadline: Deadline()).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, tooLarge.StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, validated.StatusCode);
        Assert.Equal("lab", Assert.Single(validated.GetDetail<BadRequest>()!.FieldViolations).Field);
        order.Lab = "LabCorp";
        Assert.True((await requisitions.CreateRequisitionAsync(order, deadline: Deadline())).Created);
        Assert.Single((await requisitions.ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline())).Requisitions);
    }

    [Fact]
    public async Task RequestSize_DefaultIsFourMebibytes()
    {
        await using var mesh = await AllInOne.StartAsync();
        var results = mesh.For(Team).Results;
        var request = new InterpretMarkersRequest();
        request.Results.Add(new Marker { Name = "x", Slug = "x", NumericValue = 1, Notes = new string('n', 4 * 1024 * 1024) });

        var error = await Assert.ThrowsAsync<RpcException>(() => results.InterpretMarkersAsync(request, deadline: Deadline()).ResponseAsync);

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        request.Results[0].Notes = new string('n', 3 * 1024 * 1024);
        var bounded = await Assert.ThrowsAsync<RpcException>(() => results.InterpretMarkersAsync(request, deadline: Deadline()).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, bounded.StatusCode);
    }

    [Fact]
    public async Task PageSize_EveryListRpc_RefusesAPageAboveItsCap()
    {
        await using var mesh = await AllInOne.StartAsync();
        var invoker = mesh.Invoker(Team);
        var lists = RpcCatalog.All.Where(r => r.Input.FindFieldByName("page_size") is not null).ToList();
        Assert.True(lists.Count >= 6, "fewer List RPCs than expected: " + string.Join(", ", lists));

        foreach (var rpc in lists)
        {
            foreach (var size in new[] { -1, 1_001, int.MaxValue })
            {
                var request = (IMessage)Activator.CreateInstance(rpc.Input.ClrType)!;
                rpc.Input.FindFieldByName("page_size").Accessor.SetValue(request, size);
                var error = await Assert.ThrowsAsync<RpcException>(async () =>
                {
                    using var call = invoker.AsyncUnaryCall(rpc.RawMethod, null, new CallOptions(deadline: Deadline()), request.ToByteArray());
                    await call.ResponseAsync;
                });
                Assert.True(error.StatusCode == StatusCode.InvalidArgument, $"{rpc} page_size {size}: {error.Status}");
                Assert.Contains(error.GetDetail<BadRequest>()!.FieldViolations, v => v.Field == "page_size");
            }
        }
    }

    [Fact]
    public async Task PageSize_ListRequisitions_AcceptsTheCapAndPagesBelowIt()
    {
        await using var mesh = await AllInOne.StartAsync();
        var requisitions = mesh.For(Team).Requisitions;
        for (var i = 0; i < 3; i++)
        {
            await requisitions.CreateRequisitionAsync(AllInOne.Order(new Patient { Id = "p-" + i.ToString(CultureInfo.InvariantCulture) }, "BMP"), deadline: Deadline());
        }

        var all = await requisitions.ListRequisitionsAsync(new ListRequisitionsRequest { PageSize = 500 }, deadline: Deadline());
        var first = await requisitions.ListRequisitionsAsync(new ListRequisitionsRequest { PageSize = 2 }, deadline: Deadline());
        var error = await Assert.ThrowsAsync<RpcException>(() =>
            requisitions.ListRequisitionsAsync(new ListRequisitionsRequest { PageSize = 501 }, deadline: Deadline()).ResponseAsync);

        Assert.Equal(3, all.Requisitions.Count);
        Assert.Equal(2, first.Requisitions.Count);
        Assert.NotEmpty(first.NextPageToken);
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
    }

    [Fact]
    public async Task Subscribe_MoreStreamsThanTheBound_IsResourceExhausted_UntilOneEnds()
    {
        await using var mesh = await AllInOne.StartAsync(new Dictionary<string, string?> { ["LabMesh:Limits:MaxStreamsPerCaller"] = "2" });
        var ann = mesh.For(Team, "ann").Notifications;
        using var first = await OpenAsync(ann);
        using var second = await OpenAsync(ann);

        var error = await Assert.ThrowsAsync<RpcException>(async () => (await OpenAsync(ann)).Dispose());

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Equal("TOO_MANY_STREAMS", error.GetDetail<ErrorInfo>()!.Reason);
        Assert.NotNull(error.GetDetail<RetryInfo>());
        Assert.NotNull(error.Trailers.GetValue(RateLimitInterceptor.PushbackTrailer));

        // Per caller: another subject of the team still subscribes.
        using (await OpenAsync(mesh.For(Team, "bob").Notifications))
        {
        }

        // Ending a stream frees its slot (the server sees the cancellation shortly after).
        first.Dispose();
        var third = await Eventually.MatchAsync(async () =>
        {
            try
            {
                return await OpenAsync(ann);
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.ResourceExhausted)
            {
                return null;
            }
        }, stream => stream is not null, TimeSpan.FromSeconds(10), "a slot to free");
        third!.Dispose();
    }

    private static async Task<AsyncServerStreamingCall<SubscribeResponse>> OpenAsync(NotificationService.NotificationServiceClient client)
    {
        var call = client.Subscribe(new SubscribeRequest(), deadline: Deadline());
        try
        {
            // The first heartbeat proves the stream is established (and holds its slot).
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(AllInOne.Timeout));
            return call;
        }
        catch
        {
            call.Dispose();
            throw;
        }
    }

    private static DateTime Deadline() => DateTime.UtcNow + AllInOne.Timeout;
}
