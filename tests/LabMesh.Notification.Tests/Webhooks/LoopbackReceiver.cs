using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace LabMesh.Notification.Tests.Webhooks;

/// <summary>
/// A webhook receiver on a loopback port that speaks just enough HTTP/1.1 for one request: it records
/// the request's headers and body and answers with a fixed status.
/// </summary>
internal sealed class LoopbackReceiver : IAsyncDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private readonly TcpListener _listener;
    private readonly int _status;
    private int _accepted;

    public LoopbackReceiver(IPAddress address, int status = 204)
    {
        _listener = new TcpListener(address, 0);
        _listener.Start();
        _status = status;
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
    }

    public int Port { get; }

    /// <summary>How many connections were accepted so far (by <see cref="ReceiveAsync"/>).</summary>
    public int Accepted => _accepted;

    /// <summary>Whether a connection is waiting to be accepted.</summary>
    public bool HasPendingConnection => _listener.Pending();

    /// <summary>Accepts one connection, reads one request and answers it.</summary>
    public async Task<ReceivedRequest> ReceiveAsync()
    {
        using var timeout = new CancellationTokenSource(Timeout);
        using var client = await _listener.AcceptTcpClientAsync(timeout.Token);
        Interlocked.Increment(ref _accepted);
        var stream = client.GetStream();
        var buffer = new List<byte>();
        var chunk = new byte[4096];
        int headEnd;
        while ((headEnd = IndexOfHeadEnd(buffer)) < 0)
        {
            var read = await stream.ReadAsync(chunk, timeout.Token);
            if (read == 0)
            {
                throw new IOException("The client closed the connection before the end of the request head.");
            }
            buffer.AddRange(chunk.AsSpan(0, read));
        }
        var lines = Encoding.ASCII.GetString([.. buffer.Take(headEnd)]).Split("\r\n");
        var headers = new HeaderDictionary();
        foreach (var line in lines.Skip(1))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            headers.Append(line[..colon].Trim(), line[(colon + 1)..].Trim());
        }
        var length = headers.ContentLength ?? 0;
        var body = buffer.Skip(headEnd + 4).ToList();
        while (body.Count < length)
        {
            var read = await stream.ReadAsync(chunk, timeout.Token);
            if (read == 0)
            {
                throw new IOException("The client closed the connection before the end of the body.");
            }
            body.AddRange(chunk.AsSpan(0, read));
        }
        var response = Encoding.ASCII.GetBytes($"HTTP/1.1 {_status} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        await stream.WriteAsync(response, timeout.Token);
        return new ReceivedRequest(lines[0], headers, [.. body]);
    }

    public ValueTask DisposeAsync()
    {
        _listener.Stop();
        _listener.Dispose();
        return ValueTask.CompletedTask;
    }

    private static int IndexOfHeadEnd(List<byte> buffer)
    {
        for (var i = 0; i + 3 < buffer.Count; i++)
        {
            if (buffer[i] == '\r' && buffer[i + 1] == '\n' && buffer[i + 2] == '\r' && buffer[i + 3] == '\n')
            {
                return i;
            }
        }
        return -1;
    }
}

internal sealed record ReceivedRequest(string RequestLine, IHeaderDictionary Headers, byte[] Body);
