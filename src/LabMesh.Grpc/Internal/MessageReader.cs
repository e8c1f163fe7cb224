using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using Google.Protobuf;

namespace Grpc.Core.Internal;

/// <summary>
/// Reads length-prefixed gRPC messages from a pipe. The same reader serves both sides; the side
/// decides the status a malformed message earns: a server blames the caller (INVALID_ARGUMENT),
/// a client blames the server (INTERNAL).
/// </summary>
internal sealed class MessageReader
{
    private readonly PipeReader _reader;
    private readonly int? _maxMessageSize;
    private readonly string? _encoding;
    private readonly bool _isServer;
    private readonly PayloadContext _payload = new();

    public MessageReader(PipeReader reader, int? maxMessageSize, string? encoding, bool isServer)
    {
        _reader = reader;
        _maxMessageSize = maxMessageSize;
        _encoding = encoding is null or GrpcProtocol.IdentityEncoding ? null : encoding;
        _isServer = isServer;
    }

    /// <summary>Reads the next message; returns false at a clean end of stream.</summary>
    public async ValueTask<(bool Ok, T Message)> ReadAsync<T>(Func<DeserializationContext, T> deserializer, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (result.IsCanceled)
            {
                throw new OperationCanceledException(cancellationToken);
            }
            var buffer = result.Buffer;
            if (TryParse(ref buffer, out var compressed, out var payload))
            {
                T message;
                try
                {
                    message = Deserialize(deserializer, compressed, payload);
                }
                finally
                {
                    _reader.AdvanceTo(buffer.Start);
                }
                return (true, message);
            }
            if (result.IsCompleted)
            {
                var leftover = buffer.Length;
                _reader.AdvanceTo(buffer.End);
                if (leftover == 0)
                {
                    return (false, default!);
                }
                throw Error(_isServer ? StatusCode.InvalidArgument : StatusCode.Internal,
                    $"Incomplete message: the stream ended {leftover} byte(s) into a frame.");
            }
            _reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private bool TryParse(ref ReadOnlySequence<byte> buffer, out bool compressed, out ReadOnlySequence<byte> payload)
    {
        compressed = false;
        payload = default;
        if (buffer.Length < GrpcProtocol.HeaderSize)
        {
            return false;
        }
        Span<byte> header = stackalloc byte[GrpcProtocol.HeaderSize];
        buffer.Slice(0, GrpcProtocol.HeaderSize).CopyTo(header);
        var flag = header[0];
        if (flag > 1)
        {
            throw Error(_isServer ? StatusCode.InvalidArgument : StatusCode.Internal, $"Invalid compressed-flag byte {flag} in a message frame.");
        }
        var length = BinaryPrimitives.ReadUInt32BigEndian(header[1..]);
        if (length > int.MaxValue || (_maxMessageSize is { } max && length > max))
        {
            throw Error(StatusCode.ResourceExhausted,
                $"Received message exceeds the maximum configured message size ({length} > {_maxMessageSize}).");
        }
        if (buffer.Length < GrpcProtocol.HeaderSize + length)
        {
            return false;
        }
        compressed = flag == 1;
        payload = buffer.Slice(GrpcProtocol.HeaderSize, length);
        buffer = buffer.Slice(payload.End);
        return true;
    }

    private T Deserialize<T>(Func<DeserializationContext, T> deserializer, bool compressed, ReadOnlySequence<byte> payload)
    {
        if (compressed)
        {
            if (_encoding is null)
            {
                throw Error(_isServer ? StatusCode.InvalidArgument : StatusCode.Internal,
                    "A message has the compressed flag set but the call declared no grpc-encoding.");
            }
            try
            {
                payload = new ReadOnlySequence<byte>(GrpcCompression.Decompress(_encoding, payload, _maxMessageSize));
            }
            catch (GrpcCompression.MessageTooLargeException)
            {
                throw Error(StatusCode.ResourceExhausted, "Received message exceeds the maximum configured message size after decompression.");
            }
            catch (InvalidDataException ex)
            {
                throw Error(StatusCode.Internal, $"Could not decompress a {_encoding} message.", ex);
            }
        }
        _payload.Set(payload);
        try
        {
            return deserializer(_payload);
        }
        catch (Exception ex) when (ex is InvalidProtocolBufferException or InvalidOperationException or ArgumentException or FormatException)
        {
            throw Error(_isServer ? StatusCode.InvalidArgument : StatusCode.Internal,
                _isServer ? "The request message could not be deserialized." : "The response message could not be deserialized.", ex);
        }
        finally
        {
            _payload.Set(default);
        }
    }

    private static RpcException Error(StatusCode code, string detail, Exception? inner = null) => new(new Status(code, detail, inner));

    private sealed class PayloadContext : DeserializationContext
    {
        private ReadOnlySequence<byte> _payload;

        public void Set(ReadOnlySequence<byte> payload) => _payload = payload;

        public override int PayloadLength => (int)_payload.Length;

        public override byte[] PayloadAsNewBuffer() => _payload.ToArray();

        public override ReadOnlySequence<byte> PayloadAsReadOnlySequence() => _payload;
    }
}
