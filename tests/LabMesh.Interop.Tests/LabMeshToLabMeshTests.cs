namespace LabMesh.Interop.Tests;

/// <summary>LabMesh's interop client against LabMesh's interop server (in-process, real loopback sockets).</summary>
public sealed class LabMeshToLabMeshTests(LabMeshServerFixture server) : IClassFixture<LabMeshServerFixture>
{
    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(30);

    [Theory]
    [MemberData(nameof(InteropCases.CoreData), MemberType = typeof(InteropCases))]
    public Task InteropCase_OverH2c_Passes(string testCase) => RunAsync(testCase, tls: false);

    [Theory]
    [MemberData(nameof(InteropCases.CoreData), MemberType = typeof(InteropCases))]
    public Task InteropCase_OverTls_Passes(string testCase) => RunAsync(testCase, tls: true);

    [Theory]
    [MemberData(nameof(InteropCases.CompressionData), MemberType = typeof(InteropCases))]
    public Task CompressionCase_OverH2c_Passes(string testCase) => RunAsync(testCase, tls: false);

    private Task RunAsync(string testCase, bool tls) => server.RunCheckingLogsAsync(tls, async () =>
    {
        var target = server.Server(tls);
        using var client = new InteropClient(new InteropClientOptions
        {
            ServerHost = tls ? "localhost" : "127.0.0.1",
            ServerPort = target.Port,
            UseTls = tls,
            CaCertificate = target.CaCertificate,
        });
        using var cancel = new CancellationTokenSource(CaseTimeout);
        await client.RunAsync(testCase, cancel.Token).WaitAsync(CaseTimeout + TimeSpan.FromSeconds(5));
    });
}
