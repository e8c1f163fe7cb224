using System.Xml.Linq;
using Google.Api;
using Google.Protobuf.Reflection;
using Xunit;

namespace LabMesh.Testing;

/// <summary>
/// REST in a Native AOT executable: JSON transcoding builds its System.Text.Json contracts from the protobuf
/// descriptors at run time, and for a value-typed field it instantiates generics over that type
/// (<c>JsonPropertyInfo&lt;T?&gt;</c>, <c>JsonTypeInfo&lt;T?&gt;</c>, <c>NullableConverter&lt;T&gt;</c>, and for an enum
/// the transcoder's <c>EnumConverter&lt;TEnum&gt;</c>), which ILC compiles only when named. Each AOT service's
/// <c>rd.xml</c> names them; <see cref="AssertRdXmlMatches"/> derives them from the descriptors of the messages REST
/// reads and writes (the requests and responses of the RPCs with a <c>google.api.http</c> rule, and the error body
/// with its details) and fails when <c>rd.xml</c> misses one or names one no message needs.
/// </summary>
public static class AotRestDirectives
{
    private const string Stj = "System.Text.Json";
    private const string Transcoding = "Microsoft.AspNetCore.Grpc.JsonTranscoding";

    /// <summary>
    /// The well-known types the transcoder writes with a converter of its own, made by reflection
    /// (<c>Activator.CreateInstance</c> of the converter over the message type, so its constructor must be kept).
    /// </summary>
    private static readonly Dictionary<string, string> WellKnownTypeConverters = new(StringComparer.Ordinal)
    {
        ["google.protobuf.Any"] = "AnyConverter",
        ["google.protobuf.Duration"] = "DurationConverter",
        ["google.protobuf.Timestamp"] = "TimestampConverter",
        ["google.protobuf.FieldMask"] = "FieldMaskConverter",
        ["google.protobuf.Struct"] = "StructConverter",
        ["google.protobuf.ListValue"] = "ListValueConverter",
        ["google.protobuf.Value"] = "ValueConverter",
    };

    /// <summary>
    /// Asserts that <c>services/{project}/rd.xml</c> names exactly the generic instantiations the REST messages of
    /// <paramref name="services"/> need.
    /// </summary>
    public static void AssertRdXmlMatches(string project, params ServiceDescriptor[] services)
    {
        var needed = new SortedSet<string>(StringComparer.Ordinal);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var rest = services.SelectMany(s => s.Methods)
            .Where(m => m.GetOptions()?.GetExtension(AnnotationsExtensions.Http) is not null)
            .ToList();
        Assert.NotEmpty(rest);
        foreach (var method in rest)
        {
            Collect(method.InputType, needed, seen);
            Collect(method.OutputType, needed, seen);
        }

        // The error body: google.rpc.Status and the detail messages registered for its Any (RestEndpoints).
        Collect(Google.Rpc.Status.Descriptor, needed, seen);
        foreach (var detail in Google.Rpc.ErrorDetailsReflection.Descriptor.MessageTypes)
        {
            Collect(detail, needed, seen);
        }

        var named = new SortedSet<string>(ReadRdXml(project), StringComparer.Ordinal);
        Assert.True(
            needed.SetEquals(named),
            $"services/{project}/rd.xml differs from what the REST messages need.\nMissing:\n  "
                + string.Join("\n  ", needed.Except(named)) + "\nNot needed:\n  " + string.Join("\n  ", named.Except(needed))
                + "\nIts <Assembly> elements should be:\n" + Render(needed));
    }

    /// <summary>Asserts that the service's project hands its <c>rd.xml</c> to ILC.</summary>
    public static void AssertProjectPassesRdXml(string project)
    {
        var document = XDocument.Load(Path.Combine(ProjectDirectory(project), project + ".csproj"));
        Assert.Contains(document.Descendants("RdXmlFile"), e => (string?)e.Attribute("Include") == "rd.xml");
    }

