using System.Collections;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace LabMesh.Security.Tests.Fuzz;

/// <summary>One request body to send, and what it is, for the failure report.</summary>
public sealed record Payload(string Kind, byte[] Bytes)
{
    public override string ToString() =>
        $"{Kind} ({Bytes.Length} bytes: {Convert.ToHexString(Bytes.AsSpan(0, Math.Min(Bytes.Length, 48)))}{(Bytes.Length > 48 ? "..." : "")})";
}

/// <summary>
/// Hostile request bodies for a request type, all from one seeded <see cref="Random"/> so a failing run
/// can be replayed: random bytes, mutations of valid messages at the wire level, oversize fields, deep
/// nesting, and random messages that are valid protobuf but carry edge values.
/// </summary>
public sealed class Payloads(Random random)
{
    private const int MaxDepth = 4;

    private static readonly string[] Strings =
    [
        "", " ", "a", "\t\n", new('x', 64), new('x', 65), new('x', 129), new('x', 2_001), "\0", "a\0b", "é", "😀", "\u202e\u0041",
        "../../etc/passwd", "'; DROP TABLE requisitions; --", "%s%n{0}", "ORDER_CONFIRMED", "LIPID_PANEL", "received.testkit.ordered",
        "completed.testkit.completed", "cancelled.testkit.cancelled", "a.b.c", "...", "order.placed", "labtest.result.critical",
        "00000000-0000-0000-0000-000000000000", Guid.NewGuid().ToString(), "0-0", "1-0", "999999999999-1", "dGVzdA", "djE6eA",
        "https://127.0.0.1/hook", "http://169.254.169.254/latest/meta-data", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "female", "1970-01-01",
        "9999-12-31", "0000-00-00", "6.37", "-1e400", "NaN", "Infinity", "<5", ">1000", "positive",
    ];

    private static readonly double[] Doubles =
        [0, -0.0, 1, -1, 6.37, double.NaN, double.PositiveInfinity, double.NegativeInfinity, double.MaxValue, double.MinValue, double.Epsilon, 1e-300];

    private static readonly long[] Integers = [0, 1, -1, 2, 50, 500, 501, int.MaxValue, int.MinValue, long.MaxValue, long.MinValue, 86_400 * 365L * 10_000];

    public byte[] RandomBytes(int maxLength) => Bytes(random.Next(maxLength + 1));

    /// <summary>A message of <paramref name="descriptor"/> with random fields set to edge values; valid protobuf.</summary>
    public IMessage Message(MessageDescriptor descriptor, int depth = 0)
    {
        var message = (IMessage)Activator.CreateInstance(descriptor.ClrType)!;
        foreach (var field in descriptor.Fields.InDeclarationOrder())
        {
            if (random.NextDouble() > 0.6 || (field.FieldType == FieldType.Message && depth >= MaxDepth))
            {
                continue;
            }

            if (field.IsMap)
            {
                var map = (IDictionary)field.Accessor.GetValue(message);
                var entry = field.MessageType;
                for (var i = random.Next(3); i > 0; i--)
                {
                    map[Value(entry.FindFieldByNumber(1), depth)] = Value(entry.FindFieldByNumber(2), depth);
                }
            }
            else if (field.IsRepeated)
            {
                var list = (IList)field.Accessor.GetValue(message);
                for (var i = random.Next(4); i > 0; i--)
                {
                    list.Add(Value(field, depth));
                }
            }
            else
            {
                field.Accessor.SetValue(message, Value(field, depth));
            }
        }

        return message;
    }

