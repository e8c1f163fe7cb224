using System.Collections;
using System.Collections.Frozen;
using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace LabMesh.Security.Audit;

/// <summary>
/// What goes into an audit record from a request or response, by protobuf reflection: field paths
/// and ids, never other values (a patient's name or a result value must not reach the audit log).
/// </summary>
internal static class AuditFields
{
    public const int MaxPaths = 64;
    public const int MaxIdLength = 128;
    private const int MaxDepth = 4;
    private const string UpdateFlag = "update_";

    /// <summary>Request fields that steer the call rather than say what changes.</summary>
    private static readonly FrozenSet<string> ControlFields = FrozenSet.ToFrozenSet(["etag", "request_id", "expected_version"], StringComparer.Ordinal);

    /// <summary>
    /// The paths of the fields <paramref name="request"/> sets, without <paramref name="targetPath"/> and
    /// the control fields: nested messages as their leaves (<c>patient.birth_date</c>), repeated fields
    /// and well-known types (timestamps, durations) by their own name. An <c>update_x</c> flag names
    /// <c>x</c>, whatever x's value (UpdateWebhookEndpoint). At most <see cref="MaxPaths"/>.
    /// </summary>
    public static string Changed(IMessage request, string? targetPath)
    {
        var paths = new List<string>();
        Collect(request, "", 0, targetPath, paths);
        return string.Join(',', paths);
    }

    /// <summary>The id at <paramref name="path"/> (<c>requisition.id</c>) in <paramref name="message"/>, "" when unset.</summary>
    public static string Id(IMessage message, string path)
    {
        object? value = message;
        foreach (var name in path.Split('.'))
        {
            if (value is not IMessage current || current.Descriptor.FindFieldByName(name) is not { IsRepeated: false } field)
            {
                return "";
            }

            value = field.Accessor.GetValue(current);
        }

        var id = value is null or IMessage ? "" : Convert.ToString(value, CultureInfo.InvariantCulture) ?? "";
        return id.Length <= MaxIdLength ? id : id[..MaxIdLength];
    }

    private static void Collect(IMessage message, string prefix, int depth, string? targetPath, List<string> paths)
    {
        var descriptor = message.Descriptor;
        foreach (var field in descriptor.Fields.InFieldNumberOrder())
        {
            if (paths.Count >= MaxPaths)
            {
                return;
            }

            var path = prefix + field.Name;
            if (path == targetPath || (depth == 0 && ControlFields.Contains(field.Name)) || IsFlagged(descriptor, field))
            {
                continue;
            }

            if (Flagged(descriptor, field) is { } flagged)
            {
                if ((bool)field.Accessor.GetValue(message))
                {
                    paths.Add(prefix + flagged.Name);
                }

                continue;
            }

            if (!IsSet(message, field))
            {
                continue;
            }

            if (field is { FieldType: FieldType.Message, IsRepeated: false, IsMap: false } && depth < MaxDepth && !IsWellKnown(field.MessageType))
            {
                var before = paths.Count;
                Collect((IMessage)field.Accessor.GetValue(message), path + ".", depth + 1, targetPath, paths);
                if (paths.Count == before)
                {
                    paths.Add(path);
                }

                continue;
            }

            paths.Add(path);
        }
    }

    /// <summary>The field an <c>update_x</c> bool flag stands for, or null.</summary>
    private static FieldDescriptor? Flagged(MessageDescriptor descriptor, FieldDescriptor field) =>
        field.FieldType == FieldType.Bool && field.Name.StartsWith(UpdateFlag, StringComparison.Ordinal)
            ? descriptor.FindFieldByName(field.Name[UpdateFlag.Length..])
            : null;

    /// <summary>True for a field named by its <c>update_</c> flag: the flag says whether it changes.</summary>
    private static bool IsFlagged(MessageDescriptor descriptor, FieldDescriptor field) =>
        descriptor.FindFieldByName(UpdateFlag + field.Name) is { FieldType: FieldType.Bool };

    private static bool IsSet(IMessage message, FieldDescriptor field)
    {
        var value = field.Accessor.GetValue(message);
        if (field.IsRepeated || field.IsMap)
        {
            return value is ICollection { Count: > 0 };
        }

        if (field.HasPresence)
        {
            return field.Accessor.HasValue(message);
        }

        return value switch
        {
            null => false,
            string text => text.Length > 0,
            ByteString bytes => !bytes.IsEmpty,
            bool flag => flag,
            Enum number => Convert.ToInt64(number, CultureInfo.InvariantCulture) != 0,
            IConvertible number => Convert.ToDouble(number, CultureInfo.InvariantCulture) != 0,
            _ => true,
        };
    }

    private static bool IsWellKnown(MessageDescriptor type) => type.File.Package == "google.protobuf";
}
