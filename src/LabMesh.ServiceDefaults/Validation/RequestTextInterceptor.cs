using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Core.Interceptors;
using LabMesh.ServiceDefaults.Errors;

namespace LabMesh.ServiceDefaults.Validation;

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
        if (request is IMessage message && FindNul(message, "") is { } field)
        {
            throw new InvalidArgumentException(field, "must not contain a NUL character (U+0000).");
        }
    }

    /// <summary>The path of the first string field holding a NUL (e.g. <c>tests[1].code</c>), or null.</summary>
    private static string? FindNul(IMessage message, string prefix)
    {
        foreach (var field in message.Descriptor.Fields.InDeclarationOrder())
        {
            var path = prefix + field.Name;
            var value = field.Accessor.GetValue(message);
            if (field.IsMap)
            {
                // Entries by position: a key may itself be the text at fault, and is not repeated back.
                var index = 0;
                foreach (System.Collections.DictionaryEntry entry in (System.Collections.IDictionary)value)
                {
                    if (HasNul(entry.Key) || HasNul(entry.Value))
                    {
                        return $"{path}[{index}]";
                    }

                    if (entry.Value is IMessage nested && FindNul(nested, $"{path}[{index}].") is { } inner)
                    {
                        return inner;
                    }

                    index++;
                }
            }
            else if (field.IsRepeated)
            {
                var index = 0;
                foreach (var item in (System.Collections.IEnumerable)value)
                {
                    if (HasNul(item))
                    {
                        return $"{path}[{index}]";
                    }

                    if (item is IMessage nested && FindNul(nested, $"{path}[{index}].") is { } inner)
                    {
                        return inner;
                    }

                    index++;
                }
            }
            else if (field.FieldType == FieldType.String)
            {
                if (HasNul(value))
                {
                    return path;
                }
            }
            else if (field.FieldType is FieldType.Message or FieldType.Group && value is IMessage nested
                && FindNul(nested, path + ".") is { } inner)
            {
                return inner;
            }
        }

        return null;
    }

    private static bool HasNul(object? value) => value is string text && text.Contains('\0', StringComparison.Ordinal);
}
