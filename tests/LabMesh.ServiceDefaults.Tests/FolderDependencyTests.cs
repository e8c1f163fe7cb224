using System.Text.RegularExpressions;
using System.Xml.Linq;
using LabMesh.Testing;

namespace LabMesh.ServiceDefaults.Tests;

/// <summary>
/// The shared libraries under src/ and their folders depend on each other one way (issue 20 item 1). Projects: the
/// ProjectReferences of src/*/*.csproj are exactly the block in src/LabMesh.ServiceDefaults/README.md. Folders: the
/// references read from the source are exactly the blocks in the libraries' READMEs (each lists its own folders), a
/// folder uses only folders of its own library or of a library below it, and the graph has no cycle (but for edges
/// listed in <see cref="KnownCycleEdges"/>), so a new cycle or an edge against the layering fails here.
/// </summary>
public sealed partial class FolderDependencyTests
{
    /// <summary>
    /// Edges allowed to close a cycle: none now (issue 20 item 1 broke Storage &lt;-&gt; Audit, Storage &lt;-&gt; Events,
    /// Redis &lt;-&gt; Events/Caching, Errors -> Redis and Events &lt;-&gt; Hosting). An edge listed here must still be in the code
    /// and must close a cycle, so the list cannot go stale.
    /// </summary>
    private static readonly (string From, string To)[] KnownCycleEdges = [];

    private static readonly string SourceDirectory = Path.Combine(Repository.Root, "src");

    /// <summary>The README that holds the project graph.</summary>
    private static readonly string ProjectGraphReadme = Path.Combine(SourceDirectory, "LabMesh.ServiceDefaults", "README.md");

    /// <summary>The projects under src/, by name (LabMesh.Core...), each the directory of its .csproj.</summary>
    private static readonly string[] Libraries = Directory.GetDirectories(SourceDirectory)
        .Where(directory => File.Exists(Path.Combine(directory, Path.GetFileName(directory) + ".csproj")))
        .Select(Path.GetFileName)
        .OfType<string>()
        .Order(StringComparer.Ordinal)
        .ToArray();

    [Fact]
    public void References_AreTheGraphInTheReadmes()
    {
        var actual = ReadFromSource();
        var documented = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var library in Libraries)
        {
            var folders = FoldersOf(library);
            if (folders.Length == 0)
            {
                continue;
            }

            var block = ReadBlock(Path.Combine(SourceDirectory, library, "README.md"), "folder-dependencies");
            Assert.Equal(string.Join(' ', folders), string.Join(' ', block.Keys.Order(StringComparer.Ordinal)));
            foreach (var (folder, uses) in block)
            {
                documented[folder] = uses;
            }
        }

        Assert.Equal(Describe(documented), Describe(actual));
    }

    [Fact]
    public void ProjectReferences_AreTheGraphInTheReadme()
    {
        Assert.Equal(Describe(ReadBlock(ProjectGraphReadme, "project-dependencies")), Describe(ReadProjectReferences()));
        Assert.Null(FindCycle(ReadProjectReferences()));
    }

    [Fact]
    public void Folders_UseOnlyTheirLibraryAndTheLibrariesBelowIt()
    {
        var projects = ReadProjectReferences();
        var libraryOf = Libraries.SelectMany(library => FoldersOf(library).Select(folder => (folder, library)))
            .ToDictionary(pair => pair.folder, pair => pair.library, StringComparer.Ordinal);
        foreach (var (folder, uses) in ReadFromSource())
        {
            var below = Reachable(projects, libraryOf[folder]);
            foreach (var used in uses)
            {
                Assert.True(
                    below.Contains(libraryOf[used]),
                    $"{libraryOf[folder]}/{folder} uses {libraryOf[used]}/{used}, which is not {libraryOf[folder]} or below it.");
            }
        }
    }

    [Fact]
    public void FolderNames_AreUniqueAcrossTheLibraries()
    {
        var folders = Libraries.SelectMany(FoldersOf).ToArray();
        Assert.Equal(folders.Distinct(StringComparer.Ordinal).Count(), folders.Length);
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

    /// <summary>The folders of a library's project directory (its namespaces <c>{library}.{folder}</c>).</summary>
    private static string[] FoldersOf(string library) =>
        Directory.GetDirectories(Path.Combine(SourceDirectory, library))
            .Select(Path.GetFileName)
            .OfType<string>()
            .Where(name => name is not ("bin" or "obj"))
            .Order(StringComparer.Ordinal)
            .ToArray();

    /// <summary>Each project under src/ and the projects under src/ its ProjectReferences name.</summary>
    private static Dictionary<string, HashSet<string>> ReadProjectReferences() =>
        Libraries.ToDictionary(
            library => library,
            library => XDocument.Load(Path.Combine(SourceDirectory, library, library + ".csproj"))
                .Descendants("ProjectReference")
                .Select(reference => Path.GetFileNameWithoutExtension(((string?)reference.Attribute("Include") ?? "").Replace('\\', '/')))
                .ToHashSet(StringComparer.Ordinal),
            StringComparer.Ordinal);

    /// <summary><paramref name="start"/> and every node it reaches in <paramref name="graph"/>.</summary>
    private static HashSet<string> Reachable(Dictionary<string, HashSet<string>> graph, string start)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>([start]);
        while (pending.TryPop(out var node))
        {
            if (seen.Add(node))
            {
                foreach (var next in graph.GetValueOrDefault(node, []))
                {
                    pending.Push(next);
                }
            }
        }

        return seen;
    }

    /// <summary>
    /// Each folder of the libraries and the other folders its C# files name: a <c>using</c> of their namespace
    /// (<c>LabMesh.{Library}.{Folder}</c>) or a name qualified by it.
    /// </summary>
    private static Dictionary<string, HashSet<string>> ReadFromSource()
    {
        var folders = Libraries.SelectMany(library => FoldersOf(library).Select(folder => (Library: library, Folder: folder))).ToArray();
        var alternatives = string.Join('|', folders.Select(pair => pair.Folder));
        var libraries = string.Join('|', folders.Select(pair => Regex.Escape(pair.Library["LabMesh.".Length..])).Distinct());
        var qualified = new Regex(@"(?<![\w.])(?:(?:LabMesh\.)?(?:" + libraries + @")\.)?(" + alternatives + @")\.[A-Z]");
        var namespaced = new Regex(@"\bLabMesh\.(?:" + libraries + @")\.(" + alternatives + @")\b");
        var graph = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var (library, folder) in folders)
        {
            var uses = new HashSet<string>(StringComparer.Ordinal);
            foreach (var file in Directory.EnumerateFiles(Path.Combine(SourceDirectory, library, folder), "*.cs", SearchOption.AllDirectories))
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

    /// <summary>The fenced block after <c>&lt;!-- {name} --&gt;</c> in a README: <c>Node -> Other Other</c> per line.</summary>
    private static Dictionary<string, HashSet<string>> ReadBlock(string readme, string name)
    {
        var lines = File.ReadAllLines(readme);
        var marker = Array.IndexOf(lines, $"<!-- {name} -->");
        Assert.True(marker >= 0, $"{readme} has no <!-- {name} --> block.");
        var graph = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var line in lines.Skip(marker + 2).TakeWhile(line => !line.StartsWith("```", StringComparison.Ordinal)))
        {
            var parts = line.Split("->", 2);
            Assert.True(parts.Length == 2, $"Not 'Node -> Others': {line}");
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
