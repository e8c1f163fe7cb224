namespace LabMesh.Bench.Servers;

/// <summary>Which server answers on the bench paths.</summary>
internal enum ServerKind
{
    /// <summary>LabMesh's gRPC runtime: <c>AddGrpc()</c> + <c>MapGrpcService&lt;BenchServiceImpl&gt;()</c>.</summary>
    LabMesh,

    /// <summary>Plain Kestrel endpoints writing pre-framed gRPC bytes: the no-gRPC-work baseline.</summary>
    Bare,

    /// <summary>Python grpcio (<c>grpc.aio</c>) serving the same BenchService: <c>python/bench_server.py</c>.</summary>
    Grpcio,
}
