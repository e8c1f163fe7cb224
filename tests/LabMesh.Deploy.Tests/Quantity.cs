using System.Globalization;
using Xunit.Sdk;

namespace LabMesh.Deploy.Tests;

/// <summary>Kubernetes resource quantities (100m, 2, 512Mi, 1Gi) as numbers, to compare requests with limits.</summary>
internal static class Quantity
{
    private static readonly (string Suffix, double Factor)[] Suffixes =
    [
        ("Ki", 1024), ("Mi", 1024 * 1024), ("Gi", 1024d * 1024 * 1024), ("Ti", 1024d * 1024 * 1024 * 1024),
        ("k", 1e3), ("M", 1e6), ("G", 1e9), ("T", 1e12), ("m", 1e-3),
    ];

    public static double Parse(string text)
    {
        foreach (var (suffix, factor) in Suffixes)
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal))
            {
                return double.Parse(text[..^suffix.Length], CultureInfo.InvariantCulture) * factor;
            }
        }

        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var plain)
            ? plain
            : throw new XunitException($"'{text}' is not a resource quantity.");
    }
}
