using LabMesh.Testing;

namespace LabMesh.AllInOne.Tests;

/// <summary>
/// Where the all-in-one host listens when Kestrel's endpoints come from configuration (they replace --urls):
/// its services call each other on its first http:// endpoint, so one must exist.
/// </summary>
public sealed class ListenConfigurationTests
{
    [Fact]
    public async Task KestrelEndpointsWithoutAnH2cOne_ExitWithAClearError_InsteadOfCallingAPortNobodyListensOn()
    {
        var directory = Directory.CreateTempSubdirectory("labmesh-aio-tls-only-").FullName;
        try
        {
            await using var host = ChildProcess.Start("dotnet",
                [Repository.AllInOneAssembly(), $"--Kestrel:Endpoints:Tls:Url=https://127.0.0.1:{FreePort.Next()}"], directory);

            var exitCode = await host.WaitForExitAsync(TimeSpan.FromSeconds(60));

            Assert.NotEqual(0, exitCode);
            Assert.Contains("give it an http:// endpoint too", host.Describe(), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
