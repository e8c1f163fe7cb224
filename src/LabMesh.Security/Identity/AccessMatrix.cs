using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Text;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Microsoft.AspNetCore.Http;

namespace LabMesh.Security.Identity;

/// <summary>Roles as a set, for a row of the <see cref="AccessMatrix"/>.</summary>
[Flags]
public enum Roles
{
    None = 0,
    Service = 1,
    Partner = 2,
    Clinician = 4,
    Admin = 8,
    TeamMembers = Service | Clinician | Admin,
    Everyone = Service | Partner | Clinician | Admin,
}

/// <summary>What a partner may touch when its role is allowed on a method.</summary>
public enum PartnerRule
{
    /// <summary>Nothing more than the role check (or partners are not allowed at all).</summary>
    None,

    /// <summary>The request's <c>id</c> is a service request assigned to the partner; any other answers NOT_FOUND.</summary>
    AssignedServiceRequest,

    /// <summary>The list is narrowed to the partner's own service requests (<c>partner_id</c> filter).</summary>
    OwnServiceRequestList,

    /// <summary>Statuses of service requests assigned to others come back as not found.</summary>
    OwnServiceRequestBatch,
}

/// <summary>
/// Who may call the RPC a method answers, and what holds a partner: written on the method that overrides
/// the generated base class's, so the rule stands next to the RPC it governs. grpc-dotnet puts the
/// method's attributes in the metadata of its endpoint, where <see cref="AuthorizationInterceptor"/>
/// reads it; a method without one is refused to every role (fail closed).
/// </summary>
/// <param name="roles">The roles that may call it.</param>
[AttributeUsage(AttributeTargets.Method, Inherited = false)]
public sealed class AllowAttribute(Roles roles) : Attribute
{
    /// <summary>The roles that may call it.</summary>
    public Roles Roles { get; } = roles;

    /// <summary>What holds a partner, when <see cref="Roles"/> holds <see cref="Roles.Partner"/>.</summary>
    public PartnerRule Partner { get; set; }

    public bool Allows(CallerRole role) => AccessMatrix.Includes(Roles, role);
}

/// <summary>One row of the matrix: who may call one RPC, and the partner rule.</summary>
/// <param name="Method">The full method name, <c>/package.Service/Method</c>.</param>
/// <param name="Allowed">The roles that may call it.</param>
/// <param name="Partner">What holds a partner, when partners are allowed.</param>
public sealed record AccessRule(string Method, Roles Allowed, PartnerRule Partner = PartnerRule.None)
{
    public bool Allows(CallerRole role) => AccessMatrix.Includes(Allowed, role);
}

/// <summary>
/// Who may call what: the <see cref="AllowAttribute"/> on the method of each RPC, enforced by
/// <see cref="AuthorizationInterceptor"/> and printed as the table of SECURITY.md (a test reads the
/// services' classes and checks both ways). Every RPC reads and writes only the caller's team (the
/// handlers scope by team; another team's resource is NOT_FOUND). Health and reflection are open; any
/// other method without a rule is refused.
/// </summary>
public static class AccessMatrix
{
    /// <summary>Services answered without a token: probes and debugging tools.</summary>
    public static readonly IReadOnlyList<string> OpenServices =
    [
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ];

    /// <summary>The rule of the method <paramref name="context"/> calls: its <see cref="AllowAttribute"/>, or null when it has none.</summary>
    public static AllowAttribute? Of(ServerCallContext context) =>
        context.GetHttpContext().GetEndpoint()?.Metadata.GetMetadata<AllowAttribute>();

