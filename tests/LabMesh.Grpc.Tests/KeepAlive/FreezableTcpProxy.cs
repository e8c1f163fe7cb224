using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace LabMesh.Grpc.Tests.KeepAlive;

/// <summary>
/// A loopback TCP proxy to one server that reads the HTTP/2 frame headers going each way (counting PINGs)
/// and can freeze its connections: a frozen connection stays open but nothing crosses it any more, as
/// when the peer's host vanishes or a NAT entry is dropped. Connections accepted later forward normally.
/// </summary>
public sealed class FreezableTcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stop = new();
    private readonly ConcurrentQueue<Connection> _connections = new();
    private readonly Task _acceptLoop;

    public FreezableTcpProxy(IPEndPoint target)
    {
        _target = target;
        _listener.Start();
        _acceptLoop = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    public IReadOnlyList<Connection> Connections => [.. _connections];

    /// <summary>Stops forwarding on every connection open now, without closing any.</summary>
    public void FreezeExisting()
    {
        foreach (var connection in _connections)
        {
            connection.Frozen = true;
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Stop();
        foreach (var connection in _connections)
        {
            connection.Close();
        }
        try
        {
            await _acceptLoop.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var client = await _listener.AcceptSocketAsync(_stop.Token);
            var server = new Socket(SocketType.Stream, ProtocolType.Tcp);
            await server.ConnectAsync(_target, _stop.Token);
            var connection = new Connection(client, server);
            _connections.Enqueue(connection);
            connection.Start();
        }
    }

    public sealed class Connection
    {
        private readonly Socket _client;
        private readonly Socket _server;
        private readonly FrameCounter _fromClient = new(prefaceLength: 24);
        private readonly FrameCounter _fromServer = new(prefaceLength: 0);

        internal Connection(Socket client, Socket server)
        {
            _client = client;
            _server = server;
        }

        private volatile bool _frozen;

        public bool Frozen
        {
            get => _frozen;
            set => _frozen = value;
        }

        /// <summary>Completes with the time the client closed its end (Stopwatch ticks).</summary>
        public TaskCompletionSource<long> ClientClosed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>
        /// Keepalive PING frames the client sent: SocketsHttpHandler also pings while a response is arriving,
        /// to size its receive window, and marks those with negative payloads.
        /// </summary>
        public int PingsFromClient => _fromClient.NonNegativePings;

        /// <summary>PING frames (not acknowledgements) the server sent.</summary>
        public int PingsFromServer => _fromServer.Pings;

        internal void Start()
        {
            _ = PumpAsync(_client, _server, _fromClient, clientSide: true);
            _ = PumpAsync(_server, _client, _fromServer, clientSide: false);
        }

        internal void Close()
        {
            _client.Dispose();
            _server.Dispose();
        }

        private async Task PumpAsync(Socket from, Socket to, FrameCounter counter, bool clientSide)
        {
            var buffer = new byte[16 * 1024];
            try
            {
                while (true)
                {
                    var read = await from.ReceiveAsync(buffer);
                    if (read == 0)
                    {
                        break;
                    }
                    counter.Observe(buffer.AsSpan(0, read));
                    if (!Frozen)
                    {
                        await to.SendAsync(buffer.AsMemory(0, read));
                    }
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
            }
            if (clientSide)
            {
                ClientClosed.TrySetResult(Stopwatch.GetTimestamp());
            }
            if (!Frozen)
            {
                Close();
            }
        }
    }

    /// <summary>Follows HTTP/2 frame boundaries in a byte stream: 9-byte headers (length, type, flags, stream).</summary>
    private sealed class FrameCounter(int prefaceLength)
    {
        private readonly byte[] _header = new byte[9];
        private int _prefaceLeft = prefaceLength;
        private int _headerFilled;
        private int _payloadLeft;
        private int _pings;
        private int _nonNegativePings;
        private bool _pingPayloadNext;

        public int Pings => Volatile.Read(ref _pings);

        public int NonNegativePings => Volatile.Read(ref _nonNegativePings);

        public void Observe(ReadOnlySpan<byte> data)
        {
            while (data.Length > 0)
            {
                if (_prefaceLeft > 0)
                {
                    var skip = Math.Min(_prefaceLeft, data.Length);
                    _prefaceLeft -= skip;
                    data = data[skip..];
                }
                else if (_payloadLeft > 0)
                {
                    if (_pingPayloadNext)
                    {
                        // SocketsHttpHandler's round-trip-time PINGs carry negative payloads, keepalive PINGs non-negative ones.
                        _pingPayloadNext = false;
                        if ((data[0] & 0x80) == 0)
                        {
                            Interlocked.Increment(ref _nonNegativePings);
                        }
                    }
                    var skip = Math.Min(_payloadLeft, data.Length);
                    _payloadLeft -= skip;
                    data = data[skip..];
                }
                else
                {
                    var take = Math.Min(9 - _headerFilled, data.Length);
                    data[..take].CopyTo(_header.AsSpan(_headerFilled));
                    _headerFilled += take;
                    data = data[take..];
                    if (_headerFilled == 9)
                    {
                        _headerFilled = 0;
                        _payloadLeft = (_header[0] << 16) | (_header[1] << 8) | _header[2];
                        const byte Ping = 0x6, Ack = 0x1;
                        if (_header[3] == Ping && (_header[4] & Ack) == 0)
                        {
                            Interlocked.Increment(ref _pings);
                            _pingPayloadNext = _payloadLeft > 0;
                        }
                    }
                }
            }
        }
    }
}
