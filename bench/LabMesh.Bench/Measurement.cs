namespace LabMesh.Bench;

/// <summary>One target of one scenario, measured once.</summary>
/// <param name="Scenario">The scenario name, e.g. <c>e2e-unary</c>.</param>
/// <param name="Target">Who sent and who answered, e.g. <c>LabMesh client -> LabMesh server</c>.</param>
/// <param name="IsLabMesh">Whether this is the measured side of the pair: LabMesh, or for the gzip scenarios the compressed side (the other is the baseline).</param>
/// <param name="Unit">What <paramref name="Rate"/> counts: <c>calls/s</c> or <c>msgs/s</c>.</param>
/// <param name="Rate">Throughput over the measured window.</param>
/// <param name="P50Ms">Median call latency (a whole streaming call for streams; per message for many-streams).</param>
/// <param name="P99Ms">99th percentile of the same.</param>
/// <param name="Ops">Operations counted: calls, or messages for streams.</param>
/// <param name="Errors">Failed calls in the window.</param>
/// <param name="Server">What the server process spent in the window.</param>
/// <param name="Client">What the bench process spent in the window (null for h2load).</param>
/// <param name="Note">The first error, if any.</param>
internal sealed record Measurement(
    string Scenario,
    string Target,
    bool IsLabMesh,
    string Unit,
    double Rate,
    double P50Ms,
    double P99Ms,
    long Ops,
    long Errors,
    Servers.ProcessStats Server,
    Servers.ProcessStats? Client,
    string? Note)
{
    /// <summary>Sampled allocations by type in the server, when profiling (see <see cref="AllocationProfiler"/>).</summary>
    public string? ServerAllocations { get; init; }

    /// <summary>Sampled allocations by type in the bench client, when profiling.</summary>
    public string? ClientAllocations { get; init; }

    /// <summary>Bytes the client wrote to its connection per operation (HTTP/2 frames included), when measured.</summary>
    public double? WireSentPerOp { get; init; }

    /// <summary>Bytes the client read from its connection per operation, when measured.</summary>
    public double? WireReceivedPerOp { get; init; }

    public double? WireBytesPerOp => WireSentPerOp + WireReceivedPerOp;

    /// <summary>More about the measurement, printed under its row.</summary>
    public string? Detail { get; init; }

    public double ServerCpuUsPerOp => Ops == 0 ? double.NaN : Server.CpuTime.TotalMicroseconds / Ops;

    public double ServerBytesPerOp => Ops == 0 || !Server.Managed ? double.NaN : (double)Server.AllocatedBytes / Ops;

    public double ClientCpuUsPerOp => Ops == 0 || Client is null ? double.NaN : Client.Value.CpuTime.TotalMicroseconds / Ops;

    public double ClientBytesPerOp => Ops == 0 || Client is null ? double.NaN : (double)Client.Value.AllocatedBytes / Ops;
}
