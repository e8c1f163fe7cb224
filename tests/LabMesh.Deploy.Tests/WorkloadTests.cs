using System.Globalization;

namespace LabMesh.Deploy.Tests;

/// <summary>The rendered Deployments of every overlay: probes, resources, security, configuration, budgets and autoscalers.</summary>
public sealed class WorkloadTests
{
    public static TheoryData<string, string> OverlaysAndProjects
    {
        get
        {
            var data = new TheoryData<string, string>();
            foreach (var overlay in Kustomize.Overlays)
            {
                foreach (var project in Repository.DeployableProjects)
                {
                    data.Add(overlay, project);
                }
            }

            return data;
        }
    }

    public static TheoryData<string> Overlays => Kustomize.OverlayData;

    [Theory]
    [MemberData(nameof(OverlaysAndProjects))]
    public async Task Deployment_RunsTheServiceImage_OnTwoReplicasOrMore(string overlay, string project)
    {
        var deployment = (await Kustomize.RenderAsync(overlay)).DeploymentOf(project);

        Assert.True(int.Parse(deployment.Spec.Text("replicas") ?? "1", CultureInfo.InvariantCulture) >= 2, $"{overlay} {deployment}: fewer than 2 replicas.");
        var container = Assert.Single(deployment.Containers);
        var repository = container.Text("image")!.Split('@')[0];
        repository = repository.LastIndexOf(':') > repository.LastIndexOf('/') ? repository[..repository.LastIndexOf(':')] : repository;
        Assert.EndsWith($"/{Repository.ShortName(project)}", repository, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(OverlaysAndProjects))]
    public async Task Deployment_ProbesGrpcHealth_OnThePortTheImageListensOn(string overlay, string project)
    {
        var deployment = (await Kustomize.RenderAsync(overlay)).DeploymentOf(project);
        var container = Assert.Single(deployment.Containers);
        var port = ComposeTests.ImagePort(project).ToString(CultureInfo.InvariantCulture);

        Assert.Contains(port, container.List("ports").Select(p => p.Text("containerPort")));
        foreach (var probe in new[] { "livenessProbe", "readinessProbe" })
        {
            // Native gRPC probes (grpc.health.v1.Health/Check), not TCP or HTTP: an h2c-only server answers neither usefully.
            Assert.True(container.At(probe, "grpc") is not null, $"{overlay} {deployment}: {probe} is not a gRPC probe.");
            Assert.Equal(port, container.Text(probe, "grpc", "port"));
        }
    }

    [Theory]
    [MemberData(nameof(OverlaysAndProjects))]
    public async Task Deployment_RequestsAndLimitsCpuAndMemory(string overlay, string project)
    {
        var deployment = (await Kustomize.RenderAsync(overlay)).DeploymentOf(project);
        var container = Assert.Single(deployment.Containers);

        foreach (var resource in new[] { "cpu", "memory" })
        {
            var request = container.Text("resources", "requests", resource);
            var limit = container.Text("resources", "limits", resource);
            Assert.False(request is null || limit is null, $"{overlay} {deployment}: {resource} needs a request and a limit.");
            Assert.True(Quantity.Parse(request) <= Quantity.Parse(limit), $"{overlay} {deployment}: {resource} request {request} exceeds limit {limit}.");
        }
    }

    [Theory]
    [MemberData(nameof(OverlaysAndProjects))]
    public async Task Deployment_RunsAsTheImagesNonRootUser_ReadOnly_WithoutPrivileges(string overlay, string project)
    {
        var deployment = (await Kustomize.RenderAsync(overlay)).DeploymentOf(project);
        var pod = deployment.PodSpec;
        var container = Assert.Single(deployment.Containers);
        string? Setting(params string[] path) => container.Text(["securityContext", .. path]) ?? pod.Text(["securityContext", .. path]);

        Assert.Equal("true", Setting("runAsNonRoot"));
        Assert.Equal(DockerfileTests.UserId(DockerfileTests.Load(project)).ToString(CultureInfo.InvariantCulture), Setting("runAsUser"));
        Assert.Equal("RuntimeDefault", Setting("seccompProfile", "type"));
        Assert.Equal("true", container.Text("securityContext", "readOnlyRootFilesystem"));
        Assert.Equal("false", container.Text("securityContext", "allowPrivilegeEscalation"));
        Assert.Contains("ALL", container.List("securityContext", "capabilities", "drop").OfType<string>());
        Assert.Empty(container.List("securityContext", "capabilities", "add"));
        Assert.NotEqual("true", container.Text("securityContext", "privileged"));
    }