    /// <summary>Wire-level mutations of a valid message of <paramref name="descriptor"/>.</summary>
    public IEnumerable<Payload> Mutations(MessageDescriptor descriptor, byte[] valid, int count)
    {
        var fields = descriptor.Fields.InDeclarationOrder();
        for (var i = 0; i < count; i++)
        {
            var field = fields.Count > 0 ? fields[random.Next(fields.Count)] : null;
            var number = field?.FieldNumber ?? 1;
            switch (random.Next(10))
            {
                case 0:
                    yield return new("bit flips", FlipBits(valid, 1 + random.Next(4)));
                    break;
                case 1 when valid.Length > 1:
                    yield return new("truncated", valid[..random.Next(valid.Length)]);
                    break;
                case 2:
                    yield return new($"wrong wire type for field {number}", Append(valid, o =>
                    {
                        var wrong = WireTypeOf(field) == WireFormat.WireType.LengthDelimited ? WireFormat.WireType.Varint : WireFormat.WireType.LengthDelimited;
                        o.WriteTag(number, wrong);
                        if (wrong == WireFormat.WireType.Varint)
                        {
                            o.WriteUInt64(ulong.MaxValue);
                        }
                        else
                        {
                            o.WriteBytes(ByteString.CopyFrom(Bytes(random.Next(16))));
                        }
                    }));
                    break;
                case 3:
                    yield return new($"fixed32 for field {number}", Append(valid, o =>
                    {
                        o.WriteTag(number, WireFormat.WireType.Fixed32);
                        o.WriteFixed32((uint)random.Next());
                    }));
                    break;
                case 4:
                    // Ten bytes of 0xFF then 0x01: longer than any varint may be.
                    yield return new($"overlong varint in field {number}", [.. valid, .. Tag(number, 0), .. Enumerable.Repeat((byte)0xFF, 10), 0x01]);
                    break;
                case 5:
                    yield return new($"huge varint in field {number}", Append(valid, o =>
                    {
                        o.WriteTag(number, WireFormat.WireType.Varint);
                        o.WriteUInt64(random.Next(2) == 0 ? ulong.MaxValue : 1UL << 63);
                    }));
                    break;
                case 6:
                    yield return new($"length beyond the end in field {number}", [.. valid, .. Tag(number, 2), 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 1, 2, 3]);
                    break;
                case 7:
                    yield return new($"invalid UTF-8 in field {number}", Append(valid, o =>
                    {
                        o.WriteTag(number, WireFormat.WireType.LengthDelimited);
                        o.WriteBytes(ByteString.CopyFrom(0x61, 0xC3, 0x28, 0xA0, 0xA1, 0xED, 0xA0, 0x80, 0xFF, 0xFE));
                    }));
                    break;
                case 8:
                    yield return new($"invalid tag (wire type {6 + (i % 2)} or field 0)",
                        [.. valid, (byte)(random.Next(2) == 0 ? (number << 3 | (6 + (i % 2))) & 0x7F : 0x00), 0x01]);
                    break;
                default:
                    yield return new($"garbage inside field {number}", Append(valid, o =>
                    {
                        o.WriteTag(number, WireFormat.WireType.LengthDelimited);
                        o.WriteBytes(ByteString.CopyFrom(Bytes(1 + random.Next(64))));
                    }));
                    break;
            }
        }
    }

    /// <summary>
    /// A 3 MiB string in up to <paramref name="stringFields"/> string fields (top level and one level down),
    /// and 100,000 entries in every repeated field of the top level.
    /// </summary>
    public IEnumerable<Payload> Oversize(MessageDescriptor descriptor, int stringFields)
    {
        var huge = new string('x', 3 * 1024 * 1024);
        var strings = StringPaths(descriptor).OrderBy(_ => random.Next()).Take(stringFields);
        foreach (var path in strings)
        {
            yield return new($"3 MiB string in {string.Join('.', path.Select(f => f.Name))}", Nest(path, o => o.WriteString(huge)));
        }

        foreach (var field in descriptor.Fields.InDeclarationOrder().Where(f => f.IsRepeated && !f.IsMap))
        {
            var output = new MemoryStream();
            var coded = new CodedOutputStream(output);
            if (field.FieldType is FieldType.String or FieldType.Bytes or FieldType.Message)
            {
                for (var i = 0; i < 100_000; i++)
                {
                    coded.WriteTag(field.FieldNumber, WireFormat.WireType.LengthDelimited);
                    if (field.FieldType == FieldType.Message)
                    {
                        coded.WriteLength(0);
                    }
                    else
                    {
                        coded.WriteString(i % 2 == 0 ? "order.placed" : "x" + i);
                    }
                }
            }
            else
            {
                var packed = new MemoryStream();
                var values = new CodedOutputStream(packed);
                for (var i = 0; i < 100_000; i++)
                {
                    WriteScalar(values, field, i % 3);
                }

                values.Flush();
                coded.WriteTag(field.FieldNumber, WireFormat.WireType.LengthDelimited);
                coded.WriteBytes(ByteString.CopyFrom(packed.ToArray()));
            }

            coded.Flush();
            yield return new($"100,000 entries in {field.Name}", output.ToArray());
        }
    }

    /// <summary>Unknown groups nested far past the parser's recursion limit, and unknown messages nested deep.</summary>
    public static IEnumerable<Payload> Nesting(MessageDescriptor descriptor)
    {
        const int Field = 9_999;
        foreach (var depth in new[] { 101, 100_000 })
        {
            var start = Tag(Field, 3);
            var end = Tag(Field, 4);
            var bytes = new List<byte>((start.Length + end.Length) * depth);
            for (var i = 0; i < depth; i++)
            {
                bytes.AddRange(start);
            }

            for (var i = 0; i < depth; i++)
            {
                bytes.AddRange(end);
            }

            yield return new($"unknown groups nested {depth} deep", [.. bytes]);
            yield return new($"unterminated unknown groups nested {depth} deep", [.. bytes.Take(start.Length * depth)]);
        }

        // A message-typed field holding itself (by number) 2,000 times: whatever type the number means at
        // each level, the parser must end it without a stack overflow.
        var nested = descriptor.Fields.InDeclarationOrder().FirstOrDefault(f => f.FieldType == FieldType.Message)?.FieldNumber ?? Field;
        var inner = Array.Empty<byte>();
        for (var i = 0; i < 2_000; i++)
        {
            var output = new MemoryStream();
            var coded = new CodedOutputStream(output);
            coded.WriteTag(nested, WireFormat.WireType.LengthDelimited);
            coded.WriteBytes(ByteString.CopyFrom(inner));
            coded.Flush();
            inner = output.ToArray();
        }

        yield return new($"field {nested} nested 2,000 deep", inner);
    }

