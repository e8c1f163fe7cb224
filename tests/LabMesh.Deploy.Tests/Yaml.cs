using Xunit.Sdk;
using YamlDotNet.RepresentationModel;

namespace LabMesh.Deploy.Tests;

/// <summary>
/// YAML as plain data: mappings become <see cref="Dictionary{TKey,TValue}"/> of string keys, sequences
/// <see cref="List{T}"/>, scalars strings (8080 and "8080" alike), and a plain null, ~ or empty scalar null.
/// </summary>
internal static class Yaml
{
    public static IReadOnlyList<object?> LoadAll(string text)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(text));
        return [.. stream.Documents.Select(document => Convert(document.RootNode))];
    }

    public static object? Load(string text) => LoadAll(text) switch
    {
        [var single] => single,
        var documents => throw new XunitException($"Expected one YAML document, found {documents.Count}."),
    };

    private static object? Convert(YamlNode node) => node switch
    {
        YamlMappingNode mapping => mapping.Children.ToDictionary(
            pair => ((YamlScalarNode)pair.Key).Value ?? "",
            pair => Convert(pair.Value),
            StringComparer.Ordinal),
        YamlSequenceNode sequence => sequence.Children.Select(Convert).ToList(),
        YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain, Value: null or "" or "~" or "null" } => null,
        YamlScalarNode scalar => scalar.Value ?? "",
        _ => throw new XunitException($"Unexpected YAML node {node.NodeType} at {node.Start}."),
    };
}

/// <summary>Navigation over <see cref="Yaml"/> data; a missing step gives null (or an empty list/map).</summary>
internal static class YamlData
{
    public static object? At(this object? node, params string[] path)
    {
        foreach (var step in path)
        {
            node = node is Dictionary<string, object?> map && map.TryGetValue(step, out var next) ? next : null;
        }

        return node;
    }

    public static string? Text(this object? node, params string[] path) => node.At(path) as string;

    public static List<object?> List(this object? node, params string[] path) => node.At(path) as List<object?> ?? [];

    public static Dictionary<string, object?> Map(this object? node, params string[] path) =>
        node.At(path) as Dictionary<string, object?> ?? new Dictionary<string, object?>(StringComparer.Ordinal);

    /// <summary>A mapping of scalars (labels, selectors), as strings.</summary>
    public static Dictionary<string, string> Strings(this object? node, params string[] path) =>
        node.Map(path).ToDictionary(pair => pair.Key, pair => pair.Value as string ?? "", StringComparer.Ordinal);
}
