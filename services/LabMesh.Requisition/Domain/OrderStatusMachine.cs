using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Core.Errors;
using LabMesh.Core.Vocabulary;

namespace LabMesh.Requisition.Domain;

/// <summary>
/// Seed 004's order status per modality: which namespaced status may be recorded after which, as one move table
/// per modality (<see cref="Table"/>). Pure rules: no I/O. An illegal move always throws; recording the current
/// status again is a no-op that returns the current status.
/// </summary>
/// <remarks>
/// <para>Each table has one row per status of the modality's vocabulary (<see cref="Modalities.Statuses"/>, seed 004's
/// list in its order, a draft first) with the statuses that may be recorded next, by their low-level word; every
/// other move is illegal. Recording a row's own status again is a no-op, not a move. The table is built from the
/// vocabulary: a row or a move that is not a status of the modality, or a status without a row, makes the first use
/// of the machine throw (<see cref="Table"/>), so every test of it fails. The rows follow these rules:</para>
/// <code>
///  1  draft (no status)            → only received.[m].ordered (what placing records)
///  2  terminal (completed,         → nothing (the high-level stage only moves forward and
///     cancelled, failed)              terminal stays terminal)
///  3  cancelled.[m].*              → only until the lab has the sample; a test kit's sample on its way to or at
///                                   the lab is do_not_process instead (<see cref="Cancellations"/>)
///  4  failed.[m].*                 → only from the statuses where that failure can happen:
///       testkit failure_to_deliver_to_customer  ordered … out_for_delivery (the kit is not with the patient yet)
///       testkit failure_to_deliver_to_lab       with_customer, transit_lab
///       testkit sample_error                    transit_lab, delivered_to_lab (the lab has the sample)
///       testkit lost                            transit_customer, out_for_delivery, transit_lab, delivered_to_lab
///       walk_in_test sample_error               requisition_created, partial_results
///       (at_home_phlebotomy has no failed status in seed 004)
///  5  at_home_phlebotomy            appointment_scheduled → appointment_cancelled (besides the path);
///                                   appointment_cancelled → only appointment_scheduled (reschedule)
///                                   or a cancellation
///  6  testkit awaiting_registration → only testkit_registered on the path (no requisition, so no
///                                   progress, until the kit is registered)
///  7  on the normal path            → any later status on the path: forward only, skips allowed
///                                   (carriers and labs do not report every step)
/// </code>
/// <para>The <b>normal path</b> of a modality is the seed's order without failures, cancellations and
/// appointment_cancelled. It is sorted by high-level stage (received &lt; collecting_sample &lt;
/// sample_with_lab &lt; terminal), so rule 7 never moves the stage backwards; rule 5 stays within
/// collecting_sample. Walk-in tests have no collecting_sample status, so they never pass it.</para>
/// </remarks>
public static class OrderStatusMachine
{
    /// <summary>
    /// One modality's moves: each status (and <see cref="Draft"/>) to the statuses that may be recorded next;
    /// the normal path a simulator walks; and where a failure or cancellation usually happens.
    /// </summary>
    private sealed record Table(
        IReadOnlyList<(string From, IReadOnlyList<string> To)> Rows,
        IReadOnlyDictionary<string, string[]> Moves,
        string[] NormalPath,
        IReadOnlyDictionary<string, string> PreferredStop)
    {
        /// <summary>
        /// Builds the table from rows of low-level words (<see cref="Draft"/> for the draft), checked against the
        /// modality's vocabulary: every row and move a status of the modality, every status and the draft a row, in
        /// the vocabulary's order.
        /// </summary>
        public static Table Build(
            TestModality modality,
            (string From, string[] To)[] rows,
            string[] normalPath,
            (string Final, string Stop)[] preferredStops)
        {
            var vocabulary = Modalities.Statuses(modality);
            var byLow = vocabulary.ToDictionary(s => Modalities.Parse(modality, s, "status").Low, StringComparer.Ordinal);
            string Status(string low) => byLow.TryGetValue(low, out var status)
                ? status
                : throw new InvalidOperationException($"'{low}' is not a status of modality {Modalities.Word(modality)} (seed 004).");
            string Key(string low) => low == Draft ? Draft : Status(low);

            var keys = rows.Select(r => Key(r.From)).ToList();
            if (!keys.SequenceEqual(new[] { Draft }.Concat(vocabulary)))
            {
                throw new InvalidOperationException(
                    $"The move table of {Modalities.Word(modality)} must have one row per status of seed 004, in its order, a draft first.");
            }

            var moves = rows.Select(r => (From: Key(r.From), To: r.To.Select(Status).ToArray())).ToList();
            return new Table(
                [.. moves.Select(m => (m.From, (IReadOnlyList<string>)m.To))],
                moves.ToDictionary(m => m.From, m => m.To, StringComparer.Ordinal),
                [.. normalPath.Select(Status)],
                preferredStops.ToDictionary(p => Status(p.Final), p => Status(p.Stop), StringComparer.Ordinal));
        }
    }

