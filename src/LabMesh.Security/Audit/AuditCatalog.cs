using System.Collections.Frozen;
using Grpc.Core;

namespace LabMesh.Security.Audit;

/// <summary>What a mutating RPC changes: a <see cref="Type"/>, and where the target's id is.</summary>
/// <param name="Type">The audit record's target type, e.g. <c>Requisition</c>.</param>
/// <param name="IdPath">The id's field path, e.g. <c>id</c> or <c>requisition.id</c>.</param>
/// <param name="InResponse">True for a create: the id is in the response, given by the service.</param>
public sealed record AuditTarget(string Type, string IdPath, bool InResponse);

/// <summary>How the audit log treats one RPC.</summary>
/// <param name="Method">The full gRPC method, <c>/package.Service/Method</c>.</param>
/// <param name="Store">The store (keyed <c>Database</c>) of the service, which keeps its audit records.</param>
/// <param name="Target">What a mutation changes; null for a read, which is not recorded.</param>
public sealed record AuditedMethod(string Method, string? Store, AuditTarget? Target)
{
    public bool Mutates => Target is not null;
}

/// <summary>
/// Every RPC of LabMesh's services, each classified as a mutation (recorded, with its target) or a
/// read (not recorded). Explicit on purpose: a test enumerates every method of the generated
/// descriptors and fails on one missing here, and at run time a LabMesh method missing here is
/// refused (fail closed) rather than run unaudited.
/// </summary>
public static class AuditCatalog
{
    /// <summary>A read: not recorded.</summary>
    private const AuditTarget? Reads = null;

    /// <summary>Every classified method by its full name.</summary>
    public static FrozenDictionary<string, AuditedMethod> Methods { get; } = Build(
        Service("labmesh.requisition.v1.RequisitionService", "requisition",
            ("CreateRequisition", Creates("Requisition", "requisition.id")),
            ("PlaceRequisition", Changes("Requisition", "id")),
            ("GetRequisition", Reads),
            ("ListRequisitions", Reads),
            ("RecordOrderEvent", Changes("Requisition", "id")),
            ("CancelRequisition", Changes("Requisition", "id")),
            ("GetRequisitionStatus", Reads),
            ("SimulateOrder", Changes("Requisition", "id")),
            ("RecordResultsStage", Changes("Requisition", "id")),
            ("ListParkedWork", Reads),
            ("RetryParkedWork", Changes("ParkedWork", "item_id")),
            ("RescheduleRequisition", Changes("Requisition", "id"))),
        Service("labmesh.servicerequest.v1.ServiceRequestService", "servicerequest",
            ("GetServiceRequest", Reads),
            ("ListServiceRequests", Reads),
            ("UpdateTaskStatus", Changes("ServiceRequest", "id")),
            ("RevokeServiceRequest", Changes("ServiceRequest", "id")),
            ("BatchGetStatus", Reads),
            ("GetServiceRequestHistory", Reads),
            // The batch calls of the Requisition and ResultsInterpretation services change the
            // service requests of one requisition: the requisition is their target.
            ("CreateServiceRequests", Changes("Requisition", "requisition_id")),
            ("ConfirmServiceRequests", Changes("Requisition", "requisition_id")),
            ("ApplyOrderEvent", Changes("Requisition", "requisition_id")),
            ("RecordResults", Changes("Requisition", "requisition_id")),
            ("RescheduleServiceRequests", Changes("Requisition", "requisition_id"))),
        Service("labmesh.results.v1.ResultsInterpretationService", "results",
            ("SubmitResults", Creates("Report", "report.id")),
            ("AmendResults", Changes("Report", "report_id")),
            ("GetResults", Reads),
            ("GetReport", Reads),
            ("InterpretMarkers", Reads),
            ("GetCriticalLimits", Reads),
            ("ShareInterpretation", Changes("Requisition", "requisition_id")),
            ("GetFhirBundle", Reads),
            ("ListParkedWork", Reads),
            ("RetryParkedWork", Changes("ParkedWork", "item_id"))),
        Service("labmesh.notification.v1.NotificationService", "notification",
            ("Subscribe", Reads),
            ("ListEvents", Reads),
            ("CreateWebhookEndpoint", Creates("WebhookEndpoint", "endpoint.id")),
            ("GetWebhookEndpoint", Reads),
            ("ListWebhookEndpoints", Reads),
            ("UpdateWebhookEndpoint", Changes("WebhookEndpoint", "id")),
            ("DeleteWebhookEndpoint", Changes("WebhookEndpoint", "id")),
            ("RotateWebhookSecret", Changes("WebhookEndpoint", "id")),
            ("SendTestEvent", Changes("WebhookEndpoint", "endpoint_id")),
            ("ListDeliveries", Reads),
            ("RedeliverEvent", Creates("Delivery", "delivery.id")),
            ("AcknowledgeCriticalResult", Changes("CriticalResult", "id")),
            ("DeclineCriticalResult", Changes("CriticalResult", "id")),
            ("ListUnacknowledgedCriticalResults", Reads),
            ("GetCriticalResult", Reads)),
        Service("labmesh.audit.v1.AuditService", null,
            ("GetAuditLog", Reads)));

    /// <summary>The stores that keep audit records, one per service.</summary>
    public static IReadOnlyList<string> Stores { get; } =
        [.. Methods.Values.Select(m => m.Store).OfType<string>().Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];

    /// <summary>
    /// The classification of <paramref name="method"/>; null for a method outside LabMesh's contracts
    /// (gRPC health, reflection). UNIMPLEMENTED for a LabMesh method nobody classified.
    /// </summary>
    public static AuditedMethod? Classify(string method)
    {
        if (Methods.TryGetValue(method, out var audited))
        {
            return audited;
        }

        return method.StartsWith("/labmesh.", StringComparison.Ordinal)
            ? throw new RpcException(new Status(StatusCode.Unimplemented, "This method is not classified for the audit log, so it is not served."))
            : null;
    }

    private static AuditTarget Changes(string type, string idPath) => new(type, idPath, InResponse: false);

    private static AuditTarget Creates(string type, string idPath) => new(type, idPath, InResponse: true);

    private static IEnumerable<AuditedMethod> Service(string service, string? store, params (string Name, AuditTarget? Target)[] methods) =>
        methods.Select(m => new AuditedMethod($"/{service}/{m.Name}", store, m.Target));

    private static FrozenDictionary<string, AuditedMethod> Build(params IEnumerable<AuditedMethod>[] services) =>
        services.SelectMany(s => s).ToFrozenDictionary(m => m.Method, StringComparer.Ordinal);
}
