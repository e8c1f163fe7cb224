using System.Net;
using Grpc.Core;
using LabMesh.Contracts.Requisition.V1;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.Bench.Servers;

/// <summary>
/// The baseline: grpc-dotnet with nothing of LabMesh. <c>AddGrpc()</c> without interceptors and
/// <c>MapGrpcService</c> of the Requisition contract's generated base class, whose one overridden method,
/// GetRequisitionStatus, answers every call with the same response message, parsed once from the bytes the
/// all-in-one host answered (so the two sides put the same bytes on the wire). The host is built like a
/// LabMesh service's: <c>WebApplication.CreateBuilder</c>, ASP.NET Core's per-request log lines at Warning
/// (as <c>AddServiceDefaults</c> sets them), one h2c (HTTP/2 only) endpoint on loopback with the same
/// keepalive pings, server GC from the environment.
/// </summary>
internal static class BareServer
{
    public const string Mode = "serve-bare";

    /// <summary>The child's side: serve on a free loopback port, print it, and stop when stdin closes.</summary>
    public static async Task<int> ServeAsync(string responseFile)
    {
        var response = GetRequisitionStatusResponse.Parser.ParseFrom(await File.ReadAllBytesAsync(responseFile));
        var builder = WebApplication.CreateBuilder();
        builder.Configuration["Logging:LogLevel:Microsoft.AspNetCore"] = "Warning";
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.Http2.KeepAlivePingDelay = TimeSpan.FromSeconds(60);
            kestrel.Limits.Http2.KeepAlivePingTimeout = TimeSpan.FromSeconds(20);
            kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http2);
        });
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(new CachedStatus(response));
        var app = builder.Build();
        app.MapGrpcService<CachedStatusService>();
        await app.StartAsync();
        Console.Out.WriteLine(ServerProcess.ReadyLine + app.Urls.Single());
        Console.Out.Flush();

        // The parent closes our stdin to stop us; if the parent dies, stdin closes too.
        await Console.In.ReadToEndAsync();
        await app.StopAsync();
        return 0;
    }

    internal sealed record CachedStatus(GetRequisitionStatusResponse Response);

    /// <summary>Every other method of the contract is grpc-dotnet's UNIMPLEMENTED.</summary>
    internal sealed class CachedStatusService(CachedStatus cached) : RequisitionService.RequisitionServiceBase
    {
        public override Task<GetRequisitionStatusResponse> GetRequisitionStatus(GetRequisitionStatusRequest request, ServerCallContext context) =>
            Task.FromResult(cached.Response);
    }
}
