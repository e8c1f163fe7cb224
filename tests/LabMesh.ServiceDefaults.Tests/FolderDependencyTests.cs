using System.Text.RegularExpressions;
using LabMesh.Testing;

namespace LabMesh.ServiceDefaults.Tests;

/// <summary>
/// The folders of src/LabMesh.ServiceDefaults depend on each other one way (issue 20 item 1): the references read from
/// the source are exactly the graph written in the project's README, and that graph has no cycle (but for edges
/// listed in <see cref="KnownCycleEdges"/>), so a new cycle fails here.
/// </summary>
public sealed partial class FolderDependencyTests
{
    /// <summary>
    /// Edges allowed to close a cycle: none now (issue 20 item 1 broke Storage &lt;-&gt; Audit, Storage &lt;-&gt; Events,
    /// Redis &lt;-&gt; Events/Caching, Errors -> Redis and Events &lt;-&gt; Hosting). An edge listed here must still be in the code
    /// and must close a cycle, so the list cannot go stale.
    /// </summary>
    private static readonly (string From, string To)[] KnownCycleEdges = [];

    private static readonly string ProjectDirectory = Path.Combine(Repository.Root, "src", "LabMesh.ServiceDefaults");

    [Fact]
    public void References_AreTheGraphInTheReadme()
    {
        var actual = ReadFromSource();
        var documented = ReadFromReadme();

        Assert.Equal(Describe(documented), Describe(actual));
    }

    [Fact]
    public void Graph_HasNoCycle_ButTheKnownOnes()
    {
        var graph = ReadFromSource();
        foreach (var (from, to) in KnownCycleEdges)
        {
            Assert.True(graph[from].Contains(to), $"{from} -> {to} is gone: take it off KnownCycleEdges and the README.");
        }

        var pruned = graph.ToDictionary(
            pair => pair.Key,
            pair => pair.Value.Where(to => !KnownCycleEdges.Contains((pair.Key, to))).ToHashSet());
        Assert.Null(FindCycle(pruned));
        if (KnownCycleEdges.Length > 0)
        {
            // The known edges do close cycles: without them listed, the check above would fail.
            Assert.NotNull(FindCycle(graph));
        }
    }

    [Fact]
    public void FindCycle_NamesTheFoldersOfACycle()
    {
        var graph = new Dictionary<string, HashSet<string>>
        {
            ["A"] = ["B"],
            ["B"] = ["C"],
            ["C"] = ["A"],
            ["D"] = ["A"],
        };

        Assert.Equal("A -> B -> C -> A", FindCycle(graph));
        graph["C"].Clear();
        Assert.Null(FindCycle(graph));
    }

    /// <summary>Each folder and the other folders its C# files name: a <c>using</c> of their namespace or a name qualified by it.</summary>
    private static Dictionary<string, HashSet<string>> ReadFromSource()
    {
        var folders = Directory.GetDirectories(ProjectDirectory)
            .Select(Path.GetFileName)
            .OfType<string>()
            .Where(name => name is not ("bin" or "obj"))
            .Order(StringComparer.Ordinal)
            .ToArray();
        var alternatives = string.Join('|', folders);
        var qualified = new Regex(@"(?<![\w.])(?:LabMesh\.ServiceDefaults\.)?(" + alternatives + @")\.[A-Z]");
        var namespaced = new Regex(@"\bLabMesh\.ServiceDefaults\.(" + alternatives + @")\b");
        var graph = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var folder in folders)
        {
            var uses = new HashSet<string>(StringComparer.Ordinal);
            foreach (var file in Directory.EnumerateFiles(Path.Combine(ProjectDirectory, folder), "*.cs", SearchOption.AllDirectories))
            {
                foreach (var line in File.ReadLines(file))
                {
                    var code = CodeOf(line);
                    foreach (var match in qualified.Matches(code).Concat(namespaced.Matches(code)))
                    {
                        uses.Add(match.Groups[1].Value);
                    }
                }
            }

            uses.Remove(folder);
            graph[folder] = uses;
        }

        return graph;
    }

    /// <summary>A line without its string literals and its comment.</summary>
    private static string CodeOf(string line)
    {
        var code = StringLiteral().Replace(line, "\"\"");
        var comment = code.IndexOf("//", StringComparison.Ordinal);
        return comment < 0 ? code : code[..comment];
    }

    /// <summary>The fenced block after <c>&lt;!-- folder-dependencies --&gt;</c> in the README: <c>Folder -> Other Other</c> per line.</summary>
    private static Dictionary<string, HashSet<string>> ReadFromReadme()
    {
        var lines = File.ReadAllLines(Path.Combine(ProjectDirectory, "README.md"));
        var marker = Array.IndexOf(lines, "<!-- folder-dependencies -->");
        Assert.True(marker >= 0, "The README has no <!-- folder-dependencies --> block.");
        var graph = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var line in lines.Skip(marker + 2).TakeWhile(line => !line.StartsWith("```", StringComparison.Ordinal)))
        {
            var parts = line.Split("->", 2);
            Assert.True(parts.Length == 2, $"Not 'Folder -> Others': {line}");
            graph[parts[0].Trim()] = parts[1].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        }

        return graph;
    }

    private static string Describe(Dictionary<string, HashSet<string>> graph) =>
        string.Join('\n', graph.OrderBy(pair => pair.Key, StringComparer.Ordinal)
            .Select(pair => $"{pair.Key} -> {string.Join(' ', pair.Value.Order(StringComparer.Ordinal))}".TrimEnd()));

    /// <summary>A cycle of <paramref name="graph"/> as <c>A -> B -> A</c>, or null when there is none (depth-first, in name order).</summary>
    private static string? FindCycle(Dictionary<string, HashSet<string>> graph)
    {
        var done = new HashSet<string>(StringComparer.Ordinal);
        var path = new List<string>();
        foreach (var start in graph.Keys.Order(StringComparer.Ordinal))
        {
            if (Visit(start) is { } cycle)
            {
                return cycle;
            }
        }

        return null;

        string? Visit(string node)
        {
            var onPath = path.IndexOf(node);
            if (onPath >= 0)
            {
                return string.Join(" -> ", path.Skip(onPath).Append(node));
            }

            if (!done.Add(node))
            {
                return null;
            }

            path.Add(node);
            foreach (var next in graph.GetValueOrDefault(node, []).Order(StringComparer.Ordinal))
            {
                if (Visit(next) is { } cycle)
                {
                    return cycle;
                }
            }

            path.RemoveAt(path.Count - 1);
            return null;
        }
    }

    [GeneratedRegex(@"""(?:[^""\\]|\\.)*""")]
    private static partial Regex StringLiteral();
}
