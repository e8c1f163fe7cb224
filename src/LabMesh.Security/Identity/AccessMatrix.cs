using System.Text;
using Google.Protobuf.Reflection;
using LabMesh.Contracts.Audit.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.ServiceRequest.V1;

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

/// <summary>One row: who may call one RPC, and the partner rule.</summary>
/// <param name="Method">The full method name, <c>/package.Service/Method</c>.</param>
/// <param name="Allowed">The roles that may call it.</param>
/// <param name="Partner">What holds a partner, when partners are allowed.</param>
public sealed record AccessRule(string Method, Roles Allowed, PartnerRule Partner = PartnerRule.None)
{
    public bool Allows(CallerRole role) => (Allowed & role switch
    {
        CallerRole.Partner => Roles.Partner,
        CallerRole.Clinician => Roles.Clinician,
        CallerRole.Admin => Roles.Admin,
        _ => Roles.Service,
    }) != 0;
}

/// <summary>
/// Who may call what: one row per LabMesh RPC, enforced by <see cref="AuthorizationInterceptor"/> and
/// printed as the table of SECURITY.md (a test checks both ways). Every RPC reads and writes only the
/// caller's team (the handlers scope by team; another team's resource is NOT_FOUND). Health and
/// reflection are open; any other method without a row is refused.
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

    /// <summary>The rows, in the order of the services' protos.</summary>
    public static readonly IReadOnlyList<AccessRule> Rules =
    [
        .. Service(ServiceRequestService.Descriptor,
            ("GetServiceRequest", Roles.Everyone, PartnerRule.AssignedServiceRequest),
            ("ListServiceRequests", Roles.Everyone, PartnerRule.OwnServiceRequestList),
            ("UpdateTaskStatus", Roles.Service | Roles.Partner, PartnerRule.AssignedServiceRequest),
            ("RevokeServiceRequest", Roles.Service | Roles.Clinician | Roles.Admin, PartnerRule.None),
            ("BatchGetStatus", Roles.Everyone, PartnerRule.OwnServiceRequestBatch),
            ("GetServiceRequestHistory", Roles.Everyone, PartnerRule.AssignedServiceRequest),
            ("CreateServiceRequests", Roles.Service, PartnerRule.None),
            ("ConfirmServiceRequests", Roles.Service, PartnerRule.None),
            ("ApplyOrderEvent", Roles.Service, PartnerRule.None),
            ("RecordResults", Roles.Service, PartnerRule.None),
            ("RescheduleServiceRequests", Roles.Service, PartnerRule.None)),
        .. Service(RequisitionService.Descriptor,
            ("CreateRequisition", Roles.Service | Roles.Clinician, PartnerRule.None),
            ("PlaceRequisition", Roles.Service | Roles.Clinician, PartnerRule.None),
            ("GetRequisition", Roles.TeamMembers, PartnerRule.None),
            ("ListRequisitions", Roles.TeamMembers, PartnerRule.None),
            ("RecordOrderEvent", Roles.Service, PartnerRule.None),
            ("CancelRequisition", Roles.Service | Roles.Clinician, PartnerRule.None),
            ("GetRequisitionStatus", Roles.TeamMembers, PartnerRule.None),
            ("SimulateOrder", Roles.Service | Roles.Admin, PartnerRule.None),
            ("RecordResultsStage", Roles.Service, PartnerRule.None),
            ("ListParkedWork", Roles.Admin, PartnerRule.None),
            ("RetryParkedWork", Roles.Admin, PartnerRule.None),
            ("RescheduleRequisition", Roles.Service | Roles.Clinician, PartnerRule.None)),
        .. Service(ResultsInterpretationService.Descriptor,
            ("SubmitResults", Roles.Service, PartnerRule.None),
            ("AmendResults", Roles.Service, PartnerRule.None),
            ("GetResults", Roles.TeamMembers, PartnerRule.None),
            ("GetReport", Roles.TeamMembers, PartnerRule.None),
            ("InterpretMarkers", Roles.Everyone, PartnerRule.None),
            ("GetCriticalLimits", Roles.Everyone, PartnerRule.None),
            ("ShareInterpretation", Roles.Clinician, PartnerRule.None),
            ("GetFhirBundle", Roles.TeamMembers, PartnerRule.None),
            ("ListParkedWork", Roles.Admin, PartnerRule.None),
            ("RetryParkedWork", Roles.Admin, PartnerRule.None)),
        .. Service(NotificationService.Descriptor,
            ("Subscribe", Roles.TeamMembers, PartnerRule.None),
            ("ListEvents", Roles.TeamMembers, PartnerRule.None),
            ("CreateWebhookEndpoint", Roles.Admin, PartnerRule.None),
            ("GetWebhookEndpoint", Roles.Admin, PartnerRule.None),
            ("ListWebhookEndpoints", Roles.Admin, PartnerRule.None),
            ("UpdateWebhookEndpoint", Roles.Admin, PartnerRule.None),
            ("DeleteWebhookEndpoint", Roles.Admin, PartnerRule.None),
            ("RotateWebhookSecret", Roles.Admin, PartnerRule.None),
            ("SendTestEvent", Roles.Admin, PartnerRule.None),
            ("ListDeliveries", Roles.Admin, PartnerRule.None),
            ("RedeliverEvent", Roles.Admin, PartnerRule.None),
            ("AcknowledgeCriticalResult", Roles.Clinician, PartnerRule.None),
            ("DeclineCriticalResult", Roles.Clinician, PartnerRule.None),
            ("ListUnacknowledgedCriticalResults", Roles.TeamMembers, PartnerRule.None),
            ("GetCriticalResult", Roles.TeamMembers, PartnerRule.None)),
        .. Service(AuditService.Descriptor,
            ("GetAuditLog", Roles.Admin, PartnerRule.None)),
    ];

    private static readonly Dictionary<string, AccessRule> ByMethod = Rules.ToDictionary(r => r.Method, StringComparer.Ordinal);

    /// <summary>The LabMesh services the matrix covers.</summary>
    public static readonly IReadOnlyList<ServiceDescriptor> Services =
    [
        ServiceRequestService.Descriptor,
        RequisitionService.Descriptor,
        ResultsInterpretationService.Descriptor,
        NotificationService.Descriptor,
        AuditService.Descriptor,
    ];

    /// <summary>The row of <paramref name="method"/> (<c>/package.Service/Method</c>), or null when it has none.</summary>
    public static AccessRule? Find(string method) => ByMethod.GetValueOrDefault(method);

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

    /// <summary>The matrix as the Markdown table of SECURITY.md.</summary>
    public static string ToMarkdown()
    {
        var text = new StringBuilder();
        text.Append("| RPC | service | partner | clinician | admin |\n");
        text.Append("|---|:-:|:-:|:-:|:-:|\n");
        foreach (var rule in Rules)
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

    private static string Cell(AccessRule rule, CallerRole role) => rule.Allows(role) ? "yes" : "-";

    private static IEnumerable<AccessRule> Service(ServiceDescriptor service, params (string Method, Roles Allowed, PartnerRule Partner)[] rows) =>
        rows.Select(row => new AccessRule($"/{service.FullName}/{service.FindMethodByName(row.Method)?.Name
            ?? throw new InvalidOperationException($"{service.FullName} has no method {row.Method}.")}", row.Allowed, row.Partner));
}
