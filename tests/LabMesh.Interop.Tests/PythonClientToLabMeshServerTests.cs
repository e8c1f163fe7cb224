namespace LabMesh.Interop.Tests;

/// <summary>Python's grpcio (interop_client.py, a child process) against LabMesh's interop server.</summary>
public sealed class PythonClientToLabMeshServerTests(LabMeshServerFixture server) : IClassFixture<LabMeshServerFixture>
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
        PythonGrpc.RunClientAsync("127.0.0.1", server.Tls.Port, "empty_unary,custom_metadata", useTls: true, caFile: server.CaFile, hostOverride: "foo.test.google.fr"));

    [Fact]
    public Task HealthCheck_ViaGrpcio_IsServing() => RunAsync("health_check", tls: false);

    [Fact]
    public Task Reflection_ViaGrpcio_ListsTestService() => RunAsync("reflection_list", tls: false);

    private Task RunAsync(string testCase, bool tls) => server.RunCheckingLogsAsync(tls, () =>
        tls
            ? PythonGrpc.RunClientAsync("localhost", server.Tls.Port, testCase, useTls: true, caFile: server.CaFile)
            : PythonGrpc.RunClientAsync("127.0.0.1", server.H2c.Port, testCase));
}
