using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using LabMesh.Testing;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Core.Errors;

namespace LabMesh.Security.Tests.Fuzz;

/// <summary>What the fuzz test found, each pinned as a plain case: all were UNKNOWN or a reset stream before the fix.</summary>
public sealed class FuzzFindingsTests(AllInOneFixture host) : IClassFixture<AllInOneFixture>
{
    private const string Team = "team-findings";
    private readonly AllInOne _mesh = host.Mesh;

    public static TheoryData<long, int> InvalidDurations => new()
    {
        { 0, 2_147_483_647 },
        { 0, -1_000_000_000 },
        { 5, -1 },
        { long.MinValue, 0 },
    };

    [Theory]
    [MemberData(nameof(InvalidDurations))]
    public async Task Subscribe_HeartbeatIntervalNotADuration_IsInvalidArgument(long seconds, int nanos)
    {
        var notifications = _mesh.For(Team).Notifications;

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var stream = notifications.Subscribe(new SubscribeRequest { HeartbeatInterval = new Duration { Seconds = seconds, Nanos = nanos } },
                deadline: Deadline());
            await stream.ResponseStream.MoveNext(CancellationToken.None);
        });

        AssertField(error, "heartbeat_interval");
    }

    [Fact]
    public async Task RotateWebhookSecret_OverlapNotADuration_IsInvalidArgument()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => _mesh.For(Team).Notifications.RotateWebhookSecretAsync(
            new RotateWebhookSecretRequest { Id = "whep_x", Overlap = new Duration { Seconds = 1, Nanos = -5 } }, deadline: Deadline()).ResponseAsync);

        AssertField(error, "overlap");
    }

    [Fact]
    public async Task SimulateOrder_StepDelayNotADuration_IsInvalidArgument()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => _mesh.For(Team).Requisitions.SimulateOrderAsync(
            new SimulateOrderRequest { Id = "r-1", StepDelay = new Duration { Seconds = long.MinValue, Nanos = -1 } }, deadline: Deadline()).ResponseAsync);

        AssertField(error, "step_delay");
    }

    [Theory]
    [InlineData(50, -1)]
    [InlineData(long.MaxValue, 0)]
    [InlineData(-62_135_596_801, 0)]
    public async Task AcknowledgeCriticalResult_AcknowledgedAtNotATimestamp_IsInvalidArgument(long seconds, int nanos)
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => _mesh.For(Team).Notifications.AcknowledgeCriticalResultAsync(
            new AcknowledgeCriticalResultRequest
            {
                Id = Guid.NewGuid().ToString(),
                ReadBack = "read back",
                Channel = AcknowledgementChannel.Phone,
                AcknowledgedAt = new Timestamp { Seconds = seconds, Nanos = nanos },
            }, deadline: Deadline()).ResponseAsync);

        AssertField(error, "acknowledged_at");
    }

    [Theory]
    [InlineData("1-0")]
    [InlineData("999999999999-1")]
    [InlineData("9223372036854775807")]
    public async Task ListEventsAndSubscribe_CursorOfTheOtherBus_IsInvalidArgument(string cursor)
    {
        var notifications = _mesh.For(Team).Notifications;

        var listed = await Assert.ThrowsAsync<RpcException>(() =>
            notifications.ListEventsAsync(new ListEventsRequest { After = cursor }, deadline: Deadline()).ResponseAsync);
        var subscribed = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            using var stream = notifications.Subscribe(new SubscribeRequest { ResumeAfter = cursor }, deadline: Deadline());
            await stream.ResponseStream.MoveNext(CancellationToken.None);
        });

        AssertField(listed, "after");
        AssertField(subscribed, "resume_after");
    }

    [Fact]
    public async Task CreateWebhookEndpoint_HundredThousandBadEventTypes_IsInvalidArgumentWithCappedViolations()
    {
        var request = new CreateWebhookEndpointRequest { RequestId = "r", Url = "https://hooks.example.com/x" };
        request.EventTypes.AddRange(Enumerable.Range(0, 100_000).Select(i => i % 2 == 0 ? "order.placed" : "nope"));

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            _mesh.For(Team).Notifications.CreateWebhookEndpointAsync(request, deadline: Deadline()).ResponseAsync);

        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        var violations = error.GetDetail<BadRequest>()!.FieldViolations;
        Assert.Equal(DomainExceptionInterceptor.MaxFieldViolations + 1, violations.Count);
        Assert.Matches(@"^and \d{5} more violations, not listed", violations[^1].Description);
        Assert.Empty((await _mesh.For(Team).Notifications.ListWebhookEndpointsAsync(new ListWebhookEndpointsRequest(), deadline: Deadline())).Endpoints);
    }

    [Fact]
    public async Task RedeliverEvent_ThreeMebibyteDeliveryId_IsInvalidArgument()
    {
        var error = await Assert.ThrowsAsync<RpcException>(() => _mesh.For(Team).Notifications.RedeliverEventAsync(
            new RedeliverEventRequest { DeliveryId = new string('x', 3 * 1024 * 1024) }, deadline: Deadline()).ResponseAsync);

        AssertField(error, "delivery_id");
    }

    [Fact]
    public void DomainError_NamingAHugeResource_IsClippedToFitTheTrailers()
    {
        var error = DomainExceptionInterceptor.ToRpcException(new NotFoundException("delivery", new string('x', 3 * 1024 * 1024)));

        Assert.Equal(StatusCode.NotFound, error.StatusCode);
        Assert.InRange(error.Status.Detail.Length, 1, DomainExceptionInterceptor.MaxMessageLength + 3);
        Assert.InRange(error.Trailers.GetValueBytes(DomainExceptionInterceptor.StatusDetailsTrailer)!.Length, 1, 3 * DomainExceptionInterceptor.MaxMessageLength);
    }

    private static void AssertField(RpcException error, string field)
    {
        Assert.True(error.StatusCode == StatusCode.InvalidArgument, error.Status.ToString());
        Assert.Equal(field, Assert.Single(error.GetDetail<BadRequest>()!.FieldViolations).Field);
    }

    private static DateTime Deadline() => DateTime.UtcNow + AllInOne.Timeout;
}
