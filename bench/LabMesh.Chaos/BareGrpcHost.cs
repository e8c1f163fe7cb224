using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Grpc.AspNetCore.HealthChecks;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace LabMesh.Chaos;

/// <summary>
/// The start-up baseline: a bare grpc-dotnet host (<c>WebApplication.CreateBuilder</c>, <c>AddGrpc</c>, grpc.health.v1
/// through <c>AddGrpcHealthChecks</c> configured as ServiceDefaults configures it, one h2c endpoint on loopback, nothing of LabMesh), run as this executable's
/// <c>bare-grpc PORT</c> mode with server GC as the services run, and timed from its process start to SERVING
/// exactly as a replica is. It stops when its stdin closes.
/// </summary>
internal static class BareGrpcHost
{
    public const string Mode = "bare-grpc";

    public static async Task<int> ServeAsync(int port)
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port, listen => listen.Protocols = HttpProtocols.Http2));
        builder.Services.AddGrpc();
        // As ServiceDefaults' GrpcHealth sets it: "" maps every check (one that is always healthy), published from the start.
        builder.Services.AddGrpcHealthChecks().AddCheck("self", () => HealthCheckResult.Healthy());
        builder.Services.Configure<HealthCheckPublisherOptions>(o => o.Delay = TimeSpan.Zero);
        builder.Services.Configure<GrpcHealthChecksOptions>(o => o.Services.Map("", _ => true));
        var app = builder.Build();
        app.MapGrpcHealthChecksService();
        await app.StartAsync();
        await Console.In.ReadToEndAsync();
        await app.StopAsync();
        return 0;
    }

    /// <summary>Starts one, times it to SERVING, stops it.</summary>
    public static async Task<double?> TimeAsync(int port, CancellationToken cancellationToken)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("No process path.");
        var start = new ProcessStartInfo(self) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            start.ArgumentList.Add(typeof(BareGrpcHost).Assembly.Location);
        }

        // In an empty directory of its own, as a replica runs in its own under the state directory: the host watches
        // its content root for configuration changes, and a large working directory (the repository) slows its start.
        var directory = Directory.CreateTempSubdirectory("labmesh-chaos-bare-");
        start.WorkingDirectory = directory.FullName;
        start.ArgumentList.Add(Mode);
        start.ArgumentList.Add(port.ToString(CultureInfo.InvariantCulture));
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        start.Environment["DOTNET_gcServer"] = "1";
        using var process = Process.Start(start) ?? throw new InvalidOperationException("The bare host did not start.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            return await StartTimes.TimeToServingAsync($"http://127.0.0.1:{port}", process.Id, cancellationToken);
        }
        finally
        {
            process.StandardInput.Close();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill();
            }

            directory.Delete(recursive: true);
        }
    }
}
