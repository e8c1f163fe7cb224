using System.Diagnostics.CodeAnalysis;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Core.Errors;
using LabMesh.Core.Vocabulary;

namespace LabMesh.Requisition.Domain;

/// <summary>
/// Seed 004's vocabularies: the high-level order statuses and, per test modality, the namespaced
/// sub-statuses exactly as the seed lists them (and in its order).
/// </summary>
public static class Modalities
{
    /// <summary>Every modality, in enum order.</summary>
    public static IReadOnlyList<TestModality> All { get; } =
        [TestModality.Testkit, TestModality.WalkInTest, TestModality.AtHomePhlebotomy];

    private static readonly string[] Testkit =
    [
        "received.testkit.ordered",
        "received.testkit.awaiting_registration",
        "received.testkit.testkit_registered",
        "received.testkit.requisition_created",
        "collecting_sample.testkit.transit_customer",
        "collecting_sample.testkit.out_for_delivery",
        "collecting_sample.testkit.with_customer",
        "collecting_sample.testkit.transit_lab",
        "sample_with_lab.testkit.delivered_to_lab",
        "completed.testkit.completed",
        "failed.testkit.failure_to_deliver_to_customer",
        "failed.testkit.failure_to_deliver_to_lab",
        "failed.testkit.sample_error",
        "failed.testkit.lost",
        "cancelled.testkit.cancelled",
        "cancelled.testkit.do_not_process",
    ];

    private static readonly string[] WalkInTest =
    [
        "received.walk_in_test.ordered",
        "received.walk_in_test.requisition_created",
        "sample_with_lab.walk_in_test.partial_results",
        "completed.walk_in_test.completed",
        "failed.walk_in_test.sample_error",
        "cancelled.walk_in_test.cancelled",
    ];

    private static readonly string[] AtHomePhlebotomy =
    [
        "received.at_home_phlebotomy.ordered",
        "received.at_home_phlebotomy.requisition_created",
        "collecting_sample.at_home_phlebotomy.appointment_scheduled",
        "collecting_sample.at_home_phlebotomy.draw_completed",
        "collecting_sample.at_home_phlebotomy.appointment_cancelled",
        "sample_with_lab.at_home_phlebotomy.partial_results",
        "completed.at_home_phlebotomy.completed",
        "cancelled.at_home_phlebotomy.cancelled",
    ];

    /// <summary>The modality's word in namespaced statuses: <c>testkit</c>, <c>walk_in_test</c>, <c>at_home_phlebotomy</c>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">UNSPECIFIED or unknown.</exception>
    public static string Word(TestModality modality) =>
        EnumWords.Word(modality) is { Length: > 0 } word ? word
        : throw new ArgumentOutOfRangeException(nameof(modality), modality, "A namespaced status needs a test modality.");

    /// <summary>The modality a word names.</summary>
    public static bool TryParseModality(string? word, out TestModality modality) => EnumWords.TryParse(word, out modality);

    /// <summary>Every namespaced status of the modality, as seed 004 lists them.</summary>
    /// <exception cref="ArgumentOutOfRangeException">UNSPECIFIED or unknown.</exception>
    public static IReadOnlyList<string> Statuses(TestModality modality) => modality switch
    {
        TestModality.Testkit => Testkit,
        TestModality.WalkInTest => WalkInTest,
        TestModality.AtHomePhlebotomy => AtHomePhlebotomy,
        _ => throw new ArgumentOutOfRangeException(nameof(modality), modality, "Statuses exist per test modality."),
    };

    /// <summary>The high-level word: <c>received</c>, <c>collecting_sample</c>, ... (order.status in seed 004).</summary>
    /// <exception cref="ArgumentOutOfRangeException">UNSPECIFIED (a draft has no status) or unknown.</exception>
    public static string HighWord(OrderStatus status) =>
        EnumWords.Word(status) is { Length: > 0 } word ? word
        : throw new ArgumentOutOfRangeException(nameof(status), status, "A draft has no high-level status word.");

    /// <summary>The high-level status a word names.</summary>
    public static bool TryParseHigh(string? word, out OrderStatus status) => EnumWords.TryParse(word, out status);

    /// <summary>completed, cancelled and failed end the order.</summary>
    public static bool IsTerminal(OrderStatus status) => NamespacedStatus.IsTerminalHigh(status);

    /// <summary>
    /// Reads <c>[high].[modality].[low]</c> (<see cref="NamespacedStatus.TryParse"/>, the one parser of that form).
    /// It does not check the low-level word against the modality's list: <see cref="IsKnown"/> and <see cref="Parse"/> do.
    /// </summary>
    public static bool TryParse(string? value, [NotNullWhen(true)] out NamespacedStatus? status) =>
        NamespacedStatus.TryParse(value, out status);

    /// <summary>True when the status is in its modality's list.</summary>
    public static bool IsKnown(NamespacedStatus status) =>
        status.Modality is TestModality.Testkit or TestModality.WalkInTest or TestModality.AtHomePhlebotomy
        && Statuses(status.Modality).Contains(status.ToString());

    /// <summary>
    /// Reads a status of <paramref name="modality"/>, or throws <see cref="InvalidArgumentException"/>
    /// on <paramref name="field"/> (malformed, unknown, or another modality's), naming the modality and
    /// listing its statuses. The value is repeated only when it is a status of the vocabulary: error messages
    /// end up in clients' logs, and a free-text value may carry anything a caller typed (patient data included).
    /// </summary>
    public static NamespacedStatus Parse(TestModality modality, string? value, string field)
    {
        var word = RequireModality(modality);
        if (!TryParse(value, out var status))
        {
            throw new InvalidArgumentException(field,
                $"is not a namespaced status [high].[modality].[low]. {ValidValues(modality, word)}");
        }
        if (status.Modality != modality)
        {
            throw new InvalidArgumentException(field,
                // Named only when it is a status of seed 004's vocabulary (of the other modality), never free text.
                $"{(IsKnown(status) ? $"'{status}' " : "")}is a status of modality {Word(status.Modality)}, not of this requisition's modality {word}. "
                + ValidValues(modality, word));
        }
        if (!IsKnown(status))
        {
            throw new InvalidArgumentException(field,
                $"is not a status of modality {word}. {ValidValues(modality, word)}");
        }
        return status;
    }

    /// <summary>The modality's word, or INVALID_ARGUMENT on <c>modality</c> when it is UNSPECIFIED.</summary>
    internal static string RequireModality(TestModality modality) =>
        modality is TestModality.Testkit or TestModality.WalkInTest or TestModality.AtHomePhlebotomy
            ? Word(modality)
            : throw new InvalidArgumentException("modality", "a test modality is required (testkit, walk_in_test or at_home_phlebotomy).");

    private static string ValidValues(TestModality modality, string word) =>
        $"Valid statuses for {word} (seed 004): {string.Join(", ", Statuses(modality))}.";
}
