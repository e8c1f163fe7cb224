using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;

namespace LabMesh.Grpc.Tests.Runtime;

/// <summary>
/// A plain HTTP/2 client for protocol tests: sends exactly the bytes and headers a test chooses,
/// so it can play a broken or hostile gRPC client.
/// </summary>
public sealed class RawHttp2 : IDisposable
{
    private readonly HttpMessageInvoker _invoker = new(new SocketsHttpHandler { UseProxy = false }, disposeHandler: true);

    public sealed record Response(HttpStatusCode StatusCode, HttpResponseHeaders Headers, string? ContentType, byte[] Body, HttpResponseHeaders Trailers)
    {
        public string? Header(string name) => Headers.TryGetValues(name, out var v) ? string.Join(",", v) : null;

        public string? Trailer(string name) => Trailers.TryGetValues(name, out var v) ? string.Join(",", v) : null;

        /// <summary>The grpc-status wherever it came: trailers, or the headers of a Trailers-Only answer.</summary>
        public string? GrpcStatus => Trailer("grpc-status") ?? Header("grpc-status");

        public string? GrpcMessage => Trailer("grpc-message") ?? Header("grpc-message");
    }

    public static byte[] Frame(byte[] payload, bool compressed = false)
    {
        var frame = new byte[5 + payload.Length];
        frame[0] = compressed ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)payload.Length);
        payload.CopyTo(frame, 5);
        return frame;
    }

    public async Task<Response> PostAsync(string url, byte[] body, string? contentType = "application/grpc", IEnumerable<(string Name, string Value)>? headers = null, TimeSpan? timeout = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, url)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(body),
        };
        if (contentType is not null)
        {
            request.Content.Headers.TryAddWithoutValidation("content-type", contentType);
        }
        request.Headers.TryAddWithoutValidation("te", "trailers");
        foreach (var (name, value) in headers ?? [])
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        using var response = await _invoker.SendAsync(request, cts.Token);
        var bytes = await response.Content.ReadAsByteArrayAsync(cts.Token);
        return new Response(response.StatusCode, response.Headers, response.Content.Headers.ContentType?.ToString(), bytes, response.TrailingHeaders);
    }

    public void Dispose() => _invoker.Dispose();
}
