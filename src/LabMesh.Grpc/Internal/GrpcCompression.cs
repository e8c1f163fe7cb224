using System.Buffers;
using System.IO.Compression;

namespace Grpc.Core.Internal;

/// <summary>Message compression (grpc/doc/compression.md): gzip and deflate (zlib), plus identity.</summary>
internal static class GrpcCompression
{
    public const string Gzip = "gzip";
    public const string Deflate = "deflate";

    /// <summary>What this runtime can decode, sent as <c>grpc-accept-encoding</c>.</summary>
    public const string AcceptEncoding = "gzip,deflate,identity";

    public static bool IsSupported(string? encoding) =>
        encoding is null or GrpcProtocol.IdentityEncoding or Gzip or Deflate;

    /// <summary>True when the peer's accept list names the encoding.</summary>
    public static bool Accepts(string? acceptEncodingHeader, string encoding)
    {
        if (acceptEncodingHeader is null)
        {
            return false;
        }
        foreach (var range in acceptEncodingHeader.AsSpan().Split(','))
        {
            if (acceptEncodingHeader.AsSpan()[range].Trim().Equals(encoding, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }
        return false;
    }

    public static byte[] Compress(string encoding, ReadOnlySpan<byte> payload, CompressionLevel level)
    {
        using var output = new MemoryStream(Math.Max(64, payload.Length / 2));
        using (var stream = CreateCompressor(encoding, output, level))
        {
            stream.Write(payload);
        }
        return output.ToArray();
    }

    /// <summary>Decompresses, failing with <see cref="InvalidDataException"/> once the output passes <paramref name="maxLength"/>.</summary>
    public static byte[] Decompress(string encoding, in ReadOnlySequence<byte> payload, int? maxLength)
    {
        using var input = new SequenceStream(payload);
        using var stream = encoding switch
        {
            Gzip => (Stream)new GZipStream(input, CompressionMode.Decompress),
            Deflate => new ZLibStream(input, CompressionMode.Decompress),
            _ => throw new InvalidOperationException($"Unsupported encoding '{encoding}'."),
        };
        using var output = new MemoryStream();
        var buffer = ArrayPool<byte>.Shared.Rent(16 * 1024);
        try
        {
            int read;
            while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                if (maxLength is { } max && output.Length + read > max)
                {
                    throw new MessageTooLargeException();
                }
                output.Write(buffer, 0, read);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return output.ToArray();
    }

    private static Stream CreateCompressor(string encoding, Stream output, CompressionLevel level) => encoding switch
    {
        Gzip => new GZipStream(output, level, leaveOpen: true),
        Deflate => new ZLibStream(output, level, leaveOpen: true),
        _ => throw new InvalidOperationException($"Unsupported encoding '{encoding}'."),
    };

    /// <summary>Thrown when a decompressed message passes the receive limit.</summary>
    internal sealed class MessageTooLargeException : Exception
    {
        public MessageTooLargeException()
            : base("The decompressed message exceeds the maximum message size.")
        {
        }
    }

    /// <summary>A read-only stream over a sequence, so decompression needs no copy of its input.</summary>
    private sealed class SequenceStream(ReadOnlySequence<byte> sequence) : Stream
    {
        private ReadOnlySequence<byte> _remaining = sequence;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var count = (int)Math.Min(buffer.Length, _remaining.Length);
            _remaining.Slice(0, count).CopyTo(buffer);
            _remaining = _remaining.Slice(count);
            return count;
        }

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