    [Theory]
    [MemberData(nameof(OverlaysAndProjects))]
    public async Task Deployment_GivesEveryPathTheImageWritesAVolume_AndKeepsDataInPostgres(string overlay, string project)
    {
        var rendered = await Kustomize.RenderAsync(overlay);
        var deployment = rendered.DeploymentOf(project);
        var container = Assert.Single(deployment.Containers);
        var dockerfile = DockerfileTests.Load(project);
        var volumes = deployment.PodSpec.List("volumes").ToDictionary(v => v.Text("name")!, StringComparer.Ordinal);
        var mounts = container.List("volumeMounts")
            .Where(m => m.Text("readOnly") != "true")
            .ToDictionary(m => m.Text("mountPath")!, m => volumes[m.Text("name")!], StringComparer.Ordinal);
        var settings = Settings(rendered, container);

        // Several replicas must share one store: SQLite files in each pod would be separate databases.
        Assert.True(
            settings.ContainsKey("ConnectionStrings:Postgres") || settings.ContainsKey("LabMesh:Storage:PostgresConnectionString"),
            $"{overlay} {deployment}: no PostgreSQL connection string.");
        foreach (var path in dockerfile.Final.All("VOLUME").SelectMany(v => v.Words).Where(p => p != DockerfileTests.DataDirectory(dockerfile)))
        {
            Assert.True(mounts.TryGetValue(path, out var volume), $"{overlay} {deployment}: {path} (a VOLUME of the image) is not mounted writable.");
            Assert.NotNull(volume.At("emptyDir"));
        }
    }

    [Theory]
    [MemberData(nameof(OverlaysAndProjects))]
    public async Task Deployment_SetsOnlyKeysTheServiceReads(string overlay, string project)
    {
        var rendered = await Kustomize.RenderAsync(overlay);
        var container = Assert.Single(rendered.DeploymentOf(project).Containers);

        var names = Variables(rendered, container);

        Assert.NotEmpty(names);
        Assert.All(names, name => Assert.True(Code.WhyRead(project, name) is not null, $"{overlay}: {name} ({Code.KeyOf(name)}) is no configuration key {project} reads."));
        Assert.Contains("ConnectionStrings__Redis", names);
    }

    [Theory]
    [MemberData(nameof(OverlaysAndProjects))]
    public async Task Deployment_CallsEachPeer_RoundRobinThroughAHeadlessService(string overlay, string project)
    {
        var rendered = await Kustomize.RenderAsync(overlay);
        var deployment = rendered.DeploymentOf(project);
        var settings = Settings(rendered, Assert.Single(deployment.Containers));

        foreach (var callee in Code.Callees(project))
        {
            var key = Code.PeerKey(callee);
            Assert.True(settings.TryGetValue(key, out var address), $"{overlay} {deployment}: calls {callee} but {key} is not set.");
            Assert.StartsWith("dns:///", address, StringComparison.Ordinal);
            var (host, port) = (address["dns:///".Length..].Split(':')[0], address.Split(':')[^1]);
            var labels = host.Split('.');
            Assert.Equal([deployment.Namespace!, "svc", "cluster", "local"], labels[1..]);
            var service = rendered.Find("Service", labels[0]);
            Assert.False(service is null, $"{overlay}: {address} names no Service.");
            Assert.Equal("None", service.Spec.Text("clusterIP")); // headless: DNS answers every pod
            Assert.Equal([rendered.DeploymentOf(callee)], rendered.WorkloadsSelectedBy(service.Spec.Strings("selector")));
            var servicePort = service.Spec.List("ports").SingleOrDefault(p => p.Text("port") == port);
            Assert.False(servicePort is null, $"{overlay}: {service} has no port {port}.");
            Assert.Equal(ComposeTests.ImagePort(callee).ToString(CultureInfo.InvariantCulture), TargetPort(rendered.DeploymentOf(callee), servicePort));
        }
    }

