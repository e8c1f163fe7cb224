using System.Buffers.Binary;
using System.Globalization;
using System.Text;
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

    private static readonly string[] Analytes = ["potassium", "sodium", "glucose", "calcium", "hemoglobin", "platelets", "creatinine", "troponin"];
    private static readonly string[] Units = ["mmol/L", "mg/dL", "g/dL", "x10E3/uL", "ng/L", "umol/L"];
    private static readonly string[] Flags = ["N", "N", "N", "H", "L"];

    /// <summary>
    /// A payload of <paramref name="size"/> bytes: text-like lines of lab results with pseudo-random
    /// values, always the same. Uncompressed, protobuf only copies them; the gzip scenarios need
    /// bytes that compress as real text does, not a short repeating pattern.
    /// </summary>
    public static ByteString Fill(int size)
    {
        var text = new StringBuilder(size + 128);
        var state = 2463534242u;
        uint Next()
        {
            // xorshift32: deterministic and cheap.
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            return state;
        }
        while (text.Length < size)
        {
            text.Append(CultureInfo.InvariantCulture,
                $"{{\"analyte\":\"{Analytes[Next() % Analytes.Length]}\",\"value\":{Next() % 100000 / 100.0:F2},\"unit\":\"{Units[Next() % Units.Length]}\",\"flag\":\"{Flags[Next() % Flags.Length]}\"}}\n");
        }
        return ByteString.CopyFrom(Encoding.ASCII.GetBytes(text.ToString(0, size)));
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
