using System.Text.RegularExpressions;
using LabMesh.Messaging.Events;
using LabMesh.ServiceDefaults.Hosting;
using LabMesh.Security.Identity;
using LabMesh.ServiceDefaults.Peers;
using LabMesh.Messaging.Redis;
using LabMesh.Messaging.Storage;

namespace LabMesh.Deploy.Tests;

/// <summary>
/// What the services' code says a deployment must provide: which project serves each gRPC service,
/// which services each project calls, and which configuration keys each project reads.
/// </summary>
internal static partial class Code
{
    /// <summary>The shared libraries every service references through LabMesh.ServiceDefaults (Core, Messaging, Security...).</summary>
    private const string SharedLibraries = "src";

    /// <summary>
    /// Sections every service binds through AddServiceDefaults, with their options classes. "LabMesh:Redis" is
    /// the literal EventsAndCacheServiceCollectionExtensions.AddLabMeshEventsAndCache binds.
    /// </summary>
    private static readonly (string Section, Type Options)[] SharedSections =
    [
        (StorageServiceCollectionExtensions.StorageSection, typeof(StorageOptions)),
        (StorageServiceCollectionExtensions.OutboxSection, typeof(OutboxRelayOptions)),
        ("LabMesh:Redis", typeof(RedisOptions)),
        (SecurityOptions.Section, typeof(SecurityOptions)),
        (HealthOptions.Section, typeof(HealthOptions)),
    ];

    /// <summary>Host settings read from environment variables by their own names (ASP.NET Core's and the generic host's).</summary>
    private static readonly string[] HostVariables = ["ASPNETCORE_URLS", "ASPNETCORE_ENVIRONMENT", "DOTNET_ENVIRONMENT"];

    /// <summary>
    /// The OpenTelemetry SDK's standard variables a deployment sets (the specification's general SDK and OTLP
    /// exporter configuration), read by the SDK itself once ServiceDefaults wires OpenTelemetry (issue 21).
    /// </summary>
    internal static readonly string[] OpenTelemetryVariables =
    [
        "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES", "OTEL_SDK_DISABLED",
        "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "OTEL_EXPORTER_OTLP_LOGS_PROTOCOL",
        "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG", "OTEL_METRIC_EXPORT_INTERVAL",
    ];

    /// <summary>The deployable project that serves <paramref name="service"/>.</summary>
    /// <remarks>
    /// The project whose code derives from the generated <c>XxxService.XxxServiceBase</c>; for a contract
    /// not implemented yet, the project named after the package (labmesh.results.v1 → LabMesh.ResultsInterpretation).
    /// </remarks>
    public static string Owner(ProtoService service)
    {
        var implementing = Repository.DeployableProjects
            .Where(project => Regex.IsMatch(
                Repository.SourceText($"services/{project}"),
                $@":\s*{service.Name}\.{service.Name}Base\b"))
            .ToList();
        if (implementing.Count == 1)
        {
            return implementing[0];
        }

        if (implementing.Count > 1)
        {
            throw new InvalidOperationException($"{service} is implemented by {string.Join(", ", implementing)}.");
        }

        var area = service.Package.Split('.')[1];
        var named = Repository.DeployableProjects.Where(project => Repository.ShortName(project).StartsWith(area, StringComparison.Ordinal)).ToList();
        return named.Count == 1
            ? named[0]
            : throw new InvalidOperationException($"No project implements {service} and {named.Count} are named after '{area}'.");
    }

    /// <summary>The deployable projects <paramref name="project"/> calls: it registers a client of a service they own (AddPeerClient).</summary>
    public static IReadOnlySet<string> Callees(string project)
    {
        var source = Repository.SourceText($"services/{project}");
        var callees = new SortedSet<string>(StringComparer.Ordinal);
        foreach (Match client in ClientConstruction().Matches(source))
        {
            var service = Protos.LabMesh.SingleOrDefault(s => s.Name == client.Groups[1].Value);
            if (service is not null && Owner(service) != project)
            {
                callees.Add(Owner(service));
            }
        }

        return callees;
    }

    /// <summary>Every (caller, callee) pair among the deployable projects.</summary>
    public static IReadOnlySet<(string Caller, string Callee)> Calls() =>
        Repository.DeployableProjects.SelectMany(caller => Callees(caller).Select(callee => (caller, callee))).ToHashSet();

    /// <summary>True when the project binds PeerOptions (LabMesh:Services), i.e. calls other services.</summary>
    public static bool ReadsPeers(string project) =>
        Repository.SourceText($"services/{project}").Contains("PeerOptions.Section", StringComparison.Ordinal);