    [Theory]
    [MemberData(nameof(OverlaysAndProjects))]
    public async Task Deployment_ExportsTelemetry_UnderItsName_ToTheCollector_ThroughTheStandardVariables(string overlay, string project)
    {
        var rendered = await Kustomize.RenderAsync(overlay);
        var deployment = rendered.DeploymentOf(project);
        var settings = Settings(rendered, Assert.Single(deployment.Containers));

        Assert.Equal(Repository.ShortName(project), settings.GetValueOrDefault("OTEL_SERVICE_NAME"));
        var target = Telemetry.TargetOf(rendered, deployment);
        Assert.DoesNotContain(target.Collector, Repository.DeployableProjects.Select(rendered.DeploymentOf));
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task EveryDeployment_HasOneAutoscaler_AndEveryAutoscalerTargetsAnExistingDeployment(string overlay)
    {
        var rendered = await Kustomize.RenderAsync(overlay);
        var autoscalers = rendered.OfKind("HorizontalPodAutoscaler").ToList();

        foreach (var autoscaler in autoscalers)
        {
            var target = autoscaler.Spec.At("scaleTargetRef");
            Assert.Equal("apps/v1", target.Text("apiVersion"));
            Assert.Equal("Deployment", target.Text("kind"));
            Assert.False(rendered.Find("Deployment", target.Text("name")!) is null, $"{overlay}: {autoscaler} targets no existing Deployment.");
            var min = int.Parse(autoscaler.Spec.Text("minReplicas") ?? "1", CultureInfo.InvariantCulture);
            var max = int.Parse(autoscaler.Spec.Text("maxReplicas")!, CultureInfo.InvariantCulture);
            Assert.InRange(min, 2, max);
            Assert.NotEmpty(autoscaler.Spec.List("metrics"));
        }

        foreach (var deployment in rendered.OfKind("Deployment"))
        {
            Assert.Single(autoscalers, a => a.Spec.Text("scaleTargetRef", "name") == deployment.Name);
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task EveryDeployment_HasOneDisruptionBudget_ThatSelectsOnlyIt_AndLetsANodeDrain(string overlay)
    {
        var rendered = await Kustomize.RenderAsync(overlay);
        var budgets = rendered.OfKind("PodDisruptionBudget").ToList();

        foreach (var budget in budgets)
        {
            var selected = rendered.Objects.Where(o => o.Kind is "Deployment" or "StatefulSet" && Selectors.Matches(budget.Spec.At("selector"), o.PodLabels)).ToList();
            var deployment = Assert.Single(selected);
            Assert.Equal("Deployment", deployment.Kind);
            var replicas = int.Parse(deployment.Spec.Text("replicas") ?? "1", CultureInfo.InvariantCulture);
            var maxUnavailable = budget.Spec.Text("maxUnavailable");
            var minAvailable = budget.Spec.Text("minAvailable");
            Assert.True(
                (maxUnavailable is not null && int.Parse(maxUnavailable, CultureInfo.InvariantCulture) >= 1)
                || (minAvailable is not null && int.Parse(minAvailable, CultureInfo.InvariantCulture) < replicas),
                $"{overlay}: {budget} lets no pod of {deployment} be evicted, so no node could be drained.");
        }

        foreach (var deployment in rendered.OfKind("Deployment"))
        {
            Assert.Single(budgets, b => Selectors.Matches(b.Spec.At("selector"), deployment.PodLabels));
        }
    }

    [Fact]
    public async Task Production_NotificationDeliversHttpsOnly_AsItsNetworkPolicyAllows()
    {
        var production = await Kustomize.RenderAsync("k8s/overlays/production");
        var settings = Settings(production, Assert.Single(production.DeploymentOf("LabMesh.Notification").Containers));
        Assert.Equal("true", settings.GetValueOrDefault("LabMesh:Notification:Webhooks:RequireHttps"));
        Assert.Equal("false", settings.GetValueOrDefault("LabMesh:Security:Reflection"));
    }

    /// <summary>The environment variable names a container gets: env, and every key of the ConfigMaps and Secrets of envFrom.</summary>
    internal static IReadOnlyList<string> Variables(Rendered rendered, object? container) => [.. Settings(rendered, container).Keys.Select(k => k.Replace(":", "__", StringComparison.Ordinal))];

    /// <summary>Configuration key → value (secret values as "(secret)") of a container's environment.</summary>
    internal static Dictionary<string, string> Settings(Rendered rendered, object? container)
    {
        var settings = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var source in container.List("envFrom"))
        {
            var (kind, name) = source.At("configMapRef") is { } configMap ? ("ConfigMap", configMap.Text("name")!) : ("Secret", source.Text("secretRef", "name")!);
            var referenced = rendered.Find(kind, name);
            Assert.False(referenced is null, $"{rendered.Overlay}: envFrom names {kind} {name}, which is not rendered.");
            foreach (var pair in referenced.Body.Map("data"))
            {
                settings[Code.KeyOf(pair.Key)] = kind == "Secret" ? "(secret)" : pair.Value as string ?? "";
            }
        }

        foreach (var env in container.List("env"))
        {
            settings[Code.KeyOf(env.Text("name")!)] = env.Text("value") ?? "(secret)";
        }

        return settings;
    }

    /// <summary>The container port a Service port leads to (a named targetPort is looked up in the workload's containers).</summary>
    internal static string? TargetPort(K8sObject workload, object? servicePort)
    {
        var target = servicePort.Text("targetPort") ?? servicePort.Text("port")!;
        return int.TryParse(target, out _)
            ? target
            : workload.Containers.SelectMany(c => c.List("ports")).Where(p => p.Text("name") == target).Select(p => p.Text("containerPort")).FirstOrDefault();
    }
}
