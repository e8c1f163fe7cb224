using System.Text.Json;
using Google.Protobuf;
using LabMesh.Contracts.Common.V1;

namespace LabMesh.Notification.Webhooks;

/// <summary>
/// The body of a webhook delivery (Standard Webhooks' recommended shape): <c>type</c>, <c>timestamp</c>
/// (the event's creation time, RFC 3339) and <c>data</c>, the event envelope in protobuf's JSON mapping
/// with the .proto field names (snake_case, as the seeds write them). Computed once per event and
/// stored with the delivery, so every attempt sends (and signs) the same bytes.
/// </summary>
public static class WebhookPayload
{
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true).WithFormatDefaultValues(false));

    public static byte[] Create(Event evt)
    {
        ArgumentNullException.ThrowIfNull(evt);
        var data = Formatter.Format(evt);
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("type", evt.Type);
            writer.WriteString("timestamp", (evt.CreatedAt ?? new Google.Protobuf.WellKnownTypes.Timestamp()).ToDateTimeOffset());
            writer.WritePropertyName("data");
            writer.WriteRawValue(data, skipInputValidation: true);
            writer.WriteEndObject();
        }

        return buffer.ToArray();
    }

    /// <summary>Reads back the event a body carries (for receivers and tests).</summary>
    public static Event Parse(ReadOnlySpan<byte> body)
    {
        using var document = JsonDocument.Parse(body.ToArray());
        var data = document.RootElement.GetProperty("data").GetRawText();
        return JsonParser.Default.Parse<Event>(data);
    }
}
