using System.Globalization;

namespace LabMesh.Interop.Tests;

/// <summary>
/// An interop server written in another language, run as child processes on free loopback ports:
/// one h2c, one TLS with a certificate from a throw-away CA. Starting is deferred to the first test
/// that asks, so a missing runtime fails that test with a clear message instead of the whole class.
/// </summary>
public abstract class ExternalInteropServerFixture : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private readonly string _name;
    private readonly string _directory;
    private readonly Lazy<TestCertificateAuthority> _authority;
    private readonly Lazy<Task<(ExternalProcess Process, int Port)>> _h2c;
    private readonly Lazy<Task<(ExternalProcess Process, int Port)>> _tls;

    /// <param name="name">The implementation's name as its server prints it ("python", "node").</param>
    protected ExternalInteropServerFixture(string name)
    {
        _name = name;
        _directory = Directory.CreateTempSubdirectory($"labmesh-interop-{name}-").FullName;
        _authority = new(() => TestCertificateAuthority.Create($"LabMesh interop test CA ({name} server)"));
        _h2c = new(() => StartAsync(tls: false));
        _tls = new(() => StartAsync(tls: true));
    }

    /// <summary>The CA that signed the TLS server's certificate (for LabMesh's client to trust).</summary>
    public TestCertificateAuthority Authority => _authority.Value;

    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>Starts the server on first use and returns its port; fails if it has died since.</summary>
    public async Task<int> PortAsync(bool tls)
    {
        await RequireRuntimeAsync();
        var (process, port) = await (tls ? _tls : _h2c).Value.WaitAsync(StartTimeout);
        Assert.False(process.HasExited, $"The {_name} interop server exited.\n{process.Describe()}");
        return port;
    }

    /// <summary>The server's output so far, for failure messages.</summary>
    public string Output(bool tls)
    {
        var server = tls ? _tls : _h2c;
        return server.IsValueCreated && server.Value.IsCompletedSuccessfully
            ? $"{RuntimeDescription}{server.Value.Result.Process.Describe()}"
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

    /// <summary>Fails with an install hint when the runtime or its gRPC package is missing.</summary>
    protected abstract Task RequireRuntimeAsync();

    /// <summary>A line naming the runtime's versions, for failure messages (empty for none).</summary>
    protected virtual string RuntimeDescription => "";

    /// <summary>Starts the server process with these interop arguments (port, TLS files).</summary>
    private protected abstract ExternalProcess StartProcess(IReadOnlyList<string> serverArguments);

    private async Task<(ExternalProcess Process, int Port)> StartAsync(bool tls)
    {
        List<string> arguments = ["--port", "0"];
        if (tls)
        {
            var issued = Authority.IssueServerCertificate();
            var cert = Path.Combine(_directory, "server.pem");
            var key = Path.Combine(_directory, "server.key");
            await File.WriteAllTextAsync(cert, issued.CertificatePem);
            await File.WriteAllTextAsync(key, issued.PrivateKeyPem);
            arguments.AddRange(["--use_tls", "--tls_cert", cert, "--tls_key", key]);
        }
        var readyPrefix = $"{_name} interop server listening on port ";
        var process = StartProcess(arguments);
        try
        {
            var line = await process.WaitForLineAsync(readyPrefix, StartTimeout);
            return (process, int.Parse(line.AsSpan(readyPrefix.Length).ToString().Split(' ')[0], CultureInfo.InvariantCulture));
        }
        catch
        {
            await process.DisposeAsync();
            throw;
        }
    }
}
