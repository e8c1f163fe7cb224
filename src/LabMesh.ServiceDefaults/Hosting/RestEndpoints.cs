using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Builder;
using Google.Protobuf.Reflection;
using Microsoft.AspNetCore.Grpc.JsonTranscoding;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace LabMesh.ServiceDefaults.Hosting;

/// <summary>
/// REST: every RPC with a <c>google.api.http</c> option in <c>protos/labmesh</c> is also JSON over HTTP, by gRPC JSON
/// transcoding (Microsoft.AspNetCore.Grpc.JsonTranscoding). A REST call runs the same service method through the same
/// interceptors as a gRPC call (bearer token and access matrix, limits, validation, audit); a gRPC error becomes the
/// HTTP status transcoding maps it to, with the <c>google.rpc.Status</c> (code, message and details) as the JSON body.
/// </summary>
/// <remarks>
/// Where: the transcoded routes answer on every endpoint, so on the h2c port too for an HTTP/2 client
/// (<c>curl --http2-prior-knowledge</c>). HTTP/1.1 clients need an endpoint of their own: without TLS Kestrel cannot
/// tell HTTP/1.1 from HTTP/2 on one port (it would take a cleartext HTTP/1.1-and-HTTP/2 endpoint as HTTP/1.1 only,
/// and grpcurl -plaintext, which speaks HTTP/2 with prior knowledge, would fail there). <see cref="UrlKey"/> names
/// that endpoint (HTTP/1.1); the gRPC URLs stay HTTP/2 only.
/// </remarks>
public static class RestEndpoints
{
    /// <summary>The HTTP/1.1 URL REST clients call (e.g. <c>http://127.0.0.1:5001</c>); unset, REST only over HTTP/2.</summary>
    public const string UrlKey = "LabMesh:Rest:Url";

    /// <summary>The name of the REST endpoint among Kestrel's endpoints (<c>Kestrel:Endpoints:Rest</c>).</summary>
    public const string EndpointName = "Rest";

    /// <summary>ASP.NET Core's default listen URL, when neither <c>--urls</c> nor Kestrel:Endpoints names one.</summary>
    private const string AspNetCoreDefaultUrl = "http://localhost:5000";

    /// <summary>
    /// JSON transcoding with proto3's JSON mapping as grpcurl and <c>buf curl</c> print it: int64 as strings, enums by name,
    /// camelCase field names (proto field names are read too).
    /// </summary>
    public static IGrpcServerBuilder AddLabMeshJsonTranscoding(this IGrpcServerBuilder grpc)
    {
        ArgumentNullException.ThrowIfNull(grpc);
        return grpc.AddJsonTranscoding(options =>
        {
            options.JsonSettings.WriteInt64sAsStrings = true;
            // An error's details (google.rpc.BadRequest, PreconditionFailure, ResourceInfo, ...) are Any messages: the
            // body can name and write only the types registered here.
            options.TypeRegistry = TypeRegistry.FromFiles(Google.Rpc.ErrorDetailsReflection.Descriptor);
        });
    }

    /// <summary>
    /// When <see cref="UrlKey"/> is set, Kestrel listens there too (added to <c>--urls</c>, or to Kestrel:Endpoints
    /// when those are configured, as they replace <c>--urls</c>), and <see cref="Protocols"/> makes that endpoint
    /// HTTP/1.1 and every other one h2c. Returns the REST port, or null when REST is served over HTTP/2 only.
    /// </summary>
    internal static int? AddRestListener(WebApplicationBuilder builder)
    {
        var rest = builder.Configuration[UrlKey];
        if (string.IsNullOrWhiteSpace(rest))
        {
            return null;
        }

        var port = Port(rest);
        if (builder.Configuration.GetSection("Kestrel:Endpoints").GetChildren().Any())
        {
            builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
            {
                [$"Kestrel:Endpoints:{EndpointName}:Url"] = rest,
                [$"Kestrel:Endpoints:{EndpointName}:Protocols"] = "Http1",
            });
        }
        else
        {
            builder.WebHost.UseUrls($"{builder.Configuration["urls"] ?? AspNetCoreDefaultUrl};{rest}");
        }

        return port;
    }

    /// <summary>HTTP/1.1 for the endpoint on the REST port, HTTP/2 (h2c, prior knowledge) for every other one.</summary>
    internal static HttpProtocols Protocols(ListenOptions listen, int? restPort) =>
        restPort is { } port && listen.IPEndPoint?.Port == port ? HttpProtocols.Http1 : HttpProtocols.Http2;

    private static int Port(string url)
    {
        // Kestrel's wildcard hosts (http://+:5001, http://*:5001) are no host Uri reads.
        var normalized = url.Replace("://+", "://localhost", StringComparison.Ordinal).Replace("://*", "://localhost", StringComparison.Ordinal);
        if (!Uri.TryCreate(normalized, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.Port == 0)
        {
            throw new InvalidOperationException($"{UrlKey} must be an http:// URL with a fixed port, such as http://127.0.0.1:5001 (it was '{url}').");
        }

        return uri.Port;
    }

    /// <summary>Whether an endpoint is a transcoded REST route (its body is JSON, not gRPC frames).</summary>
    internal static bool IsRest(Microsoft.AspNetCore.Http.Endpoint endpoint) =>
        endpoint.Metadata.GetMetadata<GrpcJsonTranscodingMetadata>() is not null;
}