    // The move tables, by low-level word. Check a row against seed 004's list (Modalities) and the rules above.
    private static readonly Table Testkit = Table.Build(TestModality.Testkit,
        [
            (Draft,                             ["ordered"]),
            ("ordered",                         ["awaiting_registration", "testkit_registered", "requisition_created", "transit_customer", "out_for_delivery", "with_customer", "transit_lab", "delivered_to_lab", "completed", "failure_to_deliver_to_customer", "cancelled"]),
            ("awaiting_registration",           ["testkit_registered", "failure_to_deliver_to_customer", "cancelled"]),
            ("testkit_registered",              ["requisition_created", "transit_customer", "out_for_delivery", "with_customer", "transit_lab", "delivered_to_lab", "completed", "failure_to_deliver_to_customer", "cancelled"]),
            ("requisition_created",             ["transit_customer", "out_for_delivery", "with_customer", "transit_lab", "delivered_to_lab", "completed", "failure_to_deliver_to_customer", "cancelled"]),
            ("transit_customer",                ["out_for_delivery", "with_customer", "transit_lab", "delivered_to_lab", "completed", "failure_to_deliver_to_customer", "lost", "cancelled"]),
            ("out_for_delivery",                ["with_customer", "transit_lab", "delivered_to_lab", "completed", "failure_to_deliver_to_customer", "lost", "cancelled"]),
            ("with_customer",                   ["transit_lab", "delivered_to_lab", "completed", "failure_to_deliver_to_lab", "cancelled"]),
            ("transit_lab",                     ["delivered_to_lab", "completed", "failure_to_deliver_to_lab", "sample_error", "lost", "do_not_process"]),
            ("delivered_to_lab",                ["completed", "sample_error", "lost", "do_not_process"]),
            ("completed",                       []),
            ("failure_to_deliver_to_customer",  []),
            ("failure_to_deliver_to_lab",       []),
            ("sample_error",                    []),
            ("lost",                            []),
            ("cancelled",                       []),
            ("do_not_process",                  []),
        ],
        ["ordered", "awaiting_registration", "testkit_registered", "requisition_created", "transit_customer", "out_for_delivery",
            "with_customer", "transit_lab", "delivered_to_lab", "completed"],
        [
            ("failure_to_deliver_to_customer", "out_for_delivery"),
            ("failure_to_deliver_to_lab", "transit_lab"),
            ("sample_error", "delivered_to_lab"),
            ("lost", "transit_lab"),
            ("cancelled", "requisition_created"),
            ("do_not_process", "delivered_to_lab"),
        ]);

    private static readonly Table WalkInTest = Table.Build(TestModality.WalkInTest,
        [
            (Draft,                             ["ordered"]),
            ("ordered",                         ["requisition_created", "partial_results", "completed", "cancelled"]),
            ("requisition_created",             ["partial_results", "completed", "sample_error", "cancelled"]),
            ("partial_results",                 ["completed", "sample_error"]),
            ("completed",                       []),
            ("sample_error",                    []),
            ("cancelled",                       []),
        ],
        ["ordered", "requisition_created", "partial_results", "completed"],
        [
            ("sample_error", "requisition_created"),
            ("cancelled", "requisition_created"),
        ]);

    private static readonly Table AtHomePhlebotomy = Table.Build(TestModality.AtHomePhlebotomy,
        [
            (Draft,                             ["ordered"]),
            ("ordered",                         ["requisition_created", "appointment_scheduled", "draw_completed", "partial_results", "completed", "cancelled"]),
            ("requisition_created",             ["appointment_scheduled", "draw_completed", "partial_results", "completed", "cancelled"]),
            ("appointment_scheduled",           ["draw_completed", "appointment_cancelled", "partial_results", "completed", "cancelled"]),
            ("draw_completed",                  ["partial_results", "completed"]),
            ("appointment_cancelled",           ["appointment_scheduled", "cancelled"]),
            ("partial_results",                 ["completed"]),
            ("completed",                       []),
            ("cancelled",                       []),
        ],
        ["ordered", "requisition_created", "appointment_scheduled", "draw_completed", "partial_results", "completed"],
        [
            ("cancelled", "requisition_created"),
        ]);

    /// <summary>The key of a draft (no status yet) in the move and cancellation tables.</summary>
    private const string Draft = "draft";

