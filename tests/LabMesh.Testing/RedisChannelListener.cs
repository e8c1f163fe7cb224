using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Threading.Channels;

namespace LabMesh.Testing;

/// <summary>
/// A raw pub/sub subscriber on its own connection, independent of the code under test: every
/// message published on the channel, as bytes, in order.
/// </summary>
public sealed class RedisChannelListener : IAsyncDisposable
{
    private readonly TcpClient _client;
    private readonly Stream _stream;
    private readonly Channel<byte[]> _messages = Channel.CreateUnbounded<byte[]>();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _reading;

    private RedisChannelListener(TcpClient client, Stream stream)
    {
        _client = client;
        _stream = stream;
        _reading = Task.Run(ReadLoopAsync);
    }

    public ChannelReader<byte[]> Messages => _messages.Reader;

    /// <summary>Subscribes to <paramref name="channel"/> on the Redis at <paramref name="port"/>; returns once Redis confirmed.</summary>
    public static async Task<RedisChannelListener> StartAsync(int port, string channel)
    {
        var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port).WaitAsync(TimeSpan.FromSeconds(5));
        var stream = new BufferedStream(client.GetStream());
        var command = $"*2\r\n$9\r\nSUBSCRIBE\r\n${Encoding.UTF8.GetByteCount(channel)}\r\n{channel}\r\n";
        await stream.WriteAsync(Encoding.UTF8.GetBytes(command));
        await stream.FlushAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        var confirmation = await ReadArrayAsync(stream, timeout.Token);
        if (confirmation.Count != 3 || Encoding.UTF8.GetString(confirmation[0]) != "subscribe")
        {
            throw new IOException("Redis did not confirm the subscription.");
        }

        return new RedisChannelListener(client, stream);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _client.Dispose();
        try
        {
            await _reading;
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or OperationCanceledException or SocketException)
        {
            // The connection was closed under the reader: that is how it stops.
        }

        _stop.Dispose();
    }

    private async Task ReadLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var push = await ReadArrayAsync(_stream, _stop.Token);
            if (push.Count == 3 && Encoding.UTF8.GetString(push[0]) == "message")
            {
                _messages.Writer.TryWrite(push[2]);
            }
        }
    }

    /// <summary>One array reply of bulk strings (pub/sub pushes and confirmations); integers come back as their digits.</summary>
    private static async Task<List<byte[]>> ReadArrayAsync(Stream stream, CancellationToken cancellationToken)
    {
        var header = await RedisServer.ReadLineAsync(stream, cancellationToken);
        if (header[0] != '*')
        {
            throw new IOException($"Expected an array from Redis, got: {header}");
        }

        var count = int.Parse(header.AsSpan(1), CultureInfo.InvariantCulture);
        var items = new List<byte[]>(count);
        for (var i = 0; i < count; i++)
        {
            var line = await RedisServer.ReadLineAsync(stream, cancellationToken);
            if (line[0] == ':')
            {
                items.Add(Encoding.UTF8.GetBytes(line[1..]));
                continue;
            }

            var length = int.Parse(line.AsSpan(1), CultureInfo.InvariantCulture);
            var bytes = new byte[length + 2];
            await stream.ReadExactlyAsync(bytes, cancellationToken);
            items.Add(bytes[..length]);
        }

        return items;
    }
}
