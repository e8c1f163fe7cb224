using System.Net;

namespace LabMesh.Bench.Load;

/// <summary>
/// The baseline client: <see cref="HttpClient"/> on <see cref="SocketsHttpHandler"/> (HTTP/2 with prior
/// knowledge) posting pre-framed request bytes and reading the framed response without parsing
/// protobuf: it only walks the 5-byte prefixes to count messages, then checks <c>grpc-status</c>.
/// </summary>
internal sealed class RawHttpLoad : IAsyncDisposable
{
    private readonly HttpClient[] _clients;

    public RawHttpLoad(int connections)
    {
        _clients = new HttpClient[connections];
        for (var i = 0; i < connections; i++)
        {
            // One handler per client: one connection pool, so one HTTP/2 connection each.
            var handler = new SocketsHttpHandler
            {
                UseProxy = false,
                UseCookies = false,
                AllowAutoRedirect = false,
                AutomaticDecompression = DecompressionMethods.None,
                EnableMultipleHttp2Connections = true,
                PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            };
            _clients[i] = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
        }
    }

    /// <summary>One call function per worker; with <paramref name="gaps"/>, each message's arrival is timed.</summary>
    public IReadOnlyList<BenchCall> Calls(Uri uri, byte[] framedRequest, int concurrency, int expectedMessages, MessageGaps? gaps = null) =>
        [.. Enumerable.Range(0, concurrency).Select(i => Call(_clients[i % _clients.Length], uri, framedRequest, expectedMessages, gaps?.ForWorker(i)))];

    private static BenchCall Call(HttpClient client, Uri uri, byte[] framedRequest, int expectedMessages, MessageGaps.Clock? clock)
    {
        var buffer = new byte[64 * 1024];
        return async () =>
        {
            clock?.CallStarted();
            using var request = new HttpRequestMessage(HttpMethod.Post, uri)
            {
                Version = HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                Content = new ByteArrayContent(framedRequest),
            };
            request.Content.Headers.TryAddWithoutValidation("content-type", "application/grpc");
            request.Headers.TryAddWithoutValidation("te", "trailers");

            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            if (response.StatusCode != HttpStatusCode.OK)
            {
                throw new InvalidOperationException($"HTTP {(int)response.StatusCode}.");
            }
            int messages;
            using (var body = await response.Content.ReadAsStreamAsync())
            {
                messages = await CountMessagesAsync(body, buffer, clock);
            }
            if (!response.TrailingHeaders.TryGetValues("grpc-status", out var status) || status.FirstOrDefault() != "0")
            {
                throw new InvalidOperationException("No grpc-status: 0 trailer.");
            }
            return messages == expectedMessages
                ? messages
                : throw new InvalidOperationException($"{messages} messages, expected {expectedMessages}.");
        };
    }

    /// <summary>Reads the body to its end, counting length-prefixed messages (a message counts once its last byte is in).</summary>
    private static async Task<int> CountMessagesAsync(Stream body, byte[] buffer, MessageGaps.Clock? clock)
    {
        var messages = 0;
        var headerFilled = 0;
        uint length = 0;
        long remaining = 0; // bytes of the current message's body still to skip
        int read;
        while ((read = await body.ReadAsync(buffer)) > 0)
        {
            var offset = 0;
            while (offset < read)
            {
                if (remaining > 0)
                {
                    var skip = (int)Math.Min(remaining, read - offset);
                    remaining -= skip;
                    offset += skip;
                    if (remaining == 0)
                    {
                        clock?.MessageReceived();
                    }
                    continue;
                }
                // Prefix byte 0 is the compressed flag; bytes 1-4 the big-endian length.
                if (headerFilled > 0)
                {
                    length = (length << 8) | buffer[offset];
                }
                offset++;
                if (++headerFilled == 5)
                {
                    remaining = length;
                    length = 0;
                    headerFilled = 0;
                    messages++;
                    if (remaining == 0)
                    {
                        clock?.MessageReceived();
                    }
                }
            }
        }
        if (headerFilled != 0 || remaining != 0)
        {
            throw new InvalidOperationException("The response body ends inside a message.");
        }
        return messages;
    }

    public ValueTask DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }
        return ValueTask.CompletedTask;
    }
}