    /// <summary>The PeerOptions key that holds the address of <paramref name="callee"/>'s service, e.g. LabMesh:Services:ServiceRequest.</summary>
    public static string PeerKey(string callee)
    {
        var property = typeof(PeerOptions).GetProperty(callee["LabMesh.".Length..]);
        return property is not null && property.PropertyType == typeof(string)
            ? $"{PeerOptions.Section}:{property.Name}"
            : throw new InvalidOperationException($"PeerOptions has no address property for {callee}.");
    }

    /// <summary>The names the shared libraries and the project pass to GetConnectionString (ConnectionStrings:&lt;name&gt;).</summary>
    public static IReadOnlySet<string> ConnectionStrings(string project) =>
        ConnectionStringRead().Matches(Repository.SourceText(SharedLibraries) + Repository.SourceText($"services/{project}"))
            .Select(m => m.Groups[1].Value)
            .ToHashSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>
    /// Why the environment variable <paramref name="name"/> is a setting <paramref name="project"/> reads,
    /// or null when it reads no such key. "A__B__C" is the configuration key "A:B:C".
    /// </summary>
    public static string? WhyRead(string project, string name)
    {
        if (HostVariables.Contains(name, StringComparer.Ordinal))
        {
            return "a host setting";
        }

        if (OpenTelemetryVariables.Contains(name, StringComparer.Ordinal))
        {
            return WiresOpenTelemetry() ? "the OpenTelemetry SDK's standard configuration" : null;
        }

        var key = name.Replace("__", ":", StringComparison.Ordinal);
        if (string.Equals(key, LabMesh.ServiceDefaults.Hosting.RestEndpoints.UrlKey, StringComparison.OrdinalIgnoreCase))
        {
            return "RestEndpoints.UrlKey (AddServiceDefaults)";
        }

        if (key.StartsWith("Logging:", StringComparison.OrdinalIgnoreCase))
        {
            return "the host's logging configuration";
        }

        if (key.StartsWith("ConnectionStrings:", StringComparison.OrdinalIgnoreCase))
        {
            return ConnectionStrings(project).Contains(key["ConnectionStrings:".Length..]) ? "GetConnectionString" : null;
        }

        var sections = SharedSections.ToList();
        if (ReadsPeers(project))
        {
            sections.Add((PeerOptions.Section, typeof(PeerOptions)));
        }

        foreach (var (section, options) in sections)
        {
            foreach (var property in options.GetProperties().Where(p => p.CanWrite))
            {
                var propertyKey = $"{section}:{property.Name}";
                var simple = property.PropertyType == typeof(string) || property.PropertyType.IsValueType;
                if (string.Equals(key, propertyKey, StringComparison.OrdinalIgnoreCase)
                    || (!simple && key.StartsWith(propertyKey + ":", StringComparison.OrdinalIgnoreCase)))
                {
                    return $"{options.Name}.{property.Name}";
                }
            }
        }

        // A section the project's own options bind (e.g. LabMesh:Results), checked to the section only.
        foreach (Match own in SectionConstant().Matches(Repository.SourceText($"services/{project}")))
        {
            if (key.StartsWith(own.Groups[1].Value + ":", StringComparison.OrdinalIgnoreCase))
            {
                return $"section {own.Groups[1].Value} of {project}";
            }
        }

        return null;
    }

    /// <summary>True when ServiceDefaults, which every service calls, sets up the OpenTelemetry SDK (and so its OTLP exporter).</summary>
    public static bool WiresOpenTelemetry()
    {
        var source = Repository.SourceText(SharedLibraries);
        return source.Contains(".AddOpenTelemetry()", StringComparison.Ordinal)
            && (source.Contains("UseOtlpExporter", StringComparison.Ordinal) || source.Contains("AddOtlpExporter", StringComparison.Ordinal));
    }

    /// <summary>The configuration key of an environment variable name.</summary>
    public static string KeyOf(string name) => name.Replace("__", ":", StringComparison.Ordinal);

    [GeneratedRegex(@"AddPeerClient<(\w+)\.\1Client>")]
    private static partial Regex ClientConstruction();

    [GeneratedRegex(@"GetConnectionString\(\s*""([^""]+)""\s*\)")]
    private static partial Regex ConnectionStringRead();

    [GeneratedRegex(@"const\s+string\s+\w*Section\w*\s*=\s*""([^""]+)""")]
    private static partial Regex SectionConstant();
}
