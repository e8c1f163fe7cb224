using System.Buffers.Binary;
using Google.Protobuf;
using LabMesh.Bench.V1;

namespace LabMesh.Bench;

/// <summary>The messages of a run and their gRPC wire form (5-byte prefix + protobuf), built once.</summary>
internal sealed class Payloads
{
    public const string UnaryPath = "/labmesh.bench.v1.BenchService/Unary";
    public const string StreamPath = "/labmesh.bench.v1.BenchService/ServerStream";

    public Payloads(int requestSize, int responseSize, int streamMessages)
    {
        Request = new BenchRequest
        {
            Payload = Fill(requestSize),
            ResponseSize = responseSize,
            MessageCount = streamMessages,
        };
        Response = new BenchResponse { Payload = Fill(responseSize) };
        FramedRequest = Frame(Request);
        FramedResponse = Frame(Response);
        StreamMessages = streamMessages;
    }

    public BenchRequest Request { get; }

    public BenchResponse Response { get; }

    /// <summary>The request as it travels in a gRPC request body.</summary>
    public byte[] FramedRequest { get; }

    /// <summary>One response message as it travels in a gRPC response body.</summary>
    public byte[] FramedResponse { get; }

    public int StreamMessages { get; }

    /// <summary>A payload of <paramref name="size"/> bytes (a fixed pattern: protobuf does not care).</summary>
    public static ByteString Fill(int size)
    {
        var bytes = new byte[size];
        for (var i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)(i * 31 + 7);
        }
        return ByteString.CopyFrom(bytes);
    }

    /// <summary>Length-prefixed message: compressed flag 0, big-endian length, protobuf bytes.</summary>
    public static byte[] Frame(IMessage message)
    {
        var size = message.CalculateSize();
        var framed = new byte[5 + size];
        framed[0] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(framed.AsSpan(1, 4), (uint)size);
        message.WriteTo(framed.AsSpan(5));
        return framed;
    }
}
