using System.Buffers;
using System.Buffers.Binary;
using System.IO.Compression;

namespace Grpc.Core.Internal;

/// <summary>
/// Serializes one message into a length-prefixed frame on a buffer writer. When the marshaller
/// announces the payload length and nothing is compressed, the payload is written straight into
/// the output after the prefix; otherwise it is buffered first.
/// </summary>
internal sealed class MessageWriter : SerializationContext
{
    private readonly int? _maxMessageSize;
    private readonly CompressionLevel _level;
    private IBufferWriter<byte> _output = null!;
    private string? _encoding;
    private ArrayBufferWriter<byte>? _buffer;
    private bool _direct;
    private bool _completed;

    public MessageWriter(int? maxMessageSize, CompressionLevel level)
    {
        _maxMessageSize = maxMessageSize;
        _level = level;
    }

    /// <summary>
    /// Serializes <paramref name="message"/> as one frame into <paramref name="output"/>, compressed
    /// with <paramref name="encoding"/> unless it is null.
    /// </summary>
    public void Write<T>(IBufferWriter<byte> output, T message, Action<T, SerializationContext> serializer, string? encoding)
    {
        _output = output;
        _encoding = encoding;
        _direct = false;
        _completed = false;
        _buffer?.ResetWrittenCount();
        try
        {
            serializer(message, this);
            if (!_completed)
            {
                throw new InvalidOperationException("The marshaller did not complete the serialization context.");
            }
        }
        finally
        {
            _output = null!;
        }
    }

    public override void SetPayloadLength(int payloadLength)
    {
        CheckSize(payloadLength);
        if (_encoding is null)
        {
            WriteHeader(_output, false, payloadLength);
            _direct = true;
        }
    }

    public override IBufferWriter<byte> GetBufferWriter() => _direct ? _output : _buffer ??= new ArrayBufferWriter<byte>();

    public override void Complete()
    {
        if (!_direct)
        {
            WriteFrame((_buffer ?? new ArrayBufferWriter<byte>()).WrittenSpan);
        }
        _completed = true;
    }

    public override void Complete(byte[] payload)
    {
        WriteFrame(payload);
        _completed = true;
    }

    private void WriteFrame(ReadOnlySpan<byte> payload)
    {
        CheckSize(payload.Length);
        // The flag is per message: an empty message goes uncompressed, since a compressor may emit
        // nothing at all for no input, and a zero-length "gzip" frame is not a gzip stream.
        if (_encoding is not null && payload.Length > 0)
        {
            var compressed = GrpcCompression.Compress(_encoding, payload, _level);
            WriteHeader(_output, true, compressed.Length);
            _output.Write(compressed);
            return;
        }
        WriteHeader(_output, false, payload.Length);
        _output.Write(payload);
    }

    private void CheckSize(int length)
    {
        if (_maxMessageSize is { } max && length > max)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted,
                $"Sending message exceeds the maximum configured message size ({length} > {max})."));
        }
    }

    private static void WriteHeader(IBufferWriter<byte> output, bool compressed, int length)
    {
        var span = output.GetSpan(GrpcProtocol.HeaderSize);
        span[0] = compressed ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteUInt32BigEndian(span[1..], (uint)length);
        output.Advance(GrpcProtocol.HeaderSize);
    }
}
