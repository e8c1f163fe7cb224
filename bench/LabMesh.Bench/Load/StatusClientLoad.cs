using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.ServiceDefaults.Peers;

namespace LabMesh.Bench.Load;

/// <summary>
/// GetRequisitionStatus through what a LabMesh caller uses: the generated client on
/// <see cref="MeshChannels.Create"/>, one channel per connection, the bearer token in every call's headers.
/// Each call checks that the answer has the size of the expected response (the same on both sides).
/// </summary>
internal sealed class StatusClientLoad : IAsyncDisposable
{
    private readonly GrpcChannel[] _channels;
    private readonly RequisitionService.RequisitionServiceClient[] _clients;

    public StatusClientLoad(string address, int connections)
    {
        _channels = [.. Enumerable.Range(0, connections).Select(_ => MeshChannels.Create(address))];
        _clients = [.. _channels.Select(c => new RequisitionService.RequisitionServiceClient(c))];
    }

    /// <summary>One call function per worker, spread round-robin over the channels.</summary>
    public IReadOnlyList<BenchCall> Calls(StatusRequest status, int concurrency) =>
        [.. Enumerable.Range(0, concurrency).Select(i => Call(_clients[i % _clients.Length], status))];

    /// <summary>One call, for checking a path before measuring it.</summary>
    public async Task<GetRequisitionStatusResponse> OnceAsync(StatusRequest status, TimeSpan timeout) =>
        await _clients[0].GetRequisitionStatusAsync(status.Request, status.Headers, DateTime.UtcNow.Add(timeout));

    private static BenchCall Call(RequisitionService.RequisitionServiceClient client, StatusRequest status) => async () =>
    {
        var response = await client.GetRequisitionStatusAsync(status.Request, status.Headers);
        return response.CalculateSize() == status.ResponseSize
            ? 1
            : throw new InvalidOperationException($"A response of {response.CalculateSize()} bytes, expected {status.ResponseSize}.");
    };

    public async ValueTask DisposeAsync()
    {
        foreach (var channel in _channels)
        {
            await channel.ShutdownAsync();
            channel.Dispose();
        }
    }
}

/// <summary>The call both sides answer: the request, the caller's headers, and the size of the expected response.</summary>
internal sealed record StatusRequest(GetRequisitionStatusRequest Request, Metadata Headers, int ResponseSize, string Token)
{
    public const string Path = "/labmesh.requisition.v1.RequisitionService/GetRequisitionStatus";

    /// <summary>The request as h2load posts it: a gRPC message frame (uncompressed flag, 4-byte big-endian length, protobuf).</summary>
    public byte[] FramedRequest()
    {
        var body = Google.Protobuf.MessageExtensions.ToByteArray(Request);
        var framed = new byte[5 + body.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(framed.AsSpan(1), (uint)body.Length);
        body.CopyTo(framed, 5);
        return framed;
    }
}
