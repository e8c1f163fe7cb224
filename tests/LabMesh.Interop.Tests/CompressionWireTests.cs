using System.Buffers.Binary;
using System.Net;
using System.Net.Http.Headers;
using Google.Protobuf;
using Grpc.Testing;

namespace LabMesh.Interop.Tests;

/// <summary>
/// What the compressed interop cases cannot see through any client API: the compressed-flag byte of
/// each response message on the wire (PROTOCOL-HTTP2: Length-Prefixed-Message). Sent with a plain
/// HTTP/2 client so no gRPC runtime sits between the test and the bytes.
/// </summary>
public sealed class CompressionWireTests(LabMeshServerFixture server) : IClassFixture<LabMeshServerFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task UnaryCall_ResponseCompressed_SetsTheMessageFlagAsAsked(bool compressed)
    {
        var request = new SimpleRequest { ResponseSize = 314159, ResponseCompressed = new BoolValue { Value = compressed } };
        var (headers, messages) = await CallAsync("UnaryCall", request);
        var message = Assert.Single(messages);
        Assert.Equal(compressed, message.Compressed);
        if (compressed)
        {
            Assert.Equal("gzip", headers);
        }
        Assert.Equal(314159, SimpleResponse.Parser.ParseFrom(message.Decoded).Payload.Body.Length);
    }

    [Fact]
    public async Task StreamingOutputCall_CompressedPerMessage_SetsEachFlagAsAsked()
    {
        var request = new StreamingOutputCallRequest();
        request.ResponseParameters.Add(new ResponseParameters { Size = 31415, Compressed = new BoolValue { Value = true } });
        request.ResponseParameters.Add(new ResponseParameters { Size = 92653, Compressed = new BoolValue { Value = false } });
        var (_, messages) = await CallAsync("StreamingOutputCall", request);
        Assert.Equal([true, false], messages.Select(m => m.Compressed));
        Assert.Equal([31415, 92653], messages.Select(m => StreamingOutputCallResponse.Parser.ParseFrom(m.Decoded).Payload.Body.Length));
    }

    private async Task<(string? Encoding, List<WireMessage> Messages)> CallAsync(string method, IMessage request)
    {
        using var client = new HttpClient(new SocketsHttpHandler()) { Timeout = Timeout };
        var body = request.ToByteArray();
        var frame = new byte[5 + body.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)body.Length);
        body.CopyTo(frame, 5);
        using var message = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{server.H2c.Port}/grpc.testing.TestService/{method}")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(frame),
        };
        message.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        message.Headers.TryAddWithoutValidation("te", "trailers");
        message.Headers.TryAddWithoutValidation("grpc-accept-encoding", "gzip");
        using var response = await client.SendAsync(message).WaitAsync(Timeout);
        var bytes = await response.Content.ReadAsByteArrayAsync().WaitAsync(Timeout);
        Assert.True(response.TrailingHeaders.TryGetValues("grpc-status", out var status) && status.Single() == "0",
            $"grpc-status {string.Join(",", status ?? [])}, HTTP {(int)response.StatusCode}");
        var encoding = response.Headers.TryGetValues("grpc-encoding", out var values) ? values.Single() : null;

        var messages = new List<WireMessage>();
        for (var offset = 0; offset < bytes.Length;)
        {
            var flag = bytes[offset];
            var length = (int)BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(offset + 1));
            var payload = bytes.AsSpan(offset + 5, length).ToArray();
            offset += 5 + length;
            Assert.True(flag is 0 or 1, $"compressed flag {flag}");
            if (flag == 1)
            {
                Assert.Equal("gzip", encoding);
                using var gzip = new System.IO.Compression.GZipStream(new MemoryStream(payload), System.IO.Compression.CompressionMode.Decompress);
                using var plain = new MemoryStream();
                await gzip.CopyToAsync(plain);
                messages.Add(new WireMessage(true, plain.ToArray()));
            }
            else
            {
                messages.Add(new WireMessage(false, payload));
            }
        }
        return (encoding, messages);
    }

    private sealed record WireMessage(bool Compressed, byte[] Decoded);
}
