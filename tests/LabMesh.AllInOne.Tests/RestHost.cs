using LabMesh.Security.Identity;
using LabMesh.Testing;

namespace LabMesh.AllInOne.Tests;

/// <summary>
/// The all-in-one host as its own process (the README's run command), gRPC h2c on one port and REST (HTTP/1.1) on
/// <c>LabMesh:Rest:Url</c>, trusting TestCaller's key. One per test class.
/// </summary>
public sealed class RestHost : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);
    private readonly string _workingDirectory = Directory.CreateTempSubdirectory("labmesh-aio-rest-").FullName;
    private ChildProcess? _host;

    /// <summary>The h2c gRPC address.</summary>
    public string GrpcAddress { get; private set; } = null!;

    /// <summary>The HTTP/1.1 REST address.</summary>
    public string RestAddress { get; private set; } = null!;

    public ChildProcess Process => _host!;

    public async Task InitializeAsync()
    {
        var grpcPort = FreePort.Next();
        var restPort = FreePort.Next();
        GrpcAddress = $"http://127.0.0.1:{grpcPort}";
        RestAddress = $"http://127.0.0.1:{restPort}";
        _host = ChildProcess.Start("dotnet",
            [Repository.AllInOneAssembly(), "--urls", GrpcAddress, "--LabMesh:Rest:Url", RestAddress],
            _workingDirectory,
            new Dictionary<string, string>
            {
                ["LabMesh__Security__SigningKeyId"] = TestCaller.KeyId,
                ["LabMesh__Security__SigningKeyPem"] = TestCaller.Key.ExportPrivateKeyPem(),
            });
        // The welcome's last line: the host serves.
        await _host.WaitForLineAsync(line => line.Contains("RequisitionService/ListRequisitions", StringComparison.Ordinal), StartTimeout, "its welcome");
    }

    public async Task DisposeAsync()
    {
        if (_host is not null)
        {
            var stderr = _host.StandardError;
            var output = _host.StandardOutput;
            await _host.DisposeAsync();
            Assert.DoesNotContain(output.Concat(stderr), line => line.StartsWith("fail:", StringComparison.Ordinal) || line.StartsWith("crit:", StringComparison.Ordinal));
        }

        Directory.Delete(_workingDirectory, recursive: true);
    }

    /// <summary>A token of TestCaller's key for team demo.</summary>
    public static string Token(CallerRole role, string? partner = null) =>
        TestCaller.Token("demo", role, partner is null ? "rest-user" : $"partner-{partner}", partner);
}
