namespace LabMesh.Deploy.Tests;

/// <summary>One service of docker-compose.yml.</summary>
internal sealed record ComposeService(string Name, object? Body)
{
    public string? Image => Body.Text("image");

    /// <summary>The Dockerfile a build uses, repository-relative, or null for a service without build.</summary>
    public string? DockerfilePath
    {
        get
        {
            var build = Body.At("build");
            if (build is null)
            {
                return null;
            }

            var context = build as string ?? build.Text("context") ?? ".";
            var dockerfile = build.Text("dockerfile") ?? "Dockerfile";
            return Repository.Relative(Path.Combine(Repository.PathOf(context), dockerfile));
        }
    }

    /// <summary>The build context, repository-relative ("." for the root).</summary>
    public string? BuildContext => Body.At("build") switch
    {
        null => null,
        string context => Repository.Relative(Repository.PathOf(context)),
        var build => Repository.Relative(Repository.PathOf(build.Text("context") ?? ".")),
    };

    /// <summary>The project a built service runs: the one whose folder holds its Dockerfile.</summary>
    public string? Project => DockerfilePath is { } dockerfile && dockerfile.StartsWith("services/", StringComparison.Ordinal)
        ? dockerfile.Split('/')[1]
        : null;

    /// <summary>environment: in either form (a mapping, or a list of NAME=value).</summary>
    public IReadOnlyDictionary<string, string> Environment
    {
        get
        {
            var environment = Body.At("environment");
            if (environment is List<object?> list)
            {
                return list.OfType<string>().ToDictionary(
                    item => item.Split('=', 2)[0],
                    item => item.Contains('=', StringComparison.Ordinal) ? item.Split('=', 2)[1] : "",
                    StringComparer.Ordinal);
            }

            return environment.Strings();
        }
    }

    /// <summary>The container ports of expose: and of ports: ("host:container" or the long form's target).</summary>
    public IReadOnlyList<string> ExposedPorts => [.. Body.List("expose").OfType<string>()];

    public IReadOnlyList<(string? Published, string Target)> PublishedPorts =>
        [.. Body.List("ports").Select(port => port switch
        {
            string text when text.LastIndexOf(':') is var colon and >= 0 => ((string?)text[..colon].Split(':')[^1], text[(colon + 1)..].Split('/')[0]),
            string text => (null, text.Split('/')[0]),
            var map => (map.Text("published"), map.Text("target") ?? ""),
        })];

    /// <summary>Bind mounts and volumes: (source, target, read-only).</summary>
    public IReadOnlyList<(string Source, string Target, bool ReadOnly)> Volumes =>
        [.. Body.List("volumes").Select(volume => volume switch
        {
            string text when text.Split(':') is { Length: >= 2 } parts => (parts[0], parts[1], parts.Length > 2 && parts[2].Split(',').Contains("ro")),
            var map => (map.Text("source") ?? "", map.Text("target") ?? "", map.Text("read_only") == "true"),
        })];

    public IReadOnlyList<string> Tmpfs => Body.At("tmpfs") switch
    {
        string single => [single.Split(':')[0]],
        var list => [.. list.List().OfType<string>().Select(t => t.Split(':')[0])],
    };

    public bool ReadOnly => Body.Text("read_only") == "true";

    /// <summary>depends_on in either form: service name → condition (service_started when the short form is used).</summary>
    public IReadOnlyDictionary<string, string> DependsOn => Body.At("depends_on") switch
    {
        List<object?> names => names.OfType<string>().ToDictionary(n => n, _ => "service_started", StringComparer.Ordinal),
        var map => map.Map().ToDictionary(p => p.Key, p => p.Value.Text("condition") ?? "service_started", StringComparer.Ordinal),
    };

    /// <summary>command: as words.</summary>
    public IReadOnlyList<string> Command => Body.At("command") switch
    {
        string text => Dockerfile.SplitWords(text),
        var list => [.. list.List().OfType<string>()],
    };

    /// <summary>The host path a container path is bind-mounted from, when it is.</summary>
    public string? HostPathOf(string containerPath) =>
        Volumes.Where(v => v.Target == containerPath && (v.Source.StartsWith("./", StringComparison.Ordinal) || v.Source.StartsWith('/')))
            .Select(v => Repository.Relative(Repository.PathOf(v.Source)))
            .FirstOrDefault();

    public override string ToString() => Name;
}

/// <summary>docker-compose.yml at the repository root.</summary>
internal static class Compose
{
    public const string FilePath = "docker-compose.yml";

    private static readonly Lazy<object?> Document = new(() => Yaml.Load(Repository.Read(FilePath)));

    public static object? Root => Document.Value;

    public static IReadOnlyList<ComposeService> Services =>
        [.. Root.Map("services").Select(pair => new ComposeService(pair.Key, pair.Value))];

    public static ComposeService Service(string name) =>
        Services.SingleOrDefault(s => s.Name == name) ?? throw new Xunit.Sdk.XunitException($"{FilePath} has no service '{name}'.");

    /// <summary>The service that runs <paramref name="project"/> (built from its Dockerfile).</summary>
    public static ComposeService ServiceOf(string project) =>
        Services.SingleOrDefault(s => s.Project == project)
        ?? throw new Xunit.Sdk.XunitException($"{FilePath} builds no service from {Dockerfile.PathFor(project)}.");

    /// <summary>The service whose image is <paramref name="repository"/> (any tag), e.g. postgres.</summary>
    public static ComposeService ServiceWithImage(string repository) =>
        Services.SingleOrDefault(s => s.Image is { } image && image.Split(':')[0] == repository)
        ?? throw new Xunit.Sdk.XunitException($"{FilePath} has no service with image {repository}.");
}
