using System.Globalization;

namespace LabMesh.Interop.Tests;

/// <summary>The LabMesh.Interop executable itself (<c>dotnet LabMesh.Interop.dll server|client</c>), as
/// another implementation's test harness would run it.</summary>
public sealed class InteropExecutableTests(PythonServerFixture python) : IClassFixture<PythonServerFixture>
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(120);
    private const string CoreCases = "empty_unary,large_unary,client_streaming,server_streaming,ping_pong,empty_stream,custom_metadata,status_code_and_message";

    [Fact]
    public async Task ServerProcess_OverH2c_PassesGrpcioClient()
    {
        await PythonGrpc.RequireAsync();
        await using var server = StartInterop(["server", "--port", "0"]);
        var port = await ReadyPortAsync(server);
        await PythonGrpc.RunClientAsync("127.0.0.1", port, CoreCases, serverOutput: server.Describe());
    }

    [Fact]
    public async Task ServerProcess_OverTls_WritesCaThatGrpcioTrusts()
    {
        await PythonGrpc.RequireAsync();
        var directory = Directory.CreateTempSubdirectory("labmesh-interop-exe-").FullName;
        try
        {
            var caFile = Path.Combine(directory, "ca.pem");
            await using var server = StartInterop(["server", "--port", "0", "--use_tls", "--tls_ca_out", caFile]);
            var port = await ReadyPortAsync(server);
            Assert.True(File.Exists(caFile), $"--tls_ca_out wrote nothing.\n{server.Describe()}");
            await PythonGrpc.RunClientAsync("localhost", port, CoreCases, useTls: true, caFile: caFile, serverOutput: server.Describe());
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task ServerProcess_WithGivenCertificate_ServesIt()
    {
        await PythonGrpc.RequireAsync();
        var directory = Directory.CreateTempSubdirectory("labmesh-interop-exe-").FullName;
        try
        {
            using var authority = TestCertificateAuthority.Create("LabMesh interop test CA (given certificate)");
            var issued = authority.IssueServerCertificate();
            var caFile = Path.Combine(directory, "ca.pem");
            var certFile = Path.Combine(directory, "server.pem");
            var keyFile = Path.Combine(directory, "server.key");
            await File.WriteAllTextAsync(caFile, authority.CertificatePem);
            await File.WriteAllTextAsync(certFile, issued.CertificatePem);
            await File.WriteAllTextAsync(keyFile, issued.PrivateKeyPem);
            await using var server = StartInterop(["server", "--port", "0", "--use_tls", "--tls_cert", certFile, "--tls_key", keyFile]);
            var port = await ReadyPortAsync(server);
            await PythonGrpc.RunClientAsync("localhost", port, "empty_unary,large_unary", useTls: true, caFile: caFile, serverOutput: server.Describe());
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task ClientProcess_AgainstGrpcioServer_ExitsZero()
    {
        var port = await python.PortAsync(tls: false);
        await using var client = StartInterop(["client", "--server_host", "127.0.0.1", "--server_port", port.ToString(CultureInfo.InvariantCulture), "--test_case", CoreCases]);
        var exitCode = await client.WaitForExitAsync(RunTimeout);
        Assert.True(exitCode == 0, $"exit code {exitCode}\n{client.Describe()}\n--- python server ---\n{python.Output(false)}");
        Assert.Contains("PASSED custom_metadata", client.StandardOutput, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClientProcess_NoServer_ExitsNonZeroNamingTheCase()
    {
        var port = FreePort();
        await using var client = StartInterop(["client", "--server_host", "127.0.0.1", "--server_port", port.ToString(CultureInfo.InvariantCulture), "--test_case", "empty_unary", "--timeout_seconds", "20"]);
        var exitCode = await client.WaitForExitAsync(RunTimeout);
        Assert.True(exitCode == 1, $"exit code {exitCode}, expected 1\n{client.Describe()}");
        Assert.Contains("FAILED empty_unary", client.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnknownOption_ExitsTwoWithUsage()
    {
        await using var process = StartInterop(["server", "--prot", "1"]);
        var exitCode = await process.WaitForExitAsync(RunTimeout);
        Assert.True(exitCode == 2, $"exit code {exitCode}, expected 2\n{process.Describe()}");
        Assert.Contains("--prot", process.StandardError, StringComparison.Ordinal);
    }

    private static ExternalProcess StartInterop(IEnumerable<string> arguments)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "LabMesh.Interop.dll");
        Assert.True(File.Exists(dll), $"{dll} is missing");
        var dotnet = Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host) ? host : "dotnet";
        return ExternalProcess.Start(dotnet, [dll, .. arguments]);
    }

    private static async Task<int> ReadyPortAsync(ExternalProcess server)
    {
        var line = await server.WaitForLineAsync(InteropProgram.ReadyLinePrefix, StartTimeout);
        return int.Parse(line.AsSpan(InteropProgram.ReadyLinePrefix.Length).ToString().Split(' ')[0], CultureInfo.InvariantCulture);
    }

    private static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }
}
