using System.Buffers;
using System.Text;
using System.Text.Json;

namespace LabMesh.Messaging.Storage;

/// <summary>
/// A set of ids bound as one text parameter, a JSON array, which each database reads as a set: SQLite with
/// <c>IN (SELECT value FROM json_each(@ids))</c>, PostgreSQL with <c>IN (SELECT json_array_elements_text(CAST(@ids AS json)))</c>.
/// Dapper's list expansion (<c>IN @ids</c>) would run its run-time mapper, which Dapper.AOT's build-time interceptors keep
/// out of the Native AOT executables, and would make one statement text per list length.
/// </summary>
public static class DbIdSet
{
    /// <summary>The ids as a JSON array of strings.</summary>
    public static string ToJson(IEnumerable<string> ids)
    {
        ArgumentNullException.ThrowIfNull(ids);
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartArray();
            foreach (var id in ids)
            {
                writer.WriteStringValue(id);
            }

            writer.WriteEndArray();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }
}
