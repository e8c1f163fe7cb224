using System.Reflection;
using Google.Protobuf.Reflection;
using LabMesh.Security.Identity;
using LabMesh.Testing;

namespace LabMesh.Identity.Tests;

/// <summary>
/// The matrix, read from the <see cref="AllowAttribute"/> on each RPC's method in the services' classes, covers every
/// RPC of every LabMesh service, and SECURITY.md shows exactly that matrix.
/// </summary>
public sealed class AccessMatrixTests
{
    private const string Begin = "<!-- access-matrix:begin -->";
    private const string End = "<!-- access-matrix:end -->";

    [Fact]
    public void EveryRpcOfEveryLabMeshService_HasExactlyOneRow()
    {
        var services = typeof(LabMesh.Contracts.Requisition.V1.RequisitionService).Assembly.GetTypes()
            .Select(t => t.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static)?.GetValue(null))
            .OfType<ServiceDescriptor>()
            .Where(s => s.FullName.StartsWith("labmesh.", StringComparison.Ordinal))
            .ToList();
        Assert.Equal(services.Select(s => s.FullName).Order(), LabMeshApis.All.Select(api => RpcHandlers.Service(api).FullName).Order());

        var methods = services.SelectMany(s => s.Methods.Select(m => $"/{s.FullName}/{m.Name}")).ToList();
        Assert.All(methods, method => Assert.True(LabMeshApis.Find(method) is not null, $"{method}: its method in the service's class has no [Allow]."));
        Assert.Equal(methods.Order(), LabMeshApis.AccessRules.Select(r => r.Method).Order());
        Assert.Equal(LabMeshApis.AccessRules.Count, LabMeshApis.AccessRules.Select(r => r.Method).Distinct().Count());
    }

    [Fact]
    public void SecurityMd_ShowsTheMatrixOfTheCode()
    {
        var text = File.ReadAllText(Path.Combine(RepositoryRoot(), "SECURITY.md")).Replace("\r\n", "\n", StringComparison.Ordinal);
        var start = text.IndexOf(Begin, StringComparison.Ordinal);
        var end = text.IndexOf(End, StringComparison.Ordinal);
        Assert.True(start >= 0 && end > start, $"SECURITY.md has no {Begin} ... {End} block.");

        var documented = text[(start + Begin.Length)..end].Trim('\n');
        var code = AccessMatrix.ToMarkdown(LabMeshApis.AccessRules);
        Assert.True(documented == code.Trim('\n'),
            "SECURITY.md's access matrix differs from the [Allow] attributes of the services' methods. Replace the block with:\n" + code);
    }

    [Fact]
    public void HealthAndReflection_AreOpen_AndNothingElse()
    {
        Assert.True(AccessMatrix.IsOpen("/grpc.health.v1.Health/Check"));
        Assert.True(AccessMatrix.IsOpen("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"));
        Assert.True(AccessMatrix.IsOpen("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"));
        Assert.False(AccessMatrix.IsOpen("/grpc.health.v1.HealthX/Check"));
        Assert.False(AccessMatrix.IsOpen("/grpc.health.v1.Health"));
        Assert.All(LabMeshApis.AccessRules, rule => Assert.False(AccessMatrix.IsOpen(rule.Method)));
    }

    [Fact]
    public void IssueRules_HoldInTheMatrix()
    {
        static AccessRule Row(string method) => LabMeshApis.AccessRules.Single(r => r.Method.EndsWith("/" + method, StringComparison.Ordinal));

        // Only services create service requests and submit results on behalf of labs; the internal RPCs the
        // services call on each other (no REST path) stay service-only.
        foreach (var method in new[]
        {
            "CreateServiceRequests", "ConfirmServiceRequests", "ApplyOrderEvent", "RecordResults", "RescheduleServiceRequests",
            "RecordOrderEvent", "RecordResultsStage", "SubmitResults", "AmendResults",
        })
        {
            Assert.Equal(Roles.Service, Row(method).Allowed);
        }

        // Only admins manage webhook endpoints.
        Assert.All(LabMeshApis.AccessRules.Where(r => r.Method.Contains("Webhook", StringComparison.Ordinal)), r => Assert.Equal(Roles.Admin, r.Allowed));

        // Clinicians acknowledge critical results and share interpretations.
        Assert.Equal(Roles.Clinician, Row("AcknowledgeCriticalResult").Allowed);
        Assert.Equal(Roles.Clinician, Row("ShareInterpretation").Allowed);

        // A partner touches only service requests assigned to it.
        Assert.All(LabMeshApis.AccessRules.Where(r => r.Allows(CallerRole.Partner) && r.Method.Contains("ServiceRequestService", StringComparison.Ordinal)),
            r => Assert.NotEqual(PartnerRule.None, r.Partner));
    }

    internal static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "LabMesh.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("LabMesh.sln not found above the test assembly.");
    }
}
