using System.Diagnostics.CodeAnalysis;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;

namespace LabMesh.Core.Vocabulary;

/// <summary>
/// One order status of seed 004, <c>[high].[modality].[low]</c>, e.g.
/// <c>collecting_sample.testkit.transit_customer</c>: the one parser of that form for every service.
/// <see cref="ToString"/> gives that form.
/// </summary>
/// <remarks>
/// The high-level word is <see cref="OrderStatus"/>'s word and the modality word <see cref="TestModality"/>'s
/// (<see cref="EnumWords"/>), so the contract is the one list of both. Parsing does not check the low-level word
/// against the modality's list of seed 004: the Requisition service's vocabulary (its <c>Modalities</c>) does.
/// </remarks>
public sealed record NamespacedStatus(OrderStatus High, TestModality Modality, string Low)
{
    /// <summary>The high-level words, in the order of the order's life: <c>received</c>, <c>collecting_sample</c>, ...</summary>
    public static IReadOnlyList<string> HighWords { get; } =
        [.. Enum.GetValues<OrderStatus>().Select(EnumWords.Word).Where(w => w.Length > 0)];

    /// <summary>The modality words: <c>testkit</c>, <c>walk_in_test</c>, <c>at_home_phlebotomy</c>.</summary>
    public static IReadOnlyList<string> ModalityWords { get; } =
        [.. Enum.GetValues<TestModality>().Select(EnumWords.Word).Where(w => w.Length > 0)];

    /// <summary>completed, cancelled and failed end the order.</summary>
    public bool IsTerminal => IsTerminalHigh(High);

    /// <summary>completed, cancelled and failed end the order.</summary>
    public static bool IsTerminalHigh(OrderStatus high) =>
        high is OrderStatus.Completed or OrderStatus.Cancelled or OrderStatus.Failed;

    /// <summary>
    /// Reads <c>[high].[modality].[low]</c> with a known high-level word, a known modality word and a
    /// non-empty low-level word.
    /// </summary>
    public static bool TryParse(string? value, [NotNullWhen(true)] out NamespacedStatus? status)
    {
        status = null;
        var parts = (value ?? "").Split('.');
        if (parts.Length != 3 || parts[2].Length == 0
            || !EnumWords.TryParse(parts[0], out OrderStatus high) || !EnumWords.TryParse(parts[1], out TestModality modality))
        {
            return false;
        }

        status = new NamespacedStatus(high, modality, parts[2]);
        return true;
    }

    /// <summary>The namespaced form, <c>[high].[modality].[low]</c>.</summary>
    public override string ToString() => $"{EnumWords.Word(High)}.{EnumWords.Word(Modality)}.{Low}";
}
