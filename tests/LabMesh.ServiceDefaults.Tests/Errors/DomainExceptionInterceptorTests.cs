using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Rpc;
using Grpc.Core;
using LabMesh.Testing;
using LabMesh.Core.Errors;

namespace LabMesh.ServiceDefaults.Tests.Errors;

public class DomainExceptionInterceptorTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public enum CallKind
    {
        Unary,
        ClientStreaming,
        ServerStreaming,
        DuplexStreaming,
    }

    public static TheoryData<CallKind> EveryCallKind() =>
        [CallKind.Unary, CallKind.ClientStreaming, CallKind.ServerStreaming, CallKind.DuplexStreaming];

    [Theory]
    [MemberData(nameof(EveryCallKind))]
    public async Task Intercept_NotFound_IsNotFoundWithResourceInfo(CallKind kind)
    {
        var ex = await Intercept(kind, new NotFoundException("requisition", "req-1"));

        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
        Assert.Equal("requisition 'req-1' was not found.", ex.Status.Detail);
        var status = AssertRpcStatus(ex, Code.NotFound);
        var info = Assert.IsType<ResourceInfo>(Assert.Single(Unpacked(status)));
        Assert.Equal("requisition", info.ResourceType);
        Assert.Equal("req-1", info.ResourceName);
    }

    [Theory]
    [InlineData("Zebedee Quixotically 1931-02-03")]
    [InlineData("req\u200b1")]
    [InlineData("line\nbreak")]
    public async Task NotFound_OfAnIdThatIsNotWellFormed_DescribesIt_InsteadOfRepeatingIt(string id)
    {
        // Issue 17, finding 4: the caller's text (a patient's name, zero-width characters, newlines) came back verbatim.
        var ex = await Intercept(CallKind.Unary, new NotFoundException("requisition", id));

        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
        Assert.Equal($"requisition was not found: the id given ({id.Length} characters) is not a well-formed id.", ex.Status.Detail);
        var info = Assert.IsType<ResourceInfo>(Assert.Single(Unpacked(AssertRpcStatus(ex, Code.NotFound))));
        Assert.Equal("", info.ResourceName);
        Assert.DoesNotContain(id, info.Description, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(EveryCallKind))]
    public async Task Intercept_InvalidArgument_IsInvalidArgumentWithBadRequestFieldViolations(CallKind kind)
    {
        var ex = await Intercept(kind, new InvalidArgumentException(
        [
            new FieldViolation("tests[1].code", "must not be empty."),
            new FieldViolation("patient.birth_date", "must be YYYY-MM-DD."),
        ]));

        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        Assert.Equal("2 invalid fields, first tests[1].code: must not be empty.", ex.Status.Detail);
        var status = AssertRpcStatus(ex, Code.InvalidArgument);
        var badRequest = Assert.IsType<BadRequest>(Assert.Single(Unpacked(status)));
        Assert.Collection(
            badRequest.FieldViolations,
            v =>
            {
                Assert.Equal("tests[1].code", v.Field);
                Assert.Equal("must not be empty.", v.Description);
            },
            v =>
            {
                Assert.Equal("patient.birth_date", v.Field);
                Assert.Equal("must be YYYY-MM-DD.", v.Description);
            });
    }

    [Theory]
    [MemberData(nameof(EveryCallKind))]
    public async Task UpdateTaskStatus_BackwardsMove_IsFailedPreconditionWithOneViolationAndErrorInfo(CallKind kind)
    {
        var ex = await Intercept(kind, new IllegalTransitionException(
            "task_business_status", "PARTIAL_RESULTS_READY", "ORDER_CONFIRMED", ["FULL_RESULTS_READY", "RESULTS_ISSUE"]));

        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        Assert.Equal(
            "task_business_status cannot move from PARTIAL_RESULTS_READY to ORDER_CONFIRMED; allowed: FULL_RESULTS_READY, RESULTS_ISSUE.",
            ex.Status.Detail);
        var status = AssertRpcStatus(ex, Code.FailedPrecondition);
        var details = Unpacked(status);
        Assert.Equal(2, details.Count);

        var failure = Assert.IsType<PreconditionFailure>(details[0]);
        var violation = Assert.Single(failure.Violations);
        Assert.Equal("STATE_TRANSITION", violation.Type);
        Assert.Equal("task_business_status", violation.Subject);
        Assert.Contains("FULL_RESULTS_READY, RESULTS_ISSUE", violation.Description, StringComparison.Ordinal);

        var info = Assert.IsType<ErrorInfo>(details[1]);
        Assert.Equal("ILLEGAL_TRANSITION", info.Reason);
        Assert.Equal("labmesh.dev", info.Domain);
        Assert.Equal("PARTIAL_RESULTS_READY", info.Metadata["from"]);
        Assert.Equal("ORDER_CONFIRMED", info.Metadata["to"]);
        Assert.Equal("FULL_RESULTS_READY,RESULTS_ISSUE", info.Metadata["allowed"]);
        Assert.Equal(3, info.Metadata.Count);
    }

    [Fact]
    public async Task Intercept_IllegalTransitionFromTerminal_SaysTerminalWithEmptyAllowed()
    {
        var ex = await Intercept(CallKind.Unary, new IllegalTransitionException("status", "completed", "revoked", []));

        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        var violation = Assert.Single(ex.GetDetail<PreconditionFailure>()!.Violations);
        Assert.Equal("STATE_TRANSITION", violation.Type);
        Assert.Equal("status", violation.Subject);
        Assert.Contains("terminal", violation.Description, StringComparison.Ordinal);
        Assert.Equal("", ex.GetDetail<ErrorInfo>()!.Metadata["allowed"]);
    }

    [Theory]
    [MemberData(nameof(EveryCallKind))]
    public async Task UpdateTaskStatus_StaleEtag_IsAbortedWithErrorInfo(CallKind kind)
    {
        var ex = await Intercept(kind, new StaleEtagException("service_request", "sr-9"));

        Assert.Equal(StatusCode.Aborted, ex.StatusCode);
        Assert.Equal("service_request 'sr-9' changed since it was read (stale etag); read it again.", ex.Status.Detail);
        var status = AssertRpcStatus(ex, Code.Aborted);
        var info = Assert.IsType<ErrorInfo>(Assert.Single(Unpacked(status)));
        Assert.Equal("STALE_ETAG", info.Reason);
        Assert.Equal("labmesh.dev", info.Domain);
        Assert.Equal("service_request", info.Metadata["resource_type"]);
        Assert.Equal("sr-9", info.Metadata["resource_name"]);
    }

    [Theory]
    [MemberData(nameof(EveryCallKind))]
    public async Task Intercept_AlreadyExists_IsAlreadyExistsWithResourceInfo(CallKind kind)
    {
        var ex = await Intercept(kind, new AlreadyExistsException("requisition", "req-7", "request_id 'abc' was used for another order."));

        Assert.Equal(StatusCode.AlreadyExists, ex.StatusCode);
        Assert.Equal("request_id 'abc' was used for another order.", ex.Status.Detail);
        var status = AssertRpcStatus(ex, Code.AlreadyExists);
        var info = Assert.IsType<ResourceInfo>(Assert.Single(Unpacked(status)));
        Assert.Equal("requisition", info.ResourceType);
        Assert.Equal("req-7", info.ResourceName);
    }

    [Fact]
    public async Task Intercept_UnmappedDomainException_IsFailedPreconditionNotUnknown()
    {
        var ex = await Intercept(CallKind.Unary, new SomeOtherDomainException());

        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        Assert.Equal("something else", ex.Status.Detail);
        Assert.Empty(AssertRpcStatus(ex, Code.FailedPrecondition).Details);
    }

    [Theory]
    [MemberData(nameof(EveryCallKind))]
    public async Task Intercept_OtherException_PassesThroughUntouched(CallKind kind)
    {
        var original = new InvalidOperationException("a LabMesh bug");
        var thrown = await Assert.ThrowsAsync<InvalidOperationException>(() => Run(kind, original, throwSynchronously: false)).WaitAsync(Timeout);
        Assert.Same(original, thrown);

        var rpc = new RpcException(new Grpc.Core.Status(StatusCode.PermissionDenied, "no"));
        Assert.Same(rpc, await Assert.ThrowsAsync<RpcException>(() => Run(kind, rpc, throwSynchronously: false)).WaitAsync(Timeout));
    }

    [Theory]
    [MemberData(nameof(EveryCallKind))]
    public async Task PeersUnavailable_IsRelayedAsUnavailable_ThatCallersMustNotRetry(CallKind kind)
    {
        var peer = new RpcException(new Grpc.Core.Status(StatusCode.Unavailable, "Error connecting to subchannel."));

        var relayed = await Assert.ThrowsAsync<RpcException>(() => Run(kind, peer, throwSynchronously: false)).WaitAsync(Timeout);

        Assert.Equal(StatusCode.Unavailable, relayed.StatusCode);
        Assert.Equal("Error connecting to subchannel.", relayed.Status.Detail);
        Assert.Equal("-1", relayed.Trailers.GetValue("grpc-retry-pushback-ms"));
    }

    [Theory]
    [MemberData(nameof(EveryCallKind))]
    public async Task Intercept_RedisUnavailable_IsUnavailableWithRetryInfo_WithoutTheStoresMessage(CallKind kind)
    {
        var cause = new LabMesh.Messaging.Redis.RedisUnavailableException("Redis could not serve the event read: SocketClosed on 10.1.2.3:6379");
        var ex = await Assert.ThrowsAsync<RpcException>(() => Run(kind, cause, throwSynchronously: false)).WaitAsync(Timeout);

        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Equal("Redis cannot be reached right now; retry shortly.", ex.Status.Detail);
        Assert.DoesNotContain("10.1.2.3", ex.Status.Detail, StringComparison.Ordinal);
        var retry = Assert.IsType<RetryInfo>(Assert.Single(Unpacked(AssertRpcStatus(ex, Code.Unavailable))));
        Assert.Equal(TimeSpan.FromSeconds(1), retry.RetryDelay.ToTimeSpan());
        Assert.Same(cause, ex.Status.DebugException);
    }

    [Fact]
    public async Task Intercept_PostgresUnreachable_IsUnavailable_ButAPostgresErrorIsNot()
    {
        var unreachable = new Npgsql.NpgsqlException("Failed to connect", new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.ConnectionRefused));
        Assert.True(unreachable.IsTransient);
        var ex = await Assert.ThrowsAsync<RpcException>(() => Run(CallKind.Unary, unreachable, throwSynchronously: false)).WaitAsync(Timeout);
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Equal("PostgreSQL cannot be reached right now; retry shortly.", ex.Status.Detail);

        var bug = new Npgsql.NpgsqlException("a LabMesh bug");
        Assert.Same(bug, await Assert.ThrowsAsync<Npgsql.NpgsqlException>(() => Run(CallKind.Unary, bug, throwSynchronously: false)).WaitAsync(Timeout));
    }

    [Theory]
    [MemberData(nameof(EveryCallKind))]
    public async Task Intercept_HandlerThrowsSynchronously_IsStillMapped(CallKind kind)
    {
        var ex = await Assert.ThrowsAsync<RpcException>(() => Run(kind, new NotFoundException("service_request", "sr-1"), throwSynchronously: true))
            .WaitAsync(Timeout);
        Assert.Equal(StatusCode.NotFound, ex.StatusCode);
    }

    [Theory]
    [MemberData(nameof(EveryCallKind))]
    public async Task Intercept_SuccessfulHandler_ReturnsItsResult(CallKind kind)
    {
        await Run(kind, exception: null, throwSynchronously: false).WaitAsync(Timeout);
    }

    [Fact]
    public void ToRpcException_PutsTheStatusInTheDetailsTrailerAndKeepsTheCause()
    {
        var domain = new NotFoundException("requisition", "req-1");
        var ex = DomainExceptionInterceptor.ToRpcException(domain);

        var entry = Assert.Single(ex.Trailers);
        Assert.Equal("grpc-status-details-bin", entry.Key);
        Assert.True(entry.IsBinary);
        var status = Google.Rpc.Status.Parser.ParseFrom(entry.ValueBytes);
        Assert.Equal((int)Code.NotFound, status.Code);
        Assert.Equal(domain.Message, status.Message);
        Assert.Same(domain, ex.Status.DebugException);
    }

    [Fact]
    public void GetDetail_AbsentType_IsNull()
    {
        var ex = DomainExceptionInterceptor.ToRpcException(new NotFoundException("requisition", "req-1"));
        Assert.NotNull(ex.GetDetail<ResourceInfo>());
        Assert.Null(ex.GetDetail<BadRequest>());
    }

    private static async Task<RpcException> Intercept(CallKind kind, DomainException exception) =>
        await Assert.ThrowsAsync<RpcException>(() => Run(kind, exception, throwSynchronously: false)).WaitAsync(Timeout);

    private static Google.Rpc.Status AssertRpcStatus(RpcException ex, Code code)
    {
        var status = ex.GetRpcStatus();
        Assert.NotNull(status);
        Assert.Equal((int)code, status.Code);
        Assert.Equal(ex.Status.Detail, status.Message);
        return status;
    }

    private static List<IMessage> Unpacked(Google.Rpc.Status status) =>
        [.. status.Details.Select(any => any.Unpack(TypeRegistry.FromMessages(
            BadRequest.Descriptor, PreconditionFailure.Descriptor, ErrorInfo.Descriptor, ResourceInfo.Descriptor)))];

    // Calls the interceptor directly, as the server would, with a handler that throws (or not).
    private static async Task Run(CallKind kind, Exception? exception, bool throwSynchronously)
    {
        var interceptor = new DomainExceptionInterceptor();
        var context = new FakeServerCallContext();
        var request = new Request();
        var reader = new EmptyReader();
        var writer = new NullWriter();

        async Task Fail()
        {
            await Task.Yield();
            if (exception is not null)
            {
                throw exception;
            }
        }

        Task Handler()
        {
            if (throwSynchronously && exception is not null)
            {
                throw exception;
            }
            return Fail();
        }

        switch (kind)
        {
            case CallKind.Unary:
                var unary = await interceptor.UnaryServerHandler<Request, Response>(request, context, async (_, _) =>
                {
                    await Handler();
                    return new Response();
                });
                Assert.NotNull(unary);
                break;
            case CallKind.ClientStreaming:
                var clientStreaming = await interceptor.ClientStreamingServerHandler<Request, Response>(reader, context, async (_, _) =>
                {
                    await Handler();
                    return new Response();
                });
                Assert.NotNull(clientStreaming);
                break;
            case CallKind.ServerStreaming:
                await interceptor.ServerStreamingServerHandler<Request, Response>(request, writer, context, (_, _, _) => Handler());
                break;
            case CallKind.DuplexStreaming:
                await interceptor.DuplexStreamingServerHandler<Request, Response>(reader, writer, context, (_, _, _) => Handler());
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(kind));
        }
    }

    private sealed class SomeOtherDomainException() : DomainException("something else");

    private sealed class Request;

    private sealed class Response;

    private sealed class EmptyReader : IAsyncStreamReader<Request>
    {
        public Request Current => throw new InvalidOperationException();

        public Task<bool> MoveNext(CancellationToken cancellationToken) => Task.FromResult(false);
    }

    private sealed class NullWriter : IServerStreamWriter<Response>
    {
        public WriteOptions? WriteOptions { get; set; }

        public Task WriteAsync(Response message) => Task.CompletedTask;
    }

    private sealed class FakeServerCallContext : ServerCallContext
    {
        private readonly Metadata _trailers = [];

        protected override string MethodCore => "/labmesh.test.v1.Test/Call";

        protected override string HostCore => "localhost";

        protected override string PeerCore => "ipv4:127.0.0.1:1";

        protected override DateTime DeadlineCore => DateTime.MaxValue;

        protected override Metadata RequestHeadersCore => [];

        protected override CancellationToken CancellationTokenCore => CancellationToken.None;

        protected override Metadata ResponseTrailersCore => _trailers;

        protected override Grpc.Core.Status StatusCore { get; set; }

        protected override WriteOptions? WriteOptionsCore { get; set; }

        protected override AuthContext AuthContextCore { get; } = new(null, []);

        protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;

        protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => throw new NotSupportedException();
    }
}