    private object Value(FieldDescriptor field, int depth) => field.FieldType switch
    {
        FieldType.Double => Pick(Doubles),
        FieldType.Float => (float)Pick(Doubles),
        FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32 => unchecked((int)Pick(Integers)),
        FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64 => Pick(Integers),
        FieldType.UInt32 or FieldType.Fixed32 => unchecked((uint)Pick(Integers)),
        FieldType.UInt64 or FieldType.Fixed64 => unchecked((ulong)Pick(Integers)),
        FieldType.Bool => random.Next(2) == 0,
        FieldType.String => Pick(Strings),
        FieldType.Bytes => ByteString.CopyFrom(Bytes(random.Next(32))),
        FieldType.Enum => Enum.ToObject(field.EnumType.ClrType, random.Next(4) == 0
            ? Pick(new[] { -1, 99, int.MaxValue })
            : field.EnumType.Values[random.Next(field.EnumType.Values.Count)].Number),
        FieldType.Message => Message(field.MessageType, depth + 1),
        _ => throw new NotSupportedException(field.FieldType.ToString()),
    };

    private static void WriteScalar(CodedOutputStream output, FieldDescriptor field, int value)
    {
        switch (WireTypeOf(field))
        {
            case WireFormat.WireType.Fixed32:
                output.WriteFixed32((uint)value);
                break;
            case WireFormat.WireType.Fixed64:
                output.WriteFixed64((ulong)value);
                break;
            default:
                output.WriteInt32(value);
                break;
        }
    }

    private static WireFormat.WireType WireTypeOf(FieldDescriptor? field) => field?.FieldType switch
    {
        null => WireFormat.WireType.Varint,
        FieldType.String or FieldType.Bytes or FieldType.Message => WireFormat.WireType.LengthDelimited,
        FieldType.Double or FieldType.Fixed64 or FieldType.SFixed64 => WireFormat.WireType.Fixed64,
        FieldType.Float or FieldType.Fixed32 or FieldType.SFixed32 => WireFormat.WireType.Fixed32,
        _ when field.IsPacked => WireFormat.WireType.LengthDelimited,
        _ => WireFormat.WireType.Varint,
    };

    /// <summary>Paths to string fields: a top-level string field, or a string field of a top-level message field.</summary>
    private static IEnumerable<FieldDescriptor[]> StringPaths(MessageDescriptor descriptor)
    {
        foreach (var field in descriptor.Fields.InDeclarationOrder())
        {
            if (field.FieldType == FieldType.String)
            {
                yield return [field];
            }
            else if (field.FieldType == FieldType.Message && !field.IsMap)
            {
                foreach (var inner in field.MessageType.Fields.InDeclarationOrder().Where(f => f.FieldType == FieldType.String))
                {
                    yield return [field, inner];
                }
            }
        }
    }

    private static byte[] Nest(FieldDescriptor[] path, Action<CodedOutputStream> write)
    {
        var output = new MemoryStream();
        var coded = new CodedOutputStream(output);
        coded.WriteTag(path[^1].FieldNumber, WireFormat.WireType.LengthDelimited);
        write(coded);
        coded.Flush();
        var bytes = output.ToArray();
        for (var i = path.Length - 2; i >= 0; i--)
        {
            output = new MemoryStream();
            coded = new CodedOutputStream(output);
            coded.WriteTag(path[i].FieldNumber, WireFormat.WireType.LengthDelimited);
            coded.WriteBytes(ByteString.CopyFrom(bytes));
            coded.Flush();
            bytes = output.ToArray();
        }

        return bytes;
    }

    private static byte[] Append(byte[] valid, Action<CodedOutputStream> write)
    {
        var output = new MemoryStream();
        output.Write(valid);
        var coded = new CodedOutputStream(output);
        write(coded);
        coded.Flush();
        return output.ToArray();
    }

    private static byte[] Tag(int field, int wireType)
    {
        var output = new MemoryStream();
        var coded = new CodedOutputStream(output);
        coded.WriteUInt32((uint)(field << 3 | wireType));
        coded.Flush();
        return output.ToArray();
    }

    private byte[] FlipBits(byte[] valid, int flips)
    {
        var copy = valid.Length == 0 ? Bytes(4) : (byte[])valid.Clone();
        for (var i = 0; i < flips; i++)
        {
            copy[random.Next(copy.Length)] ^= (byte)(1 << random.Next(8));
        }

        return copy;
    }

    private byte[] Bytes(int length)
    {
        var bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    private T Pick<T>(IReadOnlyList<T> items) => items[random.Next(items.Count)];

}