    /// <summary>
    /// The modality's move table, row by row: <c>draft</c> and then every status of seed 004 in its order, each with
    /// the statuses that may be recorded after it (in the table's order; <see cref="AllowedNext"/> gives the seed's).
    /// </summary>
    /// <exception cref="InvalidArgumentException">the modality is UNSPECIFIED (field <c>modality</c>).</exception>
    public static IReadOnlyList<(string From, IReadOnlyList<string> To)> MoveTable(TestModality modality)
    {
        Modalities.RequireModality(modality);
        return For(modality).Rows;
    }

    /// <summary>
    /// Records <paramref name="next"/> after <paramref name="current"/> (null for a draft) and returns
    /// the new current status; returns <paramref name="current"/> itself when next repeats it.
    /// </summary>
    /// <exception cref="InvalidArgumentException">next is malformed, unknown or another modality's (field
    /// <c>status</c>), or the modality is UNSPECIFIED (field <c>modality</c>).</exception>
    /// <exception cref="IllegalTransitionException">the move is not allowed; <c>allowed</c> lists every status that is.</exception>
    public static NamespacedStatus Record(TestModality modality, NamespacedStatus? current, string next)
    {
        var target = Modalities.Parse(modality, next, "status");
        CheckCurrent(modality, current);
        if (target == current)
        {
            return current;
        }
        var allowed = AllowedNext(modality, current);
        if (!allowed.Contains(next))
        {
            throw new IllegalTransitionException("order status", current?.ToString() ?? "draft", next, allowed);
        }
        return target;
    }

    /// <summary>Every status that may be recorded after <paramref name="current"/> (null for a draft), in the seed's order.</summary>
    /// <exception cref="InvalidArgumentException">the modality is UNSPECIFIED (field <c>modality</c>).</exception>
    public static IReadOnlyList<string> AllowedNext(TestModality modality, NamespacedStatus? current)
    {
        Modalities.RequireModality(modality);
        CheckCurrent(modality, current);
        var table = For(modality);
        var from = current?.ToString();
        return [.. Modalities.Statuses(modality).Where(s => IsAllowed(table, from, s))];
    }

    /// <summary>
    /// The statuses a simulator records, in order, to walk from <paramref name="current"/> (null for a
    /// draft) to <paramref name="finalStatus"/> along the modality's normal path. To completed it
    /// passes every step; to a failure or cancellation it walks to the point where that outcome
    /// usually happens (below), or fails at once when the order is already past that point and the
    /// outcome can still happen, then records the final status. Empty when already there; an empty
    /// <paramref name="finalStatus"/> means the modality's <c>completed</c>.
    /// </summary>
    /// <remarks>
    /// <code>
    /// final status                               walks to, then records the final status
    /// completed.[m].completed                    (every step of the normal path)
    /// failed.testkit.failure_to_deliver_to_customer   out_for_delivery
    /// failed.testkit.failure_to_deliver_to_lab   transit_lab
    /// failed.testkit.lost                        transit_lab
    /// failed.testkit.sample_error                delivered_to_lab
    /// failed.walk_in_test.sample_error           requisition_created
    /// cancelled.[m].cancelled                    requisition_created
    /// cancelled.testkit.do_not_process           delivered_to_lab (the lab holds the sample)
    /// </code>
    /// When the order is past that point, the walk stops at the first status (the current one
    /// included) from which the final status may be recorded.
    /// </remarks>
    /// <exception cref="InvalidArgumentException">finalStatus is malformed, another modality's, not terminal,
    /// or cannot be reached from current (field <c>final_status</c>).</exception>
    public static IReadOnlyList<string> PathTo(TestModality modality, NamespacedStatus? current, string? finalStatus)
    {
        var word = Modalities.RequireModality(modality);
        CheckCurrent(modality, current);
        var final = Modalities.Parse(
            modality,
            string.IsNullOrEmpty(finalStatus) ? $"completed.{word}.completed" : finalStatus,
            "final_status");
        var finalText = final.ToString();
        if (!final.IsTerminal)
        {
            throw new InvalidArgumentException("final_status",
                $"'{finalText}' is not a final status; it must be completed, cancelled or failed: "
                + string.Join(", ", Modalities.Statuses(modality).Where(s => Modalities.TryParse(s, out var st) && st.IsTerminal)) + ".");
        }
        if (final == current)
        {
            return [];
        }
        if (current is { IsTerminal: true })
        {
            throw Unreachable(finalText, current);
        }

        var table = For(modality);
        var from = current?.ToString();
        // The normal path after the current status; off the path (appointment_cancelled) it resumes at the first
        // status of the path the table allows from there (appointment_scheduled).
        var start = from is null ? 0
            : Array.IndexOf(table.NormalPath, from) is >= 0 and var at ? at + 1
            : Array.FindIndex(table.NormalPath, s => IsAllowed(table, from, s));
        var ahead = table.NormalPath[start..];

        var finalIndex = Array.IndexOf(ahead, finalText);
        if (finalIndex >= 0)
        {
            return ahead[..(finalIndex + 1)];
        }

        // A failure or cancellation: choose where it happens.
        var candidates = new List<(string? Status, int Walked)>();
        if (from is not null)
        {
            candidates.Add((from, 0));
        }
        for (var i = 0; i < ahead.Length; i++)
        {
            candidates.Add((ahead[i], i + 1));
        }
        var usable = candidates.Where(c => IsAllowed(table, c.Status, finalText)).ToList();
        if (usable.Count == 0)
        {
            throw Unreachable(finalText, current);
        }
        var stop = table.PreferredStop.TryGetValue(finalText, out var preferred) && usable.Exists(c => c.Status == preferred)
            ? usable.First(c => c.Status == preferred)
            : usable[0];
        return [.. ahead[..stop.Walked], finalText];
    }

