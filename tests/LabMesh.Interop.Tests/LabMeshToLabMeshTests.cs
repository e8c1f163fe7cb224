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

    [Theory]
    [InlineData("empty_unary")]
    [InlineData("custom_metadata")]
    public Task InteropCase_OverTlsWithHostOverride_Passes(string testCase) =>
        RunAsync(testCase, tls: true, host: "127.0.0.1", hostOverride: "foo.test.google.fr");

    [Fact]
    public async Task Tls_HostOverrideNotInCertificate_Fails()
    {
        using var client = new InteropClient(new InteropClientOptions
        {
            ServerHost = "127.0.0.1",
            ServerPort = server.Tls.Port,
            UseTls = true,
            ServerHostOverride = "not-in-the-certificate.example",
            CaCertificate = server.Tls.CaCertificate,
        });
        using var cancel = new CancellationTokenSource(CaseTimeout);
        var error = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => client.EmptyUnaryAsync(cancel.Token).WaitAsync(CaseTimeout + TimeSpan.FromSeconds(5)));
        Assert.Equal(Grpc.Core.StatusCode.Unavailable, error.StatusCode);
    }

    private Task RunAsync(string testCase, bool tls, string? host = null, string? hostOverride = null) => server.RunCheckingLogsAsync(tls, async () =>
    {
        var target = server.Server(tls);
        using var client = new InteropClient(new InteropClientOptions
        {
            ServerHost = host ?? (tls ? "localhost" : "127.0.0.1"),
            ServerPort = target.Port,
            UseTls = tls,
            ServerHostOverride = hostOverride,
            CaCertificate = target.CaCertificate,
        });
        using var cancel = new CancellationTokenSource(CaseTimeout);
        await client.RunAsync(testCase, cancel.Token).WaitAsync(CaseTimeout + TimeSpan.FromSeconds(5));
    });
}
