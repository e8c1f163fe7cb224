using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Configuration;
using Yarp.ReverseProxy.Forwarder;

namespace LabMesh.Bench.Gateway;

/// <summary>
/// <c>--candidate yarp</c>: a gateway that multiplexes calls on its upstream HTTP/2 connections (YARP 2.3.0), in
/// front of the two Requisition replicas only, measured against nginx in the same rounds (issue 22 item 4). It is
/// what nginx's gRPC proxy is not (one upstream connection per call in flight) and nothing more: one route, the
/// replicas round-robin, h2c on both sides, no logging, no retries, no health checks. A child process of the bench
/// (this executable, <c>yarp-candidate PORT HOST:PORT,HOST:PORT</c>) with the services' GC and thread-pool
/// settings, started like the bare host and stopped when its stdin closes.
/// </summary>
internal static class YarpCandidate
{
    public const string Mode = "yarp-candidate";

    /// <summary>The services' runtime settings (server GC; no thread-pool spinning, services/Directory.Build.props).</summary>
    public static readonly KeyValuePair<string, string>[] Environment =
    [
        KeyValuePair.Create("DOTNET_gcServer", "1"),
        KeyValuePair.Create("DOTNET_ThreadPool_UnfairSemaphoreSpinLimit", "0"),
    ];

    /// <summary>The child's side: proxy /labmesh.requisition.v1.* to the replicas until stdin closes.</summary>
    public static async Task<int> ServeAsync(int port, string replicas)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port, listen => listen.Protocols = HttpProtocols.Http2));
        var destinations = replicas.Split(',').Select((address, i) => (Id: "replica-" + (i + 1), Address: "http://" + address))
            .ToDictionary(d => d.Id, d => new DestinationConfig { Address = d.Address });
        builder.Services.AddReverseProxy().LoadFromMemory(
            [new RouteConfig { RouteId = "requisition", ClusterId = "requisition", Match = new RouteMatch { Path = "/labmesh.requisition.v1.RequisitionService/{**method}" } }],
            [new ClusterConfig
            {
                ClusterId = "requisition",
                LoadBalancingPolicy = "RoundRobin",
                // h2c with prior knowledge; every call of a destination on one connection, as many streams as the replica allows.
                HttpRequest = new ForwarderRequestConfig { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact },
                Destinations = destinations,
            }]);
        var app = builder.Build();
        app.MapGet("/", () => Results.Text("ok"));
        app.MapReverseProxy();
        await app.StartAsync();
        await Console.In.ReadToEndAsync();
        await app.StopAsync();
        return 0;
    }
}
