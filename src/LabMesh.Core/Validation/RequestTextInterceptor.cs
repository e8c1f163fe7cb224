using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Core.Interceptors;
using LabMesh.Core.Errors;

namespace LabMesh.Core.Validation;

/// <summary>
/// Refuses a request that carries a NUL character (U+0000) in any string, at any depth: INVALID_ARGUMENT
/// naming the field. No LabMesh text has a use for it, SQLite stores it but PostgreSQL cannot (its
/// text types refuse 0x00, which would fail the call in the store, after validation), and a NUL in an
/// id or a name that reaches a log or a webhook truncates what other programs read.
/// </summary>
public sealed class RequestTextInterceptor : Interceptor
{
    /// <inheritdoc />
    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Check(request);
        return continuation(request, context);
    }

    /// <inheritdoc />
    public override Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Check(request);
        return continuation(request, responseStream, context);
    }

    /// <summary>Throws INVALID_ARGUMENT when a string anywhere in <paramref name="request"/> holds a NUL.</summary>
    public static void Check(object? request)
    {
        if (request is IMessage message && FindNul(message) is { } field)
        {
            throw new InvalidArgumentException(field, "must not contain a NUL character (U+0000).");
        }
    }

    /// <summary>
    /// The path of the first string field holding a NUL (e.g. <c>tests[1].code</c>), or null. Paths are built
    /// only on the way out of a find, so a clean request allocates none.
    /// </summary>
    private static string? FindNul(IMessage message)
    {
        foreach (var field in message.Descriptor.Fields.InDeclarationOrder())
        {
            // Only strings and messages can hold text: numbers, booleans, enums and bytes are not read (or boxed).
            if (!field.IsMap && field.FieldType is not (FieldType.String or FieldType.Message or FieldType.Group))
            {
                continue;
            }

            var value = field.Accessor.GetValue(message);
            if (field.IsRepeated)
            {
                // Map entries by position too: a key may itself be the text at fault, and is not repeated back.
                var index = 0;
                var items = field.IsMap ? Entries((System.Collections.IDictionary)value) : (System.Collections.IEnumerable)value;
                foreach (var item in items)
                {
                    var (text, nested) = item is System.Collections.DictionaryEntry entry
                        ? (HasNul(entry.Key) || HasNul(entry.Value), entry.Value as IMessage)
                        : (HasNul(item), item as IMessage);
                    if (text)
                    {
                        return $"{field.Name}[{index}]";
                    }

                    if (nested is not null && FindNul(nested) is { } inner)
                    {
                        return $"{field.Name}[{index}].{inner}";
                    }

                    index++;
                }
            }
            else if (HasNul(value))
            {
                return field.Name;
            }
            else if (value is IMessage single && FindNul(single) is { } inner)
            {
                return $"{field.Name}.{inner}";
            }
        }

        return null;
    }

    // A map enumerated as IEnumerable yields boxed KeyValuePairs of its own types; as IDictionary, DictionaryEntry.
    private static IEnumerable<object> Entries(System.Collections.IDictionary map)
    {
        foreach (System.Collections.DictionaryEntry entry in map)
        {
            yield return entry;
        }
    }

    private static bool HasNul(object? value) => value is string text && text.Contains('\0', StringComparison.Ordinal);
}
