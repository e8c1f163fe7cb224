using System.Text.Json;
using Google.Protobuf.WellKnownTypes;

namespace LabMesh.Cli.Output;

/// <summary>
/// Machine-readable output (<c>--json</c>): one JSON document per line on stdout, snake_case keys,
/// times in ISO 8601 UTC, nothing else on stdout.
/// </summary>
internal static class Json
{
    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
    };

    public static void WriteLine<T>(T value) => Console.Out.WriteLine(JsonSerializer.Serialize(value, Options));

    /// <summary>A protobuf time as JSON writes it; null when unset.</summary>
    public static DateTimeOffset? Time(Timestamp? timestamp) => timestamp?.ToDateTimeOffset();

    /// <summary>Milliseconds with two decimals, enough for latencies measured in microseconds.</summary>
    public static double Ms(TimeSpan duration) => Math.Round(duration.TotalMilliseconds, 2);
}
