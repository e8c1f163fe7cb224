using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using Google.Rpc;

namespace LabMesh.ServiceDefaults.Tests.Hosting;

/// <summary>
/// A plain HTTP/2 client that sends exactly the bytes a test chooses, to play a broken or hostile gRPC
/// client that no generated stub can be.
/// </summary>
public sealed class RawHttp2 : IDisposable
{
    private readonly HttpMessageInvoker _invoker = new(new SocketsHttpHandler { UseProxy = false }, disposeHandler: true);

    public sealed record Response(HttpStatusCode StatusCode, HttpResponseHeaders Headers, HttpResponseHeaders Trailers)
    {
        /// <summary>The grpc-status wherever it came: trailers, or the headers of a Trailers-Only answer.</summary>
        public int? GrpcStatus => int.TryParse(Value("grpc-status"), out var code) ? code : null;

        public string? GrpcMessage => Value("grpc-message");

        /// <summary>The google.rpc.Status of grpc-status-details-bin, or null.</summary>
        public Google.Rpc.Status? Details => Value("grpc-status-details-bin") is { } base64
            ? Google.Rpc.Status.Parser.ParseFrom(Convert.FromBase64String(base64.PadRight(base64.Length + ((4 - (base64.Length % 4)) % 4), '=')))
            : null;

        public BadRequest? BadRequest => Details?.Details.Select(d => d.TryUnpack<BadRequest>(out var b) ? b : null).FirstOrDefault(b => b is not null);

        private string? Value(string name) =>
            Trailers.TryGetValues(name, out var t) ? string.Join(",", t)
            : Headers.TryGetValues(name, out var h) ? string.Join(",", h)
            : null;
    }

    public static byte[] Frame(byte[] payload, byte flag = 0)
    {
        var frame = new byte[5 + payload.Length];
        frame[0] = flag;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)payload.Length);
        payload.CopyTo(frame, 5);
        return frame;
    }

    public async Task<Response> PostAsync(string url, byte[] body, IEnumerable<(string Name, string Value)>? headers = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, url)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(body),
        };
        request.Content.Headers.TryAddWithoutValidation("content-type", "application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        foreach (var (name, value) in headers ?? [])
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }

        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        using var response = await _invoker.SendAsync(request, cts.Token);
        await response.Content.ReadAsByteArrayAsync(cts.Token);
        return new Response(response.StatusCode, response.Headers, response.TrailingHeaders);
    }

    public void Dispose() => _invoker.Dispose();
}