    private static void Collect(MessageDescriptor message, SortedSet<string> needed, HashSet<string> seen)
    {
        if (!seen.Add(message.FullName))
        {
            return;
        }

        if (WellKnownTypeConverters.TryGetValue(message.FullName, out var converter))
        {
            needed.Add($"{Transcoding}|{Transcoding}.Internal.Json.{converter}`1[{Argument(message.ClrType)}]");
            return;
        }

        foreach (var field in message.Fields.InFieldNumberOrder())
        {
            if (field.IsMap)
            {
                var entry = field.MessageType.Fields.InFieldNumberOrder();
                Assert.False(
                    ValueType(entry[0]) is not null || ValueType(entry[1]) is not null || entry[1].FieldType == FieldType.Message,
                    $"{field.FullName}: a map over a value or message type; the transcoder instantiates MapField<,> and Dictionary<,> over it, which rd.xml does not name yet.");
                continue;
            }

            var isMessage = field.FieldType == FieldType.Message;
            if (isMessage && !IsWrapper(field.MessageType))
            {
                Collect(field.MessageType, needed, seen);
                continue;
            }

            // A wrapper (google.protobuf.Int32Value, ...): its own converter, and its value field's type for the property.
            if (isMessage)
            {
                needed.Add($"{Transcoding}|{Transcoding}.Internal.Json.WrapperConverter`1[{Argument(field.MessageType.ClrType)}]");
            }

            var scalar = isMessage ? field.MessageType.FindFieldByNumber(1) : field;
            var type = ValueType(scalar);
            if (type is null)
            {
                continue;
            }

            var argument = Argument(type);
            if (field.IsRepeated)
            {
                // The property is RepeatedField<T> (not nullable), which System.Text.Json writes with its IList<T> converter
                // over T's own contract.
                var repeated = $"[Google.Protobuf.Collections.RepeatedField`1[{argument}],Google.Protobuf]";
                needed.Add($"{Stj}|System.Text.Json.Serialization.Metadata.JsonPropertyInfo`1[{repeated}]");
                needed.Add($"{Stj}|System.Text.Json.Serialization.Metadata.JsonTypeInfo`1[{repeated}]");
                needed.Add($"{Stj}|System.Text.Json.Serialization.Converters.IListOfTConverter`2[{repeated},{argument}]");
                needed.Add($"{Stj}|System.Text.Json.Serialization.Metadata.JsonTypeInfo`1[{argument}]");
                if (type.IsEnum)
                {
                    needed.Add($"{Transcoding}|{Transcoding}.Internal.Json.EnumConverter`1[{argument}]");
                }

                continue;
            }

            var nullable = $"[System.Nullable`1[{argument}],System.Private.CoreLib]";
            needed.Add($"{Stj}|System.Text.Json.Serialization.Metadata.JsonPropertyInfo`1[{nullable}]");
            needed.Add($"{Stj}|System.Text.Json.Serialization.Metadata.JsonTypeInfo`1[{nullable}]");
            needed.Add($"{Stj}|System.Text.Json.Serialization.Converters.NullableConverter`1[{argument}]");
            if (type.IsEnum)
            {
                needed.Add($"{Transcoding}|{Transcoding}.Internal.Json.EnumConverter`1[{argument}]");
            }
        }
    }

    /// <summary>A generic argument as ILC's rd.xml reads it: <c>[Full.Name,Assembly]</c>.</summary>
    private static string Argument(Type type) => $"[{type.FullName},{type.Assembly.GetName().Name}]";

    private static bool IsWrapper(MessageDescriptor message) =>
        message.File.Name == "google/protobuf/wrappers.proto";

    /// <summary>The CLR value type the transcoder gives a field (as its <c>JsonConverterHelper.GetFieldType</c>), or null for a reference type.</summary>
    private static Type? ValueType(FieldDescriptor field) => field.FieldType switch
    {
        FieldType.Bool => typeof(bool),
        FieldType.Double => typeof(double),
        FieldType.Float => typeof(float),
        FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32 => typeof(int),
        FieldType.UInt32 or FieldType.Fixed32 => typeof(uint),
        FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64 => typeof(long),
        FieldType.UInt64 or FieldType.Fixed64 => typeof(ulong),
        FieldType.Enum => field.EnumType.ClrType,
        _ => null,
    };

    private static string Render(IEnumerable<string> needed) => string.Join(
        "\n",
        needed.GroupBy(n => n.Split('|')[0]).Select(assembly =>
            $"    <Assembly Name=\"{assembly.Key}\">\n"
            + string.Concat(assembly.Select(n => $"      <Type Name=\"{n.Split('|')[1]}\" Dynamic=\"Required All\" />\n"))
            + "    </Assembly>"));

    private static IEnumerable<string> ReadRdXml(string project)
    {
        var document = XDocument.Load(Path.Combine(ProjectDirectory(project), "rd.xml"));
        return document.Descendants()
            .Where(e => e.Name.LocalName == "Type")
            .Select(e =>
            {
                Assert.Equal("Required All", (string?)e.Attribute("Dynamic"));
                var assembly = (string?)e.Parent?.Attribute("Name");
                return $"{assembly}|{(string?)e.Attribute("Name")}";
            });
    }

    private static string ProjectDirectory(string project) => Path.Combine(Repository.Root, "services", project);
}
