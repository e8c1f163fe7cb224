using System.Globalization;
using System.CommandLine.Parsing;

namespace LabMesh.Cli;

/// <summary>Durations as people type them: <c>500ms</c>, <c>10s</c>, <c>2m</c>, <c>1h</c>, or <c>hh:mm:ss</c>.</summary>
internal static class Durations
{
    public const string Help = "a duration: 500ms, 10s, 2m, 1h or hh:mm:ss";

    public static bool TryParse(string? text, out TimeSpan duration)
    {
        duration = default;
        var value = text?.Trim() ?? "";
        (string Suffix, double Ms)[] units = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)];
        foreach (var (suffix, ms) in units)
        {
            if (value.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)
                && double.TryParse(value[..^suffix.Length], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var count)
                && double.IsFinite(count))
            {
                duration = TimeSpan.FromMilliseconds(count * ms);
                return true;
            }
        }

        return value.Contains(':', StringComparison.Ordinal)
            && TimeSpan.TryParse(value, CultureInfo.InvariantCulture, out duration)
            && duration >= TimeSpan.Zero;
    }

    /// <summary>A System.CommandLine parser for a positive duration; a bad one is a usage error.</summary>
    public static TimeSpan ParsePositive(ArgumentResult result)
    {
        var token = result.Tokens.Count == 1 ? result.Tokens[0].Value : "";
        if (TryParse(token, out var duration) && duration > TimeSpan.Zero)
        {
            return duration;
        }

        result.AddError($"'{token}' is not {Help} (greater than zero).");
        return default;
    }
}
