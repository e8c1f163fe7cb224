namespace LabMesh.Interop.Tests;

/// <summary>LabMesh's interop client against Node's grpc-js interop server (interop_server.js, a child process).</summary>
public sealed class LabMeshClientToNodeServerTests(NodeServerFixture node) : IClassFixture<NodeServerFixture>
{
    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(30);

    [Theory]
    [MemberData(nameof(InteropCases.CoreData), MemberType = typeof(InteropCases))]
    public Task InteropCase_OverH2c_Passes(string testCase) => RunAsync(testCase, tls: false);

    [Theory]
    [MemberData(nameof(InteropCases.CoreData), MemberType = typeof(InteropCases))]
    public Task InteropCase_OverTls_Passes(string testCase) => RunAsync(testCase, tls: true);

    [Theory]
    [InlineData("empty_unary")]
    [InlineData("custom_metadata")]
    public Task InteropCase_OverTlsWithHostOverride_Passes(string testCase) =>
        RunAsync(testCase, tls: true, host: "127.0.0.1", hostOverride: "foo.test.google.fr");

    private async Task RunAsync(string testCase, bool tls, string? host = null, string? hostOverride = null)
    {
        var port = await node.PortAsync(tls);
        using var client = new InteropClient(new InteropClientOptions
        {
            ServerHost = host ?? (tls ? "localhost" : "127.0.0.1"),
            ServerPort = port,
            UseTls = tls,
            ServerHostOverride = hostOverride,
            CaCertificate = tls ? node.Authority.Certificate : null,
        });
        using var cancel = new CancellationTokenSource(CaseTimeout);
        try
        {
            await client.RunAsync(testCase, cancel.Token).WaitAsync(CaseTimeout + TimeSpan.FromSeconds(5));
        }
        catch (Exception e)
        {
            Assert.Fail($"{testCase} against the grpc-js server failed: {e}\n--- node server ---\n{node.Output(tls)}");
        }
    }
}
