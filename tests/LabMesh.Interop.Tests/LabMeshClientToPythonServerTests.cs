namespace LabMesh.Interop.Tests;

/// <summary>LabMesh's interop client against Python's grpcio interop server (interop_server.py, a child process).</summary>
public sealed class LabMeshClientToPythonServerTests(PythonServerFixture python) : IClassFixture<PythonServerFixture>
{
    private static readonly TimeSpan CaseTimeout = TimeSpan.FromSeconds(30);

    [Theory]
    [MemberData(nameof(InteropCases.CoreData), MemberType = typeof(InteropCases))]
    public Task InteropCase_OverH2c_Passes(string testCase) => RunAsync(testCase, tls: false);

    [Theory]
    [MemberData(nameof(InteropCases.CoreData), MemberType = typeof(InteropCases))]
    public Task InteropCase_OverTls_Passes(string testCase) => RunAsync(testCase, tls: true);

    [Theory]
    [MemberData(nameof(InteropCases.CompressionAgainstPythonServerData), MemberType = typeof(InteropCases))]
    public Task CompressionCase_OverH2c_Passes(string testCase) => RunAsync(testCase, tls: false);

    private async Task RunAsync(string testCase, bool tls)
    {
        var port = await python.PortAsync(tls);
        using var client = new InteropClient(new InteropClientOptions
        {
            ServerHost = tls ? "localhost" : "127.0.0.1",
            ServerPort = port,
            UseTls = tls,
            CaCertificate = tls ? python.Authority.Certificate : null,
        });
        using var cancel = new CancellationTokenSource(CaseTimeout);
        try
        {
            await client.RunAsync(testCase, cancel.Token).WaitAsync(CaseTimeout + TimeSpan.FromSeconds(5));
        }
        catch (Exception e)
        {
            Assert.Fail($"{testCase} against the grpcio server failed: {e}\n--- python server ---\n{python.Output(tls)}");
        }
    }
}
