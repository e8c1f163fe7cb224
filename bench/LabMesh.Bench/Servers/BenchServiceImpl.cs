using Grpc.Core;
using LabMesh.Bench.V1;

namespace LabMesh.Bench.Servers;

/// <summary>
/// The LabMesh-side handler: answers with a response of the requested size, built once and
/// reused, so that what is measured is the runtime (framing, marshalling, HTTP/2), not the handler.
/// </summary>
internal sealed class BenchServiceImpl : BenchService.BenchServiceBase
{
    // Static: the runtime may create a service instance per call, as grpc-dotnet does.
    private static BenchResponse? s_cached;

    public override Task<BenchResponse> Unary(BenchRequest request, ServerCallContext context) =>
        Task.FromResult(ResponseOfSize(request.ResponseSize));

    public override async Task ServerStream(BenchRequest request, IServerStreamWriter<BenchResponse> responseStream, ServerCallContext context)
    {
        var response = ResponseOfSize(request.ResponseSize);
        for (var i = 0; i < request.MessageCount; i++)
        {
            await responseStream.WriteAsync(response);
        }
    }

    private static BenchResponse ResponseOfSize(int size)
    {
        var cached = Volatile.Read(ref s_cached);
        if (cached is null || cached.Payload.Length != size)
        {
            cached = new BenchResponse { Payload = Payloads.Fill(size) };
            Volatile.Write(ref s_cached, cached);
        }
        return cached;
    }
}
