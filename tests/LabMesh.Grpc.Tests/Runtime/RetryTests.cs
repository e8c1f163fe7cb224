using System.Collections.Concurrent;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Net.Client.Configuration;
using LabMesh.Grpc.Tests.Echo;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.Grpc.Tests.Runtime;

public sealed class RetryTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Unary_RetryableFailures_AreRetriedUntilSuccess_AndAttemptsAreVisible()
    {
        await using var flaky = await FlakyServer.StartAsync(failures: 2);
        using var channel = flaky.Channel(Policy(maxAttempts: 4));
        var call = new Echo.Echo.EchoClient(channel).UnaryAsync(new EchoRequest { Text = "eventually" });
        var response = await call.ResponseAsync.WaitAsync(Timeout);
        Assert.Equal("eventually", response.Text);
        Assert.Equal(["", "1", "2"], flaky.Journal.AttemptHeaders);
        Assert.Equal("2", call.GetTrailers().GetValue("grpc-previous-rpc-attempts"));
    }

    [Fact]
    public async Task Unary_AttemptsExhausted_SurfacesTheLastStatus()
    {
        await using var flaky = await FlakyServer.StartAsync(failures: 10);
        using var channel = flaky.Channel(Policy(maxAttempts: 3));
        var ex = await Assert.ThrowsAsync<RpcException>(() => new Echo.Echo.EchoClient(channel).UnaryAsync(new EchoRequest()).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Equal(3, flaky.Journal.AttemptHeaders.Count);
        Assert.Equal("2", ex.Trailers.GetValue("grpc-previous-rpc-attempts"));
    }

    [Fact]
    public async Task Unary_NonRetryableStatus_IsNotRetried()
    {
        await using var flaky = await FlakyServer.StartAsync(failures: 1, code: StatusCode.FailedPrecondition);
        using var channel = flaky.Channel(Policy(maxAttempts: 4));
        var ex = await Assert.ThrowsAsync<RpcException>(() => new Echo.Echo.EchoClient(channel).UnaryAsync(new EchoRequest()).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.FailedPrecondition, ex.StatusCode);
        Assert.Single(flaky.Journal.AttemptHeaders);
    }

    [Fact]
    public async Task Unary_FailureAfterResponseHeaders_IsNeverRetried()
    {
        await using var flaky = await FlakyServer.StartAsync(failures: 1, sendHeadersFirst: true);
        using var channel = flaky.Channel(Policy(maxAttempts: 4));
        var ex = await Assert.ThrowsAsync<RpcException>(() => new Echo.Echo.EchoClient(channel).UnaryAsync(new EchoRequest()).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Single(flaky.Journal.AttemptHeaders);
    }

    [Fact]
    public async Task Unary_RequestLargerThanTheReplayBuffer_IsSentOnce()
    {
        await using var flaky = await FlakyServer.StartAsync(failures: 1);
        var options = new GrpcChannelOptions { ServiceConfig = Policy(maxAttempts: 4), MaxRetryBufferPerCallSize = 1024 };
        using var channel = GrpcChannel.ForAddress(flaky.Server.Address, options);
        var ex = await Assert.ThrowsAsync<RpcException>(() =>
            new Echo.Echo.EchoClient(channel).UnaryAsync(new EchoRequest { Payload = ByteString.CopyFrom(new byte[4096]) }).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Single(flaky.Journal.AttemptHeaders);
    }

    [Fact]
    public async Task Unary_ServerPushback_DelaysOrStopsRetries()
    {
        await using var flaky = await FlakyServer.StartAsync(failures: 1, pushback: "-1");
        using var channel = flaky.Channel(Policy(maxAttempts: 4));
        var ex = await Assert.ThrowsAsync<RpcException>(() => new Echo.Echo.EchoClient(channel).UnaryAsync(new EchoRequest()).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.Unavailable, ex.StatusCode);
        Assert.Single(flaky.Journal.AttemptHeaders);
    }

    [Fact]
    public async Task ServerStreaming_FailureBeforeHeaders_IsRetriedTransparently()
    {
        await using var flaky = await FlakyServer.StartAsync(failures: 2);
        using var channel = flaky.Channel(Policy(maxAttempts: 5));
        using var call = new Echo.Echo.EchoClient(channel).ServerStream(new EchoRequest { Count = 3 });
        var indexes = new List<int>();
        while (await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout))
        {
            indexes.Add(call.ResponseStream.Current.Index);
        }
        Assert.Equal([0, 1, 2], indexes);
        Assert.Equal(3, flaky.Journal.AttemptHeaders.Count);
    }

    [Fact]
    public async Task PolicyForAnotherService_DoesNotApply()
    {
        await using var flaky = await FlakyServer.StartAsync(failures: 1);
        var config = new ServiceConfig();
        config.MethodConfigs.Add(PolicyConfig(4, new MethodName { Service = "some.other.Service" }));
        using var channel = flaky.Channel(config);
        await Assert.ThrowsAsync<RpcException>(() => new Echo.Echo.EchoClient(channel).UnaryAsync(new EchoRequest()).ResponseAsync.WaitAsync(Timeout));
        Assert.Single(flaky.Journal.AttemptHeaders);
    }

    private static ServiceConfig Policy(int maxAttempts)
    {
        var config = new ServiceConfig();
        config.MethodConfigs.Add(PolicyConfig(maxAttempts, new MethodName { Service = "labmesh.test.v1.Echo" }));
        return config;
    }

    private static MethodConfig PolicyConfig(int maxAttempts, MethodName name)
    {
        var policy = new RetryPolicy
        {
            MaxAttempts = maxAttempts,
            InitialBackoff = TimeSpan.FromMilliseconds(10),
            MaxBackoff = TimeSpan.FromMilliseconds(50),
            BackoffMultiplier = 2,
        };
        policy.RetryableStatusCodes.Add(StatusCode.Unavailable);
        var config = new MethodConfig { RetryPolicy = policy };
        config.Names.Add(name);
        return config;
    }

    public sealed class AttemptJournal(int failures, StatusCode code, bool sendHeadersFirst, string? pushback)
    {
        public ConcurrentQueue<string> Headers { get; } = new();

        public List<string> AttemptHeaders => [.. Headers];

        public int Failures => failures;

        public StatusCode Code => code;

        public bool SendHeadersFirst => sendHeadersFirst;

        public string? Pushback => pushback;
    }

    private sealed class FlakyService(AttemptJournal journal) : Echo.Echo.EchoBase
    {
        public override async Task<EchoResponse> Unary(EchoRequest request, ServerCallContext context)
        {
            await FailIfDueAsync(context);
            return new EchoResponse { Text = request.Text };
        }

        public override async Task ServerStream(EchoRequest request, IServerStreamWriter<EchoResponse> responseStream, ServerCallContext context)
        {
            await FailIfDueAsync(context);
            for (var i = 0; i < request.Count; i++)
            {
                await responseStream.WriteAsync(new EchoResponse { Index = i });
            }
        }

        private async Task FailIfDueAsync(ServerCallContext context)
        {
            journal.Headers.Enqueue(context.RequestHeaders.GetValue("grpc-previous-rpc-attempts") ?? "");
            if (journal.Headers.Count > journal.Failures)
            {
                return;
            }
            if (journal.SendHeadersFirst)
            {
                await context.WriteResponseHeadersAsync([]);
            }
            var trailers = new Metadata();
            if (journal.Pushback is not null)
            {
                trailers.Add("grpc-retry-pushback-ms", journal.Pushback);
            }
            throw new RpcException(new Status(journal.Code, "try again"), trailers);
        }
    }

    private sealed class FlakyServer : IAsyncDisposable
    {
        private FlakyServer(TestGrpcServer server, AttemptJournal journal)
        {
            Server = server;
            Journal = journal;
        }

        public TestGrpcServer Server { get; }

        public AttemptJournal Journal { get; }

        public static async Task<FlakyServer> StartAsync(int failures, StatusCode code = StatusCode.Unavailable, bool sendHeadersFirst = false, string? pushback = null)
        {
            var journal = new AttemptJournal(failures, code, sendHeadersFirst, pushback);
            var server = await TestGrpcServer.StartAsync(s => s.AddSingleton(journal), app => app.MapGrpcService<FlakyService>());
            return new FlakyServer(server, journal);
        }

        public GrpcChannel Channel(ServiceConfig config) =>
            GrpcChannel.ForAddress(Server.Address, new GrpcChannelOptions { ServiceConfig = config });

        public ValueTask DisposeAsync() => Server.DisposeAsync();
    }
}
