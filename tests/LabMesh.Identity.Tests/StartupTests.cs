using System.Diagnostics;
using System.Net;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Health.V1;
using Grpc.Net.Client;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.ServiceDefaults.Hosting;
using LabMesh.Security.Identity;
using LabMesh.ServiceRequest;
using LabMesh.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LabMesh.Identity.Tests;

/// <summary>
/// Development without friction, production without holes: a host without keys starts only on loopback
/// and only where a development key is allowed; the development key outlives a restart; reflection can
/// be switched off while health stays open.
/// </summary>
public sealed class StartupTests : IAsyncLifetime
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);
    private readonly string _dataDirectory = Directory.CreateTempSubdirectory("labmesh-identity-").FullName;
    private readonly List<WebApplication> _apps = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var app in _apps)
        {
            await app.DisposeAsync();
        }

        Directory.Delete(_dataDirectory, recursive: true);
    }

    [Fact]
    public async Task NonLoopbackAddress_WithoutKeys_RefusesToStart_EvenWhereADevelopmentKeyIsAllowed()
    {
        var app = Build(IPAddress.Any, "Development", new() { ["LabMesh:Security:DevelopmentKeys"] = "true" });

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync().WaitAsync(Timeout));

        Assert.Contains("refuses to start without token keys", error.Message, StringComparison.Ordinal);
        Assert.Contains("not loopback", error.Message, StringComparison.Ordinal);
        Assert.Contains("LabMesh:Security:Keys", error.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dataDirectory, SecurityKeys.DevelopmentKeyFileName)));
    }

    [Fact]
    public async Task ServiceAlone_OnLoopback_OutsideDevelopment_WithoutKeys_RefusesToStart()
    {
        var app = Build(IPAddress.Loopback, "Production", []);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => app.StartAsync().WaitAsync(Timeout));

        Assert.Contains("not a development configuration", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NonLoopbackAddress_WithKeys_Starts()
    {
        var app = Build(IPAddress.Any, "Production", new(TestCaller.HostSettings));

        await app.StartAsync().WaitAsync(Timeout);

        var port = new Uri(app.Urls.Single().Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal).Replace("[::]", "127.0.0.1", StringComparison.Ordinal)).Port;
        using var channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        var listed = await new ServiceRequestService.ServiceRequestServiceClient(TestCaller.InvokerAs(channel, "keys-team", CallerRole.Clinician))
            .ListServiceRequestsAsync(new ListServiceRequestsRequest(), deadline: DateTime.UtcNow + Timeout);
        Assert.Empty(listed.ServiceRequests);
    }

    [Theory]
    [InlineData("not a pem at all")]
    [InlineData("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----")]
    public async Task UnreadableKey_RefusesToStart_NamingTheSetting(string pem)
    {
        var app = Build(IPAddress.Loopback, "Production", new() { ["LabMesh:Security:Keys:0:Id"] = "k1", ["LabMesh:Security:Keys:0:PublicKeyPem"] = pem });

        var error = await Assert.ThrowsAsync<ArgumentException>(() => app.StartAsync().WaitAsync(Timeout));

        Assert.Contains("LabMesh:Security:Keys:0", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DevelopmentKey_IsMadeOnLoopback_AndItsTokensOutliveARestart()
    {
        var first = Build(IPAddress.Loopback, "Development", []);
        await first.StartAsync().WaitAsync(Timeout);
        var keys = first.Services.GetRequiredService<SecurityKeys>();
        var file = Path.Combine(_dataDirectory, SecurityKeys.DevelopmentKeyFileName);
        Assert.Equal(file, keys.DevelopmentKeyFile);
        Assert.True(File.Exists(file));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        }

        var token = keys.Signing!.Mint(new TokenIdentity("dev-team", CallerRole.Clinician, "dev", null), keys.Issuer, keys.Audience, TimeSpan.FromHours(1));
        await ListAsync(first, token);
        await first.StopAsync().WaitAsync(Timeout);

        var second = Build(IPAddress.Loopback, "Development", []);
        await second.StartAsync().WaitAsync(Timeout);

        await ListAsync(second, token);
        Assert.Equal(keys.Signing.KeyId, second.Services.GetRequiredService<SecurityKeys>().Signing!.KeyId);
    }

    [Fact]
    public async Task HealthIsOpen_ReflectionIsOpen_AndReflectionCanBeSwitchedOff()
    {
        var on = Build(IPAddress.Loopback, "Production", new(TestCaller.HostSettings));
        var off = Build(IPAddress.Loopback, "Production", new(TestCaller.HostSettings) { ["LabMesh:Security:Reflection"] = "false" });
        await on.StartAsync().WaitAsync(Timeout);
        await off.StartAsync().WaitAsync(Timeout);
        using var onChannel = GrpcChannel.ForAddress(on.Urls.Single());
        using var offChannel = GrpcChannel.ForAddress(off.Urls.Single());

        var health = await new Health.HealthClient(offChannel).CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow + Timeout);
        var listed = await ListServicesAsync(onChannel);
        var switchedOff = await Assert.ThrowsAsync<RpcException>(() => ListServicesAsync(offChannel));

        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
        Assert.NotEmpty(listed);
        Assert.Equal(StatusCode.Unimplemented, switchedOff.StatusCode);
    }

    [Fact]
    public async Task AllInOne_BoundToEveryInterfaceWithoutKeys_ExitsWithAClearError()
    {
        var start = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = _dataDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Repository.AllInOneAssembly());
        start.ArgumentList.Add("--urls");
        start.ArgumentList.Add($"http://0.0.0.0:{FreePort.Next()}");
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(Timeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }

        var output = await stdout + await stderr;
        Assert.NotEqual(0, process.ExitCode);
        Assert.Contains("refuses to start without token keys", output, StringComparison.Ordinal);
        Assert.DoesNotContain("clinician: ", output, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_dataDirectory, "data", SecurityKeys.DevelopmentKeyFileName)));
    }

    private WebApplication Build(IPAddress address, string environment, Dictionary<string, string?> settings)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { EnvironmentName = environment });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>(settings)
        {
            ["LabMesh:Storage:DataDirectory"] = _dataDirectory,
        });
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(address, 0, listen => listen.Protocols = HttpProtocols.Http2));
        builder.AddServiceDefaults();
        builder.Services.AddServiceRequestService();
        var app = builder.Build();
        app.MapServiceRequestService();
        app.MapDefaultEndpoints();
        _apps.Add(app);
        return app;
    }

    private static async Task ListAsync(WebApplication app, string token)
    {
        using var channel = GrpcChannel.ForAddress(app.Urls.Single());
        var invoker = channel.CreateCallInvoker().Intercept(metadata =>
        {
            metadata.Add("authorization", "Bearer " + token);
            return metadata;
        });
        await new ServiceRequestService.ServiceRequestServiceClient(invoker)
            .ListServiceRequestsAsync(new ListServiceRequestsRequest(), deadline: DateTime.UtcNow + Timeout);
    }

    /// <summary>grpc.reflection.v1 ListServices over a raw bidi call: request field 7 (list_services), empty.</summary>
    private static async Task<byte[]> ListServicesAsync(GrpcChannel channel)
    {
        var raw = Marshallers.Create<byte[]>(bytes => bytes, bytes => bytes);
        var method = new Method<byte[], byte[]>(MethodType.DuplexStreaming, "grpc.reflection.v1.ServerReflection", "ServerReflectionInfo", raw, raw);
        using var call = channel.CreateCallInvoker().AsyncDuplexStreamingCall(method, null, new CallOptions(deadline: DateTime.UtcNow + Timeout));
        await call.RequestStream.WriteAsync([0x3A, 0x00]);
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        return call.ResponseStream.Current;
    }
}
