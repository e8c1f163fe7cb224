using System.Reflection;
using Google.Protobuf.Reflection;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Contracts.ServiceRequest.V1;

namespace LabMesh.Cli.Mesh;

/// <summary>
/// The seeds' own words for the contracts' enums: seed 004's <c>collecting_sample</c>, seed 003's
/// <c>partial_results</c>, seed 000's <c>ORDER_CONFIRMED</c>. Null where the enum says "none yet"
/// (UNSPECIFIED): a draft has no order status, a new service request no business status.
/// </summary>
internal static class Words
{
    /// <summary>Seed 004's high-level order status: <c>received</c>, <c>collecting_sample</c>, ...</summary>
    public static string? Order(OrderStatus status) => Lower(status, "ORDER_STATUS_");

    /// <summary>Seed 003's lifecycle view: <c>purchased</c>, <c>partial_results</c>, ...</summary>
    public static string? Lifecycle(LifecycleStatus status) => Lower(status, "LIFECYCLE_STATUS_");

    /// <summary>Seed 000's task_business_status, as the seed writes it: <c>ORDER_CONFIRMED</c>, ...</summary>
    public static string? TaskBusiness(TaskBusinessStatus status) =>
        status == TaskBusinessStatus.Unspecified ? null : ProtoName(status);

    /// <summary>Seed 000's FHIR status: <c>active</c>, <c>completed</c>, <c>revoked</c>.</summary>
    public static string? ServiceRequest(ServiceRequestStatus status) => Lower(status, "SERVICE_REQUEST_STATUS_");

    /// <summary>Seed 004's interpretation: <c>normal</c>, <c>abnormal</c>, <c>critical</c>.</summary>
    public static string? Interpretation(Interpretation interpretation) => Lower(interpretation, "INTERPRETATION_");

    /// <summary>Seed 004's report status: <c>partial</c>, <c>final</c>.</summary>
    public static string? Report(ReportStatus status) => Lower(status, "REPORT_STATUS_");

    /// <summary>Seed 004's modality word: <c>testkit</c>, <c>walk_in_test</c>, <c>at_home_phlebotomy</c>.</summary>
    public static string? Modality(TestModality modality) => Lower(modality, "TEST_MODALITY_");

    /// <summary>CLSI GP47's tier: <c>critical_risk</c>, <c>significant_risk</c>.</summary>
    public static string? Tier(CriticalTier tier) => Lower(tier, "CRITICAL_TIER_");

    /// <summary><c>open</c>, <c>escalated</c>, <c>acknowledged</c>.</summary>
    public static string? CriticalResult(CriticalResultState state) => Lower(state, "CRITICAL_RESULT_STATE_");

    private static string? Lower<T>(T value, string prefix)
        where T : struct, Enum
    {
        if (Convert.ToInt32(value, System.Globalization.CultureInfo.InvariantCulture) == 0)
        {
            return null;
        }

        var name = ProtoName(value);
        return (name.StartsWith(prefix, StringComparison.Ordinal) ? name[prefix.Length..] : name).ToLowerInvariant();
    }

    /// <summary>The value's name in the .proto file, which generated C# keeps as an attribute.</summary>
    private static string ProtoName<T>(T value)
        where T : struct, Enum =>
        typeof(T).GetField(value.ToString())?.GetCustomAttribute<OriginalNameAttribute>()?.Name ?? value.ToString();
}
