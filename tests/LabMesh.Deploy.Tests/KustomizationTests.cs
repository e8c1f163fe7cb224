namespace LabMesh.Deploy.Tests;

/// <summary>k8s/: a base and overlays that every kubectl from 1.20 (kustomize 2.0) renders.</summary>
public sealed class KustomizationTests
{
    /// <summary>The kustomization fields kustomize 2.0 (kubectl 1.20, Debian 12's kubernetes-client) knows.</summary>
    private static readonly HashSet<string> Kustomize2Fields =
    [
        "apiVersion", "kind", "namespace", "namePrefix", "commonLabels", "commonAnnotations", "resources", "bases", "crds",
        "patchesStrategicMerge", "patchesJson6902", "configMapGenerator", "secretGenerator", "generatorOptions", "images", "vars",
    ];

    private static readonly HashSet<string> Kustomize2GeneratorFields = ["name", "behavior", "literals", "files", "env", "type"];

    public static TheoryData<string> Overlays => Kustomize.OverlayData;

    public static TheoryData<string> Kustomizations => new(
        Directory.EnumerateFiles(Repository.PathOf("k8s"), "kustomization.yaml", SearchOption.AllDirectories)
            .Select(Repository.Relative)
            .Order(StringComparer.Ordinal));

    [Fact]
    public void Overlays_AreDevAndProduction_AtLeast()
    {
        Assert.Contains("k8s/overlays/dev", Kustomize.Overlays);
        Assert.Contains("k8s/overlays/production", Kustomize.Overlays);
        Assert.True(Repository.Exists("k8s/base/kustomization.yaml"));
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Overlay_Renders_EveryDeployableService(string overlay)
    {
        var rendered = await Kustomize.RenderAsync(overlay);

        Assert.All(Repository.DeployableProjects, project => rendered.DeploymentOf(project));
        Assert.All(rendered.Objects.Where(o => o.Kind != "Namespace"), o => Assert.Equal("labmesh", o.Namespace));
    }

    [Theory]
    [MemberData(nameof(Kustomizations))]
    public void Kustomization_UsesOnlyWhatKustomize2Understands(string file)
    {
        var kustomization = Yaml.Load(Repository.Read(file));
        var directory = Path.GetDirectoryName(file)!.Replace('\\', '/');

        Assert.All(kustomization.Map().Keys, field => Assert.True(Kustomize2Fields.Contains(field), $"{file}: kustomize 2.0 does not know '{field}'."));
        foreach (var resource in kustomization.List("resources").OfType<string>())
        {
            // kustomize 2.0 reads only files from resources:; a directory must be under bases:.
            Assert.True(File.Exists(Repository.PathOf($"{directory}/{resource}")), $"{file}: resource {resource} is not a file.");
        }

        foreach (var baseDirectory in kustomization.List("bases").OfType<string>())
        {
            Assert.True(File.Exists(Repository.PathOf($"{directory}/{baseDirectory}/kustomization.yaml")), $"{file}: base {baseDirectory} has no kustomization.yaml.");
        }

        var patches = kustomization.List("patchesStrategicMerge").OfType<string>()
            .Concat(kustomization.List("patchesJson6902").Select(p => p.Text("path")!));
        Assert.All(patches, patch => Assert.True(File.Exists(Repository.PathOf($"{directory}/{patch}")), $"{file}: patch {patch} does not exist."));

        foreach (var generator in kustomization.List("configMapGenerator").Concat(kustomization.List("secretGenerator")))
        {
            Assert.All(generator.Map().Keys, field => Assert.True(Kustomize2GeneratorFields.Contains(field), $"{file}: kustomize 2.0 generators do not know '{field}'."));
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Overlay_ProvidesEverySecretItsPodsRead_OrProductionDocumentsIt(string overlay)
    {
        var rendered = await Kustomize.RenderAsync(overlay);
        var references = rendered.Objects.Where(o => o.Kind is "Deployment" or "StatefulSet")
            .SelectMany(o => o.Containers)
            .SelectMany(c => c.List("env"))
            .Select(env => env.At("valueFrom", "secretKeyRef"))
            .Where(reference => reference is not null)
            .Select(reference => (Name: reference.Text("name")!, Key: reference.Text("key")!))
            .Distinct()
            .ToList();
        Assert.NotEmpty(references);

        if (overlay.EndsWith("/production", StringComparison.Ordinal))
        {
            // Applying production must never replace the real Secret with one from the repository.
            Assert.Empty(rendered.OfKind("Secret"));
            var readme = Repository.Read("k8s/README.md");
            Assert.All(references, r => Assert.True(
                readme.Contains(r.Name, StringComparison.Ordinal) && readme.Contains(r.Key, StringComparison.Ordinal),
                $"k8s/README.md does not tell production to provide Secret {r.Name} key {r.Key}."));
            return;
        }

        foreach (var (name, key) in references)
        {
            var secret = rendered.Find("Secret", name);
            Assert.False(secret is null, $"{overlay}: no Secret {name}.");
            Assert.True(secret.Body.Map("data").ContainsKey(key) || secret.Body.Map("stringData").ContainsKey(key), $"{overlay}: Secret {name} has no key {key}.");
        }
    }
}
