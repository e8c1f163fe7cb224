namespace LabMesh.Bench;

/// <summary>One side of one scenario, measured once.</summary>
/// <param name="Scenario">The scenario name, e.g. <c>status-client</c>.</param>
/// <param name="Target">Who sent and who answered, e.g. <c>MeshChannels -> all-in-one host</c>.</param>
/// <param name="IsLabMesh">Whether this is the LabMesh side of the pair (the other is the bare grpc-dotnet baseline).</param>
/// <param name="Rate">Calls per second over the measured window.</param>
/// <param name="P50Ms">Median call latency.</param>
/// <param name="P99Ms">99th percentile of the same.</param>
/// <param name="Calls">Calls counted.</param>
/// <param name="Errors">Failed calls in the window.</param>
/// <param name="Server">What the server process spent in the window (CPU, from /proc).</param>
/// <param name="Client">What the bench process spent in the window (null for h2load).</param>
/// <param name="Note">The first error, if any.</param>
internal sealed record Measurement(
    string Scenario,
    string Target,
    bool IsLabMesh,
    double Rate,
    double P50Ms,
    double P99Ms,
    long Calls,
    long Errors,
    Servers.ProcessStats Server,
    Servers.ProcessStats? Client,
    string? Note)
{
    public double ServerCpuUsPerCall => Calls == 0 ? double.NaN : Server.CpuTime.TotalMicroseconds / Calls;

    public double ClientCpuUsPerCall => Calls == 0 || Client is null ? double.NaN : Client.Value.CpuTime.TotalMicroseconds / Calls;

    public double ClientBytesPerCall => Calls == 0 || Client is null ? double.NaN : (double)Client.Value.AllocatedBytes / Calls;
}
