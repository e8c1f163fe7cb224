namespace LabMesh.Deploy.Tests;

/// <summary>
/// The network graph the NetworkPolicies of each overlay allow, compared with what the code does: the gateway
/// reaches every service, services reach exactly the services they call, every service reaches PostgreSQL,
/// Redis and DNS, and only Notification leaves the cluster, for webhooks on 443.
/// </summary>
public sealed class NetworkPolicyTests
{
    private const int PostgresPort = 5432;
    private const int RedisPort = 6379;
    private const string Webhooks = "LabMesh.Notification";

    public static TheoryData<string> Overlays => Kustomize.OverlayData;

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task EveryPod_IsGovernedInBothDirections(string overlay)
    {
        var rendered = await Kustomize.RenderAsync(overlay);
        var policies = new NetworkPolicies(rendered);

        foreach (var workload in rendered.Objects.Where(o => o.Kind is "Deployment" or "StatefulSet"))
        {
            var pod = PodOf(rendered, workload);
            Assert.NotEmpty(policies.Governing(pod, "Ingress"));
            Assert.NotEmpty(policies.Governing(pod, "Egress"));
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task Services_ReachExactlyTheServicesTheirCodeCalls(string overlay)
    {
        var rendered = await Kustomize.RenderAsync(overlay);
        var policies = new NetworkPolicies(rendered);
        var expected = Code.Calls();
        Assert.NotEmpty(expected);

        var allowed = new HashSet<(string, string)>();
        foreach (var caller in Repository.DeployableProjects)
        {
            foreach (var callee in Repository.DeployableProjects.Where(p => p != caller))
            {
                if (policies.Allows(PodOf(rendered, rendered.DeploymentOf(caller)), PodOf(rendered, rendered.DeploymentOf(callee)), ComposeTests.ImagePort(callee)))
                {
                    allowed.Add((caller, callee));
                }
            }
        }

        Assert.Equal(expected.Order(), allowed.Order());
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task TheGatewaysPods_ReachEveryService_AndNoOtherPodDoes(string overlay)
    {
        var rendered = await Kustomize.RenderAsync(overlay);
        var policies = new NetworkPolicies(rendered);
        var gatewayLabels = Assert.Single(rendered.OfKind("Gateway")).Spec.Strings("infrastructure", "labels");
        Assert.NotEmpty(gatewayLabels);
        var gateway = Endpoint.Pod("gateway pod", "gateway-system", gatewayLabels);
        var stranger = Endpoint.Pod("unlabelled pod elsewhere", "other", new Dictionary<string, string> { ["app"] = "x" });
        var neighbour = Endpoint.Pod("unlabelled pod in the namespace", Namespace(rendered), new Dictionary<string, string> { ["app"] = "x" });

        foreach (var project in Repository.DeployableProjects)
        {
            var service = PodOf(rendered, rendered.DeploymentOf(project));
            var port = ComposeTests.ImagePort(project);
            Assert.True(policies.Allows(gateway, service, port), $"{overlay}: the gateway cannot reach {project}.");
            Assert.False(policies.Allows(stranger, service, port), $"{overlay}: any pod of another namespace reaches {project}.");
            Assert.False(policies.Allows(neighbour, service, port), $"{overlay}: any pod of the namespace reaches {project}.");
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task EveryPod_ResolvesNames_ThroughClusterDns(string overlay)
    {
        var rendered = await Kustomize.RenderAsync(overlay);
        var policies = new NetworkPolicies(rendered);
        var dns = Endpoint.Pod("kube-dns", "kube-system", new Dictionary<string, string> { ["k8s-app"] = "kube-dns" });

        foreach (var workload in rendered.Objects.Where(o => o.Kind is "Deployment" or "StatefulSet"))
        {
            Assert.True(policies.Allows(PodOf(rendered, workload), dns, 53, "UDP"), $"{overlay}: {workload} cannot resolve names.");
            Assert.True(policies.Allows(PodOf(rendered, workload), dns, 53, "TCP"), $"{overlay}: {workload} cannot resolve long answers over TCP.");
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task EveryService_ReachesPostgresAndRedis_AndNothingElseReachesThem(string overlay)
    {
        var rendered = await Kustomize.RenderAsync(overlay);
        var policies = new NetworkPolicies(rendered);
        var neighbour = Endpoint.Pod("unlabelled pod in the namespace", Namespace(rendered), new Dictionary<string, string> { ["app"] = "x" });

        foreach (var (name, port) in new[] { ("postgres", PostgresPort), ("redis", RedisPort) })
        {
            // In the overlay (dev) or outside the cluster (production): an address the tests pick.
            var statefulSet = rendered.Find("StatefulSet", name);
            var store = statefulSet is null ? Endpoint.External("198.51.100.20") : PodOf(rendered, statefulSet);
            if (statefulSet is not null)
            {
                Assert.Contains(port.ToString(System.Globalization.CultureInfo.InvariantCulture), statefulSet.Containers.SelectMany(c => c.List("ports")).Select(p => p.Text("containerPort")));
                Assert.False(policies.Allows(neighbour, store, port), $"{overlay}: any pod of the namespace reaches {name}.");
            }

            foreach (var project in Repository.DeployableProjects)
            {
                Assert.True(policies.Allows(PodOf(rendered, rendered.DeploymentOf(project)), store, port), $"{overlay}: {project} cannot reach {name} on {port}.");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task OnlyNotification_LeavesTheCluster_ForWebhooksOn443(string overlay)
    {
        var rendered = await Kustomize.RenderAsync(overlay);
        var policies = new NetworkPolicies(rendered);
        var partner = Endpoint.External("203.0.113.10");

        foreach (var project in Repository.DeployableProjects)
        {
            var pod = PodOf(rendered, rendered.DeploymentOf(project));
            Assert.Equal(project == Webhooks, policies.Allows(pod, partner, 443));
            Assert.False(policies.Allows(pod, partner, 80), $"{overlay}: {project} reaches the internet on port 80.");
        }

        var notification = PodOf(rendered, rendered.DeploymentOf(Webhooks));
        Assert.False(policies.Allows(notification, Endpoint.External("169.254.169.254"), 443), $"{overlay}: Notification reaches the cloud metadata address.");
        Assert.False(policies.Allows(notification, Endpoint.External("10.1.2.3"), 443), $"{overlay}: Notification reaches private addresses.");
    }

    [Theory]
    [MemberData(nameof(Overlays))]
    public async Task EveryService_ReachesTheTelemetryCollector_AndNoOtherPodDoes(string overlay)
    {
        var rendered = await Kustomize.RenderAsync(overlay);
        var policies = new NetworkPolicies(rendered);
        var neighbour = Endpoint.Pod("unlabelled pod in the namespace", Namespace(rendered), new Dictionary<string, string> { ["app"] = "x" });
        var stranger = Endpoint.Pod("unlabelled pod elsewhere", "other", new Dictionary<string, string> { ["app"] = "x" });

        foreach (var project in Repository.DeployableProjects)
        {
            var target = Telemetry.TargetOf(rendered, rendered.DeploymentOf(project));
            var collector = PodOf(rendered, target.Collector);
            Assert.True(policies.Allows(PodOf(rendered, rendered.DeploymentOf(project)), collector, target.Port), $"{overlay}: {project} cannot reach {target.Collector} on {target.Port}.");
            Assert.False(policies.Allows(neighbour, collector, target.Port), $"{overlay}: any pod of the namespace sends telemetry to {target.Collector}.");
            Assert.False(policies.Allows(stranger, collector, target.Port), $"{overlay}: any pod of another namespace sends telemetry to {target.Collector}.");
        }
    }

    private static string Namespace(Rendered rendered) => rendered.OfKind("NetworkPolicy").Select(p => p.Namespace!).First();

    private static Endpoint PodOf(Rendered rendered, K8sObject workload)
    {
        var namespaceLabels = new Dictionary<string, string>(rendered.Find("Namespace", workload.Namespace!)?.Labels ?? [], StringComparer.Ordinal)
        {
            ["kubernetes.io/metadata.name"] = workload.Namespace!,
        };
        return Endpoint.Pod(workload.ToString(), workload.Namespace!, workload.PodLabels, namespaceLabels);
    }
}