    /// <summary>
    /// The cancellation table: what can still be cancelled in each order status of each modality, every status of
    /// the modality in seed 004's order (a draft first), with the cancellations allowed there (empty: none).
    /// </summary>
    /// <remarks>
    /// Junction's rule is the reference (seed 004's API): an order can be cancelled until the lab has the sample.
    /// A test kit may be cancelled until its sample leaves the patient; once the sample is on its way to the lab or
    /// there, the lab is told <c>do_not_process</c> instead. A walk-in test may be cancelled until the patient
    /// has given the sample (partial results mean the lab has it). An at-home draw may be cancelled until the draw
    /// (a cancelled appointment included). Terminal statuses allow nothing. The table in the Requisition README is
    /// this one (<see cref="CancellationTableMarkdown"/>; a test compares them).
    /// </remarks>
    public static IReadOnlyList<(TestModality Modality, string From, IReadOnlyList<string> Cancels)> Cancellations { get; } =
        [.. Modalities.All.SelectMany(m => new[] { Draft }.Concat(Modalities.Statuses(m))
            .Select(from => (m, from, CancellationsOf(For(m), from))))];

    /// <summary>The cancellations that may be recorded after <paramref name="current"/> (null for a draft).</summary>
    /// <exception cref="InvalidArgumentException">the modality is UNSPECIFIED (field <c>modality</c>).</exception>
    public static IReadOnlyList<string> CancellationsFrom(TestModality modality, NamespacedStatus? current)
    {
        Modalities.RequireModality(modality);
        CheckCurrent(modality, current);
        return CancellationsOf(For(modality), current?.ToString() ?? Draft);
    }

    /// <summary>The cancellation table as Markdown, one row per modality and status (the Requisition README's table).</summary>
    public static string CancellationTableMarkdown()
    {
        var table = new System.Text.StringBuilder();
        table.Append("| modality | order status | can be cancelled as |\n|---|---|---|\n");
        foreach (var (modality, from, cancels) in Cancellations)
        {
            table.Append(System.Globalization.CultureInfo.InvariantCulture,
                $"| `{Modalities.Word(modality)}` | {(from == Draft ? "(draft)" : $"`{from}`")} | {(cancels.Count == 0 ? "-" : string.Join(", ", cancels.Select(c => $"`{c}`")))} |\n");
        }

        return table.ToString();
    }

    private static bool IsAllowed(Table table, string? from, string to) =>
        table.Moves.TryGetValue(from ?? Draft, out var moves) && moves.Contains(to);

    /// <summary>
    /// The cancellations in a row of the move table (<paramref name="from"/> is a status or <see cref="Draft"/>). A draft
    /// records no cancellation (only placing), but the owner may cancel it as it may cancel the order just placed: a
    /// draft's cancellations are those of the first status of the normal path.
    /// </summary>
    private static IReadOnlyList<string> CancellationsOf(Table table, string from) =>
        [.. table.Moves[from == Draft ? table.NormalPath[0] : from]
            .Where(s => NamespacedStatus.TryParse(s, out var status) && status.High == OrderStatus.Cancelled)];

    private static Table For(TestModality modality) => modality switch
    {
        TestModality.Testkit => Testkit,
        TestModality.WalkInTest => WalkInTest,
        TestModality.AtHomePhlebotomy => AtHomePhlebotomy,
        _ => throw new ArgumentOutOfRangeException(nameof(modality), modality, "No move table for this modality."),
    };

    private static void CheckCurrent(TestModality modality, NamespacedStatus? current)
    {
        // The current status comes from the store, never from a caller: a mismatch is a LabMesh bug.
        if (current is not null && (current.Modality != modality || !Modalities.IsKnown(current)))
        {
            throw new ArgumentException(
                $"The current status '{current}' is not a status of modality {Modalities.Word(modality)}.", nameof(current));
        }
    }

    private static InvalidArgumentException Unreachable(string finalStatus, NamespacedStatus? current) =>
        new("final_status", $"'{finalStatus}' cannot be reached from {current?.ToString() ?? "draft"}.");
}
