using System.Text.RegularExpressions;

namespace LabMesh.Deploy.Tests;

/// <summary>One <c>service</c> of a .proto file under protos/.</summary>
internal sealed record ProtoService(string Package, string Name, string File)
{
    /// <summary>The gRPC service name, the first part of every method path: <c>labmesh.requisition.v1.RequisitionService</c>.</summary>
    public string FullName => $"{Package}.{Name}";

    /// <summary>A method path of this service, as a gateway sees it.</summary>
    public string PathOf(string method) => $"/{FullName}/{method}";

    public override string ToString() => FullName;
}

/// <summary>
/// The gRPC services protos/ defines, read from the <c>package</c> and <c>service</c> lines, and gRPC's own
/// that every process serves (health, reflection), from the descriptors of the grpc-dotnet packages.
/// </summary>
internal static partial class Protos
{
    public static IReadOnlyList<ProtoService> All { get; } = Load();

    /// <summary>LabMesh's own contracts (packages labmesh.*), each served by the service that owns it.</summary>
    public static IReadOnlyList<ProtoService> LabMesh { get; } =
        [.. All.Where(s => s.Package.StartsWith("labmesh.", StringComparison.Ordinal) && !IsPerProcess(s))];

    /// <summary>
    /// What every service process serves besides its own, answering for itself: gRPC health, server
    /// reflection and the audit log of the services it hosts.
    /// </summary>
    public static IReadOnlyList<ProtoService> PerProcess { get; } = [.. All.Where(IsPerProcess)];

    private static bool IsPerProcess(ProtoService service) =>
        service.Package.StartsWith("grpc.health.", StringComparison.Ordinal)
        || service.Package.StartsWith("grpc.reflection.", StringComparison.Ordinal)
        || service.FullName == "labmesh.audit.v1.AuditService";

    private static List<ProtoService> Load()
    {
        var services = new List<ProtoService>();
        foreach (var file in Directory.EnumerateFiles(Repository.PathOf("protos"), "*.proto", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            var text = Comment().Replace(File.ReadAllText(file), "");
            var package = PackageLine().Match(text);
            foreach (Match service in ServiceLine().Matches(text))
            {
                if (!package.Success)
                {
                    throw new InvalidOperationException($"{file} defines a service but no package.");
                }

                services.Add(new ProtoService(package.Groups[1].Value, service.Groups[1].Value, Repository.Relative(file)));
            }
        }

        foreach (var upstream in new[] { Grpc.Health.V1.Health.Descriptor, Grpc.Reflection.V1.ServerReflection.Descriptor, Grpc.Reflection.V1Alpha.ServerReflection.Descriptor })
        {
            services.Add(new ProtoService(upstream.File.Package, upstream.Name, upstream.File.Name));
        }

        return services;
    }

    [GeneratedRegex(@"//[^\n]*|/\*.*?\*/", RegexOptions.Singleline)]
    private static partial Regex Comment();

    [GeneratedRegex(@"^\s*package\s+([A-Za-z_][\w.]*)\s*;", RegexOptions.Multiline)]
    private static partial Regex PackageLine();

    [GeneratedRegex(@"^\s*service\s+([A-Za-z_]\w*)\s*\{", RegexOptions.Multiline)]
    private static partial Regex ServiceLine();
}
