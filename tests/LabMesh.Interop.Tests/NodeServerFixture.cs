using System.Globalization;

namespace LabMesh.Interop.Tests;

/// <summary>
/// Node's grpc-js interop server (interop_server.js) as child processes on free loopback ports: one
/// h2c, one TLS with a certificate from a throw-away CA. Starting is deferred to the first test that
/// asks, so a missing Node fails that test with a clear message instead of the whole class. The
/// servers also stop when their standard input closes (--exit_with_stdin), so a test host that dies
/// leaves none behind.
/// </summary>
public sealed class NodeServerFixture : IAsyncLifetime
{
    private const string ReadyPrefix = "node interop server listening on port ";
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly string _directory = Directory.CreateTempSubdirectory("labmesh-interop-node-").FullName;
    private readonly Lazy<TestCertificateAuthority> _authority = new(() => TestCertificateAuthority.Create("LabMesh interop test CA (node server)"));
    private readonly Lazy<Task<(ExternalProcess Process, int Port)>> _h2c;
    private readonly Lazy<Task<(ExternalProcess Process, int Port)>> _tls;

    public NodeServerFixture()
    {
        _h2c = new(() => StartAsync(tls: false));
        _tls = new(() => StartAsync(tls: true));
    }

    /// <summary>The CA that signed the TLS server's certificate (for LabMesh's client to trust).</summary>
    public TestCertificateAuthority Authority => _authority.Value;

    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>Starts the server on first use and returns its port; fails if it has died since.</summary>
    public async Task<int> PortAsync(bool tls)
    {
        await NodeGrpc.RequireAsync();
        var (process, port) = await (tls ? _tls : _h2c).Value.WaitAsync(StartTimeout);
        Assert.False(process.HasExited, $"The Node interop server exited.\n{process.Describe()}");
        return port;
    }

    private async Task<(ExternalProcess Process, int Port)> StartAsync(bool tls)
    {
        List<string> arguments = [NodeGrpc.ServerScript, "--port", "0", "--exit_with_stdin"];
        if (tls)
        {
            var issued = Authority.IssueServerCertificate();
            var cert = Path.Combine(_directory, "server.pem");
            var key = Path.Combine(_directory, "server.key");
            await File.WriteAllTextAsync(cert, issued.CertificatePem);
            await File.WriteAllTextAsync(key, issued.PrivateKeyPem);
            arguments.AddRange(["--use_tls", "--tls_cert", cert, "--tls_key", key]);
        }
        var process = ExternalProcess.Start(NodeGrpc.Node, arguments, NodeGrpc.ScriptDirectory);
        try
        {
            var line = await process.WaitForLineAsync(ReadyPrefix, StartTimeout);
            return (process, int.Parse(line.AsSpan(ReadyPrefix.Length).ToString().Split(' ')[0], CultureInfo.InvariantCulture));
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }

    /// <summary>The server's output so far, for failure messages.</summary>
    public string Output(bool tls)
    {
        var server = tls ? _tls : _h2c;
        return server.IsValueCreated && server.Value.IsCompletedSuccessfully
            ? $"({NodeGrpc.Versions})\n{server.Value.Result.Process.Describe()}"
            : "(not started)";
    }

    public async Task DisposeAsync()
    {
        try
        {
            foreach (var server in new[] { _h2c, _tls })
            {
                if (server.IsValueCreated && server.Value.IsCompletedSuccessfully)
                {
                    await server.Value.Result.Process.DisposeAsync();
                }
            }
        }
        finally
        {
            if (_authority.IsValueCreated)
            {
                _authority.Value.Dispose();
            }
            Directory.Delete(_directory, recursive: true);
        }
    }
}
