using LabMesh.Notification;
using LabMesh.Requisition;
using LabMesh.ResultsInterpretation;
using LabMesh.Security.Audit;
using LabMesh.Security.Identity;
using LabMesh.ServiceRequest;

namespace LabMesh.Testing;

/// <summary>
/// The gRPC service classes of LabMesh, in the order of SECURITY.md's access matrix, and the rules their
/// methods' attributes declare: who may call each RPC (<see cref="AllowAttribute"/>) and how it is audited
/// (<see cref="AuditedAttribute"/>). Tests check that these cover every RPC of the contracts.
/// </summary>
public static class LabMeshApis
{
    public static IReadOnlyList<Type> All { get; } =
        [typeof(ServiceRequestApi), typeof(RequisitionApi), typeof(ResultsApi), typeof(NotificationApi), typeof(AuditApi)];

    /// <summary>The access matrix: one row per RPC that has an <see cref="AllowAttribute"/>.</summary>
    public static IReadOnlyList<AccessRule> AccessRules { get; } = [.. All.SelectMany(AccessMatrix.Rules)];

    /// <summary>The audit classification of every RPC that has an <see cref="AuditedAttribute"/>.</summary>
    public static IReadOnlyList<AuditedMethod> AuditedMethods { get; } = [.. All.SelectMany(AuditCatalog.Methods)];

    private static readonly Dictionary<string, AccessRule> RulesByMethod = AccessRules.ToDictionary(r => r.Method, StringComparer.Ordinal);

    /// <summary>The row of <paramref name="method"/> (<c>/package.Service/Method</c>), or null when it has none.</summary>
    public static AccessRule? Find(string method) => RulesByMethod.GetValueOrDefault(method);
}
