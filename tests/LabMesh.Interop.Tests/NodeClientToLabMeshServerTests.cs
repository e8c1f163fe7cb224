namespace LabMesh.Interop.Tests;

/// <summary>Node's grpc-js (interop_client.js, a child process) against LabMesh's interop server.</summary>
public sealed class NodeClientToLabMeshServerTests(LabMeshServerFixture server) : IClassFixture<LabMeshServerFixture>
{
    [Theory]
    [MemberData(nameof(InteropCases.CoreData), MemberType = typeof(InteropCases))]
    public Task InteropCase_OverH2c_Passes(string testCase) => RunAsync(testCase, tls: false);

    [Theory]
    [MemberData(nameof(InteropCases.CoreData), MemberType = typeof(InteropCases))]
    public Task InteropCase_OverTls_Passes(string testCase) => RunAsync(testCase, tls: true);

    [Theory]
    [MemberData(nameof(InteropCases.CompressionData), MemberType = typeof(InteropCases))]
    public Task CompressionCase_OverH2c_Passes(string testCase) => RunAsync(testCase, tls: false);

    [Fact]
    public Task InteropCases_OverTlsWithHostOverride_Pass() => server.RunCheckingLogsAsync(true, () =>
        NodeGrpc.RunClientAsync("127.0.0.1", server.Tls.Port, "large_unary,custom_metadata", useTls: true, caFile: server.CaFile, hostOverride: "foo.test.google.fr"));

    private Task RunAsync(string testCase, bool tls) => server.RunCheckingLogsAsync(tls, () =>
        tls
            ? NodeGrpc.RunClientAsync("localhost", server.Tls.Port, testCase, useTls: true, caFile: server.CaFile)
            : NodeGrpc.RunClientAsync("127.0.0.1", server.H2c.Port, testCase));
}
