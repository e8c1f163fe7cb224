using Google.Protobuf;
using Grpc.Core;
using LabMesh.Grpc.Tests.Echo;

namespace LabMesh.Grpc.Tests.Runtime;

/// <summary>What the echo service observed, shared with the test that started it.</summary>
public sealed class EchoProbe
{
    public TaskCompletionSource<ServerCallContext> CallStarted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public TaskCompletionSource<bool> CallCancelled { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Metadata? LastRequestHeaders { get; set; }

    public DateTime LastDeadline { get; set; }

    public string? LastProtocol { get; set; }

    public string? LastRequestEncoding { get; set; }
}

/// <summary>One method of each kind, steered by the request (delays, failures, sizes).</summary>
public sealed class EchoService(EchoProbe probe) : Echo.Echo.EchoBase
{
    public override async Task<EchoResponse> Unary(EchoRequest request, ServerCallContext context)
    {
        Observe(context);
        await EchoHeadersAsync(context);
        await DelayAsync(request, context);
        Fail(request, context);
        return Respond(request, 0);
    }

    public override async Task ServerStream(EchoRequest request, IServerStreamWriter<EchoResponse> responseStream, ServerCallContext context)
    {
        Observe(context);
        await EchoHeadersAsync(context);
        for (var i = 0; i < request.Count; i++)
        {
            await DelayAsync(request, context);
            await responseStream.WriteAsync(Respond(request, i));
        }
        Fail(request, context);
    }

    public override async Task<EchoResponse> ClientStream(IAsyncStreamReader<EchoRequest> requestStream, ServerCallContext context)
    {
        Observe(context);
        var texts = new List<string>();
        var count = 0;
        EchoRequest? last = null;
        await foreach (var request in requestStream.ReadAllAsync(context.CancellationToken))
        {
            texts.Add(request.Text);
            count++;
            last = request;
            Fail(request, context);
        }
        return new EchoResponse { Text = string.Join(",", texts), Index = count, Payload = last?.Payload ?? ByteString.Empty };
    }

    public override async Task Duplex(IAsyncStreamReader<EchoRequest> requestStream, IServerStreamWriter<EchoResponse> responseStream, ServerCallContext context)
    {
        Observe(context);
        var i = 0;
        await foreach (var request in requestStream.ReadAllAsync(context.CancellationToken))
        {
            Fail(request, context);
            await DelayAsync(request, context);
            await responseStream.WriteAsync(Respond(request, i++));
        }
    }

    private void Observe(ServerCallContext context)
    {
        probe.LastRequestHeaders = context.RequestHeaders;
        probe.LastDeadline = context.Deadline;
        var http = global::Grpc.AspNetCore.Server.ServerCallContextExtensions.GetHttpContext(context);
        probe.LastProtocol = http.Request.Protocol;
        probe.LastRequestEncoding = http.Request.Headers["grpc-encoding"].ToString();
        context.CancellationToken.Register(() => probe.CallCancelled.TrySetResult(true));
        probe.CallStarted.TrySetResult(context);
    }

    private static async Task EchoHeadersAsync(ServerCallContext context)
    {
        var initial = context.RequestHeaders.Get("x-echo-initial");
        if (initial is not null)
        {
            await context.WriteResponseHeadersAsync(new Metadata { initial });
        }
        var binary = context.RequestHeaders.Get("x-echo-trailing-bin");
        if (binary is not null)
        {
            context.ResponseTrailers.Add(binary);
        }
    }

    private static Task DelayAsync(EchoRequest request, ServerCallContext context) =>
        request.DelayMs > 0 ? Task.Delay(request.DelayMs, context.CancellationToken) : Task.CompletedTask;

    private static void Fail(EchoRequest request, ServerCallContext context)
    {
        if (request.FailWithCode != 0)
        {
            throw new RpcException(new Status((StatusCode)request.FailWithCode, request.FailWithMessage));
        }
    }

    private static EchoResponse Respond(EchoRequest request, int index) => new()
    {
        Text = request.Text,
        Index = index,
        Payload = request.ResponseSize > 0 ? ByteString.CopyFrom(new byte[request.ResponseSize]) : request.Payload,
    };
}
