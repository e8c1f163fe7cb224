using Grpc.Net.Client;
using LabMesh.Bench.V1;

namespace LabMesh.Bench.Load;

/// <summary>
/// The generated <c>BenchServiceClient</c> over LabMesh's <see cref="GrpcChannel"/>: default options,
/// unless a scenario changes them (compression, a counting handler).
/// </summary>
internal sealed class LabMeshClientLoad : IAsyncDisposable
{
    private readonly GrpcChannel[] _channels;
    private readonly BenchService.BenchServiceClient[] _clients;

    public LabMeshClientLoad(string address, int connections, Action<GrpcChannelOptions>? configure = null)
    {
        _channels = new GrpcChannel[connections];
        _clients = new BenchService.BenchServiceClient[connections];
        for (var i = 0; i < connections; i++)
        {
            var options = new GrpcChannelOptions();
            configure?.Invoke(options);
            _channels[i] = GrpcChannel.ForAddress(address, options);
            _clients[i] = new BenchService.BenchServiceClient(_channels[i]);
        }
    }

    /// <summary>One call function per worker, spread round-robin over the channels.</summary>
    public IReadOnlyList<BenchCall> Unary(BenchRequest request, int concurrency, int expectedPayload) =>
        [.. Enumerable.Range(0, concurrency).Select(i => UnaryCall(_clients[i % _clients.Length], request, expectedPayload))];

    /// <summary>Server-streaming calls; with <paramref name="gaps"/>, each message's arrival is timed.</summary>
    public IReadOnlyList<BenchCall> ServerStream(BenchRequest request, int concurrency, MessageGaps? gaps = null) =>
        [.. Enumerable.Range(0, concurrency).Select(i => StreamCall(_clients[i % _clients.Length], request, gaps?.ForWorker(i)))];

    private static BenchCall UnaryCall(BenchService.BenchServiceClient client, BenchRequest request, int expectedPayload) => async () =>
    {
        var response = await client.UnaryAsync(request);
        return response.Payload.Length == expectedPayload
            ? 1
            : throw new InvalidOperationException($"Response payload of {response.Payload.Length} bytes, expected {expectedPayload}.");
    };

    private static BenchCall StreamCall(BenchService.BenchServiceClient client, BenchRequest request, MessageGaps.Clock? clock) => async () =>
    {
        clock?.CallStarted();
        using var call = client.ServerStream(request);
        var count = 0;
        while (await call.ResponseStream.MoveNext(CancellationToken.None))
        {
            clock?.MessageReceived();
            count++;
        }
        return count == request.MessageCount
            ? count
            : throw new InvalidOperationException($"{count} streamed messages, expected {request.MessageCount}.");
    };

    public async ValueTask DisposeAsync()
    {
        foreach (var channel in _channels)
        {
            await channel.ShutdownAsync();
        }
    }
}