    /// <summary>
    /// The rows of the gRPC service class <paramref name="implementation"/>, in the order of its proto. A
    /// method without an <see cref="AllowAttribute"/> has no row (and is refused to every role).
    /// </summary>
    public static IEnumerable<AccessRule> Rules([DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicMethods)] Type implementation) =>
        from rpc in RpcHandlers.Of(implementation)
        let allow = rpc.Handler.GetCustomAttribute<AllowAttribute>()
        where allow is not null
        select new AccessRule(rpc.FullName, allow.Roles, allow.Partner);

    /// <summary>True for the methods of <see cref="OpenServices"/>.</summary>
    public static bool IsOpen(string method)
    {
        foreach (var service in OpenServices)
        {
            if (method.Length > service.Length + 2 && method[0] == '/' && method[service.Length + 1] == '/'
                && method.AsSpan(1, service.Length).SequenceEqual(service))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The rows as the Markdown table of SECURITY.md.</summary>
    public static string ToMarkdown(IEnumerable<AccessRule> rules)
    {
        var text = new StringBuilder();
        text.Append("| RPC | service | partner | clinician | admin |\n");
        text.Append("|---|:-:|:-:|:-:|:-:|\n");
        foreach (var rule in rules)
        {
            var partner = !rule.Allows(CallerRole.Partner) ? "-" : rule.Partner switch
            {
                PartnerRule.AssignedServiceRequest => "assigned only",
                PartnerRule.OwnServiceRequestList => "own only",
                PartnerRule.OwnServiceRequestBatch => "own only",
                _ => "yes",
            };
            text.Append("| `").Append(rule.Method[1..]).Append("` | ")
                .Append(Cell(rule, CallerRole.Service)).Append(" | ")
                .Append(partner).Append(" | ")
                .Append(Cell(rule, CallerRole.Clinician)).Append(" | ")
                .Append(Cell(rule, CallerRole.Admin)).Append(" |\n");
        }

        return text.ToString();
    }

    internal static bool Includes(Roles roles, CallerRole role) => (roles & role switch
    {
        CallerRole.Partner => Roles.Partner,
        CallerRole.Clinician => Roles.Clinician,
        CallerRole.Admin => Roles.Admin,
        _ => Roles.Service,
    }) != 0;

    private static string Cell(AccessRule rule, CallerRole role) => rule.Allows(role) ? "yes" : "-";
}

/// <summary>The RPCs a gRPC service class implements, each with the method that answers it.</summary>
public static class RpcHandlers
{
    /// <summary>The contract of <paramref name="implementation"/>: the service of the generated base class it derives from.</summary>
    public static ServiceDescriptor Service(Type implementation) => Contract(implementation).Service;

    /// <summary>
    /// Each RPC of <paramref name="implementation"/>'s contract, in the order of its proto, with the method that
    /// answers it as grpc-dotnet binds it (so its attributes are the endpoint's metadata): the class's override of
    /// the generated virtual method, or that method itself (which answers UNIMPLEMENTED) when not overridden.
    /// </summary>
    public static IEnumerable<(string FullName, MethodDescriptor Method, MethodInfo Handler)> Of(
        [DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicMethods)] Type implementation)
    {
        var (service, serviceBase) = Contract(implementation);
        var handlers = implementation.GetMethods(BindingFlags.Public | BindingFlags.Instance)
            .Where(method => method.IsVirtual && method.GetBaseDefinition().DeclaringType == serviceBase)
            .ToDictionary(method => method.Name, StringComparer.Ordinal);
        return service.Methods.Select(method => ($"/{service.FullName}/{method.Name}", method,
            handlers.GetValueOrDefault(method.Name) ?? throw new InvalidOperationException($"{implementation} has no method {method.Name}.")));
    }

    private static (ServiceDescriptor Service, Type ServiceBase) Contract(Type implementation)
    {
        ArgumentNullException.ThrowIfNull(implementation);
        for (var type = implementation; type is not null; type = type.BaseType)
        {
            if (type.GetCustomAttribute<BindServiceMethodAttribute>(inherit: false) is { } bind
                && bind.BindType.GetProperty("Descriptor", BindingFlags.Public | BindingFlags.Static)?.GetValue(null) is ServiceDescriptor service)
            {
                return (service, type);
            }
        }

        throw new ArgumentException($"{implementation} does not derive from a generated gRPC service base class.", nameof(implementation));
    }
}
