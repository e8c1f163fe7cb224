using System.Xml.Linq;

namespace LabMesh.Deploy.Tests;

/// <summary>The repository under test: paths, the deployable projects and what their project files say.</summary>
internal static class Repository
{
    /// <summary>services/ holds it but it is not deployed: it is the laptop and demo host.</summary>
    private const string AllInOne = "LabMesh.AllInOne";

    /// <summary>services/ holds it but it is no service: the gateway of deploy/local and compose (Kubernetes has its Gateway API).</summary>
    public const string Gateway = "LabMesh.Gateway";

    public static string Root { get; } = FindRoot();

    /// <summary>Every project under services/ that runs as a service of its own, e.g. <c>LabMesh.Requisition</c>.</summary>
    public static IReadOnlyList<string> DeployableProjects { get; } =
        [.. Directory.GetDirectories(PathOf("services"))
            .Select(Path.GetFileName)
            .OfType<string>()
            .Where(name => name is not AllInOne and not Gateway && File.Exists(PathOf($"services/{name}/{name}.csproj")))
            .Order(StringComparer.Ordinal)];

    /// <summary>An absolute path from a repository-relative one written with '/'.</summary>
    public static string PathOf(string relative) => Path.Combine(Root, relative.Replace('/', Path.DirectorySeparatorChar));

    public static bool Exists(string relative) => File.Exists(PathOf(relative)) || Directory.Exists(PathOf(relative));

    public static string Read(string relative) => File.ReadAllText(PathOf(relative));

    /// <summary>The repository-relative form ('/'-separated, no trailing '/') of an absolute path inside the repository.</summary>
    public static string Relative(string absolute) =>
        Path.GetRelativePath(Root, Path.GetFullPath(absolute)).Replace(Path.DirectorySeparatorChar, '/');

    /// <summary>The name Compose services, Deployments and images use for a project: LabMesh.ResultsInterpretation → resultsinterpretation.</summary>
    public static string ShortName(string project) => project["LabMesh.".Length..].ToLowerInvariant();

    public static string ProjectFile(string project) => $"services/{project}/{project}.csproj";

    /// <summary>The project's own C# sources (not bin/ or obj/).</summary>
    public static IReadOnlyList<string> Sources(string projectDirectory) =>
        [.. Directory.EnumerateFiles(PathOf(projectDirectory), "*.cs", SearchOption.AllDirectories)
            .Where(file =>
            {
                var relative = Relative(file);
                return !relative.Contains("/bin/", StringComparison.Ordinal) && !relative.Contains("/obj/", StringComparison.Ordinal);
            })
            .Order(StringComparer.Ordinal)];

    public static string SourceText(string projectDirectory) => string.Join('\n', Sources(projectDirectory).Select(File.ReadAllText));

    /// <summary>The project and every project it references, directly or not, as repository-relative .csproj paths.</summary>
    public static IReadOnlyList<string> ProjectClosure(string projectFile)
    {
        var seen = new SortedSet<string>(StringComparer.Ordinal);
        var pending = new Stack<string>([projectFile]);
        while (pending.Count > 0)
        {
            var current = pending.Pop();
            if (!seen.Add(current))
            {
                continue;
            }

            var directory = Path.GetDirectoryName(PathOf(current))!;
            foreach (var include in Items(current, "ProjectReference"))
            {
                pending.Push(Relative(Path.Combine(directory, include)));
            }
        }

        return [.. seen];
    }

    /// <summary>The directories the project's &lt;Protobuf Include&gt; globs read from (the part before the first wildcard).</summary>
    public static IReadOnlyList<string> ProtobufDirectories(string projectFile)
    {
        var directory = Path.GetDirectoryName(PathOf(projectFile))!;
        var imports = XDocument.Load(PathOf(projectFile)).Descendants("Protobuf")
            .Select(e => (string?)e.Attribute("AdditionalImportDirs"))
            .OfType<string>()
            .SelectMany(dirs => dirs.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(dir => Relative(Path.GetFullPath(Path.Combine(directory, dir.Replace('\\', '/')))));
        return [.. Items(projectFile, "Protobuf")
            .Select(include =>
            {
                var wildcard = include.IndexOfAny(['*', '?']);
                var fixedPart = wildcard < 0 ? Path.GetDirectoryName(include)! : include[..include.LastIndexOf('/', wildcard)];
                return Relative(Path.Combine(directory, fixedPart));
            })
            .Concat(imports)];
    }

    /// <summary>
    /// The files MSBuild imports into a project by where it sits: every Directory.Build.props,
    /// Directory.Build.targets and Directory.Packages.props in its directory or above it, up to the root.
    /// </summary>
    public static IReadOnlyList<string> DirectoryImports(string projectFile)
    {
        var found = new List<string>();
        for (var directory = Path.GetDirectoryName(projectFile)!.Replace('\\', '/'); ; directory = Path.GetDirectoryName(directory)!.Replace('\\', '/'))
        {
            foreach (var name in (string[])["Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props"])
            {
                var candidate = directory.Length == 0 ? name : directory + "/" + name;
                if (File.Exists(PathOf(candidate)))
                {
                    found.Add(candidate);
                }
            }

            if (directory.Length == 0)
            {
                return found;
            }
        }
    }

    /// <summary>&lt;AssemblyName&gt; when set, otherwise the project file's name.</summary>
    public static string AssemblyName(string projectFile) =>
        XDocument.Load(PathOf(projectFile)).Descendants("AssemblyName").Select(e => e.Value.Trim()).FirstOrDefault()
        ?? Path.GetFileNameWithoutExtension(projectFile);

    private static IEnumerable<string> Items(string projectFile, string item) =>
        XDocument.Load(PathOf(projectFile)).Descendants(item)
            .Select(e => (string?)e.Attribute("Include"))
            .OfType<string>()
            .Select(include => include.Replace('\\', '/'));

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "LabMesh.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No LabMesh.sln above {AppContext.BaseDirectory}.");
    }
}
