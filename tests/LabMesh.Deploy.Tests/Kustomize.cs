using System.Collections.Concurrent;
using System.Diagnostics;
using Xunit.Sdk;

namespace LabMesh.Deploy.Tests;

/// <summary>One object of a rendered overlay.</summary>
internal sealed record K8sObject(string Kind, string Name, string? Namespace, object? Body)
{
    public Dictionary<string, string> Labels => Body.Strings("metadata", "labels");

    public object? Spec => Body.At("spec");

    /// <summary>The pod template's labels (Deployment, StatefulSet).</summary>
    public Dictionary<string, string> PodLabels => Body.Strings("spec", "template", "metadata", "labels");

    public object? PodSpec => Body.At("spec", "template", "spec");

    public IEnumerable<object?> Containers => PodSpec.List("containers");

    public override string ToString() => $"{Kind}/{Name}";
}

/// <summary>An overlay rendered by <c>kubectl kustomize</c>.</summary>
internal sealed class Rendered(string overlay, IReadOnlyList<K8sObject> objects)
{
    public string Overlay { get; } = overlay;

    public IReadOnlyList<K8sObject> Objects { get; } = objects;

    public IEnumerable<K8sObject> OfKind(string kind) => Objects.Where(o => o.Kind == kind);

    public K8sObject? Find(string kind, string name) => Objects.SingleOrDefault(o => o.Kind == kind && o.Name == name);

    /// <summary>The Deployment that runs <paramref name="project"/>, by the naming every manifest follows.</summary>
    public K8sObject DeploymentOf(string project) =>
        Find("Deployment", Repository.ShortName(project))
        ?? throw new XunitException($"{Overlay}: no Deployment {Repository.ShortName(project)} for {project}.");

    /// <summary>The workloads whose pods a selector in this namespace picks.</summary>
    public IEnumerable<K8sObject> WorkloadsSelectedBy(IReadOnlyDictionary<string, string> selector) =>
        Objects.Where(o => o.Kind is "Deployment" or "StatefulSet" && selector.Count > 0 && Selectors.Matches(selector, o.PodLabels));
}

/// <summary>Renders overlays with the kubectl on PATH (once per overlay and test run).</summary>
internal static class Kustomize
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);
    private static readonly ConcurrentDictionary<string, Lazy<Task<Rendered>>> Cache = new(StringComparer.Ordinal);

    /// <summary>Every overlay: the folders under k8s/overlays with a kustomization.yaml, e.g. k8s/overlays/dev.</summary>
    public static IReadOnlyList<string> Overlays { get; } =
        [.. Directory.GetDirectories(Repository.PathOf("k8s/overlays"))
            .Where(dir => File.Exists(Path.Combine(dir, "kustomization.yaml")))
            .Select(Repository.Relative)
            .Order(StringComparer.Ordinal)];

    public static TheoryData<string> OverlayData => new(Overlays);

    public static Task<Rendered> RenderAsync(string overlay) =>
        Cache.GetOrAdd(overlay, o => new Lazy<Task<Rendered>>(() => RunAsync(o))).Value;

    private static async Task<Rendered> RunAsync(string overlay)
    {
        var kubectl = FindOnPath("kubectl")
            ?? throw new XunitException("kubectl is not on PATH: install Debian's kubernetes-client (tools/test.sh does).");
        using var process = new Process
        {
            StartInfo = new ProcessStartInfo(kubectl, ["kustomize", Repository.PathOf(overlay)])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            },
        };
        process.Start();
        using var timeout = new CancellationTokenSource(Timeout);
        var output = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var error = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new XunitException($"kubectl kustomize {overlay} took longer than {Timeout}.");
        }

        if (process.ExitCode != 0)
        {
            throw new XunitException($"kubectl kustomize {overlay} failed ({process.ExitCode}):\n{await error}");
        }

        var objects = Yaml.LoadAll(await output)
            .Where(document => document is not null)
            .Select(document => new K8sObject(
                document.Text("kind") ?? throw new XunitException($"{overlay}: an object without kind."),
                document.Text("metadata", "name") ?? throw new XunitException($"{overlay}: an object without a name."),
                document.Text("metadata", "namespace"),
                document))
            .ToList();
        return new Rendered(overlay, objects);
    }

    private static string? FindOnPath(string command) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "")
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, command))
            .FirstOrDefault(File.Exists);
}

/// <summary>Kubernetes label selectors (matchLabels, matchExpressions, or a plain map as a Service uses).</summary>
internal static class Selectors
{
    public static bool Matches(IReadOnlyDictionary<string, string> selector, IReadOnlyDictionary<string, string> labels) =>
        selector.All(pair => labels.TryGetValue(pair.Key, out var value) && value == pair.Value);

    /// <summary>A LabelSelector object; an empty one (or {}) selects everything, an absent one nothing.</summary>
    public static bool Matches(object? selector, IReadOnlyDictionary<string, string> labels)
    {
        if (selector is null)
        {
            return false;
        }

        if (!Matches(selector.Strings("matchLabels"), labels))
        {
            return false;
        }

        foreach (var expression in selector.List("matchExpressions"))
        {
            var key = expression.Text("key")!;
            var values = expression.List("values").OfType<string>().ToList();
            var has = labels.TryGetValue(key, out var value);
            var ok = expression.Text("operator") switch
            {
                "In" => has && values.Contains(value!),
                "NotIn" => !has || !values.Contains(value!),
                "Exists" => has,
                "DoesNotExist" => !has,
                var other => throw new XunitException($"Unknown selector operator {other}."),
            };
            if (!ok)
            {
                return false;
            }
        }

        return true;
    }
}
