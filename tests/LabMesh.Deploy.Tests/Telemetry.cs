using System.Globalization;
using Xunit.Sdk;

namespace LabMesh.Deploy.Tests;

/// <summary>Where a rendered service Deployment sends its telemetry: the collector pods and the port they receive it on.</summary>
internal sealed record TelemetryTarget(K8sObject Collector, int Port, string Protocol);

/// <summary>
/// Follows a service's standard OpenTelemetry variables through a rendered overlay (issue 21):
/// OTEL_EXPORTER_OTLP_ENDPOINT names a Service of the namespace, the Service leads to the collector's pods on a
/// container port, and the collector's own configuration receives OTLP in that protocol on that port and passes
/// it into its traces, metrics and logs pipelines.
/// </summary>
internal static class Telemetry
{
    public static TelemetryTarget TargetOf(Rendered rendered, K8sObject deployment)
    {
        var settings = WorkloadTests.Settings(rendered, Assert.Single(deployment.Containers));
        Assert.True(settings.TryGetValue("OTEL_EXPORTER_OTLP_ENDPOINT", out var endpoint), $"{rendered.Overlay} {deployment}: no OTEL_EXPORTER_OTLP_ENDPOINT, so it exports nothing.");

        // grpc is the .NET exporter's default; the variable is the specification's.
        var protocol = settings.GetValueOrDefault("OTEL_EXPORTER_OTLP_PROTOCOL") ?? "grpc";
        var receiver = protocol switch
        {
            "grpc" => "grpc",
            "http/protobuf" => "http",
            var other => throw new XunitException($"{rendered.Overlay} {deployment}: OTEL_EXPORTER_OTLP_PROTOCOL={other} is neither grpc nor http/protobuf."),
        };

        var uri = new Uri(endpoint);
        Assert.Equal("http", uri.Scheme);
        var labels = uri.Host.Split('.');
        Assert.Equal([deployment.Namespace!, "svc", "cluster", "local"], labels[1..]);
        var service = rendered.Find("Service", labels[0]);
        Assert.False(service is null, $"{rendered.Overlay}: {endpoint} names no Service.");
        var collector = Assert.Single(rendered.WorkloadsSelectedBy(service.Spec.Strings("selector")));
        var servicePort = service.Spec.List("ports").SingleOrDefault(p => p.Text("port") == uri.Port.ToString(CultureInfo.InvariantCulture));
        Assert.False(servicePort is null, $"{rendered.Overlay}: {service} has no port {uri.Port}.");
        var containerPort = int.Parse(
            WorkloadTests.TargetPort(collector, servicePort) ?? throw new XunitException($"{rendered.Overlay}: {service} port {uri.Port} leads to no port of {collector}."),
            CultureInfo.InvariantCulture);

        var config = ConfigOf(rendered, collector);
        var listen = config.Text("receivers", "otlp", "protocols", receiver, "endpoint");
        Assert.False(listen is null, $"{rendered.Overlay}: {collector}'s otlp receiver has no {receiver} endpoint.");
        Assert.EndsWith($":{containerPort}", listen, StringComparison.Ordinal);
        Assert.False(listen.StartsWith("localhost:", StringComparison.Ordinal) || listen.StartsWith("127.", StringComparison.Ordinal), $"{rendered.Overlay}: {collector} receives OTLP on loopback only ({listen}): no other pod reaches it.");
        foreach (var signal in new[] { "traces", "metrics", "logs" })
        {
            Assert.Contains("otlp", config.List("service", "pipelines", signal, "receivers").OfType<string>());
            Assert.NotEmpty(config.List("service", "pipelines", signal, "exporters"));
        }

        return new TelemetryTarget(collector, containerPort, protocol);
    }

    /// <summary>The collector's configuration: the file its --config argument names, from the ConfigMap mounted there.</summary>
    public static object? ConfigOf(Rendered rendered, K8sObject collector)
    {
        var container = Assert.Single(collector.Containers);
        var argument = container.List("args").OfType<string>().SingleOrDefault(a => a.StartsWith("--config=", StringComparison.Ordinal));
        Assert.False(argument is null, $"{rendered.Overlay}: {collector} is started without --config.");
        var path = argument["--config=".Length..];
        var volumes = collector.PodSpec.List("volumes").ToDictionary(v => v.Text("name")!, StringComparer.Ordinal);
        foreach (var mount in container.List("volumeMounts"))
        {
            var directory = mount.Text("mountPath")!.TrimEnd('/') + "/";
            if (!path.StartsWith(directory, StringComparison.Ordinal))
            {
                continue;
            }

            var configMapName = volumes[mount.Text("name")!].Text("configMap", "name");
            Assert.False(configMapName is null, $"{rendered.Overlay}: {collector} reads {path} from a volume that is no ConfigMap.");
            var configMap = rendered.Find("ConfigMap", configMapName);
            Assert.False(configMap is null, $"{rendered.Overlay}: {collector} mounts ConfigMap {configMapName}, which is not rendered.");
            var text = configMap.Body.Text("data", path[directory.Length..]);
            Assert.False(text is null, $"{rendered.Overlay}: ConfigMap {configMapName} has no key {path[directory.Length..]}.");
            return Yaml.Load(text);
        }

        throw new XunitException($"{rendered.Overlay}: {collector}'s --config {path} is on no mounted volume.");
    }
}
