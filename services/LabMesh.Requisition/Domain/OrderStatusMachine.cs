using LabMesh.Contracts.Common.V1;
using LabMesh.Core.Errors;

namespace LabMesh.Requisition.Domain;

/// <summary>
/// Seed 004's order status per modality: which namespaced status may be recorded after which.
/// Pure rules: no I/O. An illegal move always throws; recording the current status again is a
/// no-op that returns the current status.
/// </summary>
/// <remarks>
/// <para>Each modality has a <b>normal path</b>, the seed's order without failures, cancellations and
/// appointment_cancelled:</para>
/// <code>
/// testkit             ordered, awaiting_registration, testkit_registered, requisition_created,
///                     transit_customer, out_for_delivery, with_customer, transit_lab,
///                     delivered_to_lab, completed
/// walk_in_test        ordered, requisition_created, partial_results, completed
/// at_home_phlebotomy  ordered, requisition_created, appointment_scheduled, draw_completed,
///                     partial_results, completed
/// </code>
/// <para>Rules, applied in this order:</para>
/// <code>
///  1  draft (no status)            → only received.[m].ordered (what placing records)
///  2  terminal (completed,         → nothing (the high-level stage only moves forward and
///     cancelled, failed)              terminal stays terminal)
///  3  the current status again     → no-op, returns the current status
///  4  cancelled.[m].*              → only from the statuses the cancellation table allows
///                                   (<see cref="Cancellations"/>: until the lab has the sample; a test kit's
///                                   sample on its way to or at the lab is do_not_process instead)
///  5  failed.[m].*                 → only from the statuses where that failure can happen:
///       testkit failure_to_deliver_to_customer  ordered … out_for_delivery (the kit is not with the patient yet)
///       testkit failure_to_deliver_to_lab       with_customer, transit_lab
///       testkit sample_error                    transit_lab, delivered_to_lab (the lab has the sample)
///       testkit lost                            transit_customer, out_for_delivery, transit_lab, delivered_to_lab
///       walk_in_test sample_error               requisition_created, partial_results
///       (at_home_phlebotomy has no failed status in seed 004)
///  6  at_home_phlebotomy            appointment_scheduled → appointment_cancelled (besides the path);
///                                   appointment_cancelled → only appointment_scheduled (reschedule)
///                                   or a cancellation
///  7  testkit awaiting_registration → only testkit_registered on the path (no requisition, so no
///                                   progress, until the kit is registered)
///  8  on the normal path            → any later status on the path: forward only, skips allowed
///                                   (carriers and labs do not report every step)
/// </code>
/// <para>The normal path is sorted by high-level stage (received &lt; collecting_sample &lt;
/// sample_with_lab &lt; terminal), so rule 8 never moves the stage backwards; rule 6 stays within
/// collecting_sample. Walk-in tests have no collecting_sample status, so they never pass it.</para>
/// </remarks>
public static class OrderStatusMachine
{
    private sealed record Rules(
        string[] NormalPath,
        Dictionary<string, string[]> FailureSources,
        Dictionary<string, string> PreferredStop)
    {
        /// <summary>Each status from which a cancellation may be recorded, and which ones (<see cref="Cancellations"/>).</summary>
        public required Dictionary<string, string[]> Cancellable { get; init; }
    }

    private static readonly Rules TestkitRules = new(
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
        ],
        new(StringComparer.Ordinal)
        {
            ["failed.testkit.failure_to_deliver_to_customer"] =
            [
                "received.testkit.ordered",
                "received.testkit.awaiting_registration",
                "received.testkit.testkit_registered",
                "received.testkit.requisition_created",
                "collecting_sample.testkit.transit_customer",
                "collecting_sample.testkit.out_for_delivery",
            ],
            ["failed.testkit.failure_to_deliver_to_lab"] =
            [
                "collecting_sample.testkit.with_customer",
                "collecting_sample.testkit.transit_lab",
            ],
            ["failed.testkit.sample_error"] =
            [
                "collecting_sample.testkit.transit_lab",
                "sample_with_lab.testkit.delivered_to_lab",
            ],
            ["failed.testkit.lost"] =
            [
                "collecting_sample.testkit.transit_customer",
                "collecting_sample.testkit.out_for_delivery",
                "collecting_sample.testkit.transit_lab",
                "sample_with_lab.testkit.delivered_to_lab",
            ],
        },
        new(StringComparer.Ordinal)
        {
            ["failed.testkit.failure_to_deliver_to_customer"] = "collecting_sample.testkit.out_for_delivery",
            ["failed.testkit.failure_to_deliver_to_lab"] = "collecting_sample.testkit.transit_lab",
            ["failed.testkit.sample_error"] = "sample_with_lab.testkit.delivered_to_lab",
            ["failed.testkit.lost"] = "collecting_sample.testkit.transit_lab",
            ["cancelled.testkit.cancelled"] = "received.testkit.requisition_created",
            ["cancelled.testkit.do_not_process"] = "sample_with_lab.testkit.delivered_to_lab",
        })
    {
        Cancellable = new(StringComparer.Ordinal)
        {
            [Draft] = ["cancelled.testkit.cancelled"],
            ["received.testkit.ordered"] = ["cancelled.testkit.cancelled"],
            ["received.testkit.awaiting_registration"] = ["cancelled.testkit.cancelled"],
            ["received.testkit.testkit_registered"] = ["cancelled.testkit.cancelled"],
            ["received.testkit.requisition_created"] = ["cancelled.testkit.cancelled"],
            ["collecting_sample.testkit.transit_customer"] = ["cancelled.testkit.cancelled"],
            ["collecting_sample.testkit.out_for_delivery"] = ["cancelled.testkit.cancelled"],
            ["collecting_sample.testkit.with_customer"] = ["cancelled.testkit.cancelled"],
            ["collecting_sample.testkit.transit_lab"] = ["cancelled.testkit.do_not_process"],
            ["sample_with_lab.testkit.delivered_to_lab"] = ["cancelled.testkit.do_not_process"],
        },
    };

    private static readonly Rules WalkInRules = new(
        [
            "received.walk_in_test.ordered",
            "received.walk_in_test.requisition_created",
            "sample_with_lab.walk_in_test.partial_results",
            "completed.walk_in_test.completed",
        ],
        new(StringComparer.Ordinal)
        {
            ["failed.walk_in_test.sample_error"] =
            [
                "received.walk_in_test.requisition_created",
                "sample_with_lab.walk_in_test.partial_results",
            ],
        },
        new(StringComparer.Ordinal)
        {
            ["failed.walk_in_test.sample_error"] = "received.walk_in_test.requisition_created",
            ["cancelled.walk_in_test.cancelled"] = "received.walk_in_test.requisition_created",
        })
    {
        Cancellable = new(StringComparer.Ordinal)
        {
            [Draft] = ["cancelled.walk_in_test.cancelled"],
            ["received.walk_in_test.ordered"] = ["cancelled.walk_in_test.cancelled"],
            ["received.walk_in_test.requisition_created"] = ["cancelled.walk_in_test.cancelled"],
        },
    };

    private static readonly Rules AtHomeRules = new(
        [
            "received.at_home_phlebotomy.ordered",
            "received.at_home_phlebotomy.requisition_created",
            "collecting_sample.at_home_phlebotomy.appointment_scheduled",
            "collecting_sample.at_home_phlebotomy.draw_completed",
            "sample_with_lab.at_home_phlebotomy.partial_results",
            "completed.at_home_phlebotomy.completed",
        ],
        new(StringComparer.Ordinal),
        new(StringComparer.Ordinal)
        {
            ["cancelled.at_home_phlebotomy.cancelled"] = "received.at_home_phlebotomy.requisition_created",
        })
    {
        Cancellable = new(StringComparer.Ordinal)
        {
            [Draft] = ["cancelled.at_home_phlebotomy.cancelled"],
            ["received.at_home_phlebotomy.ordered"] = ["cancelled.at_home_phlebotomy.cancelled"],
            ["received.at_home_phlebotomy.requisition_created"] = ["cancelled.at_home_phlebotomy.cancelled"],
            ["collecting_sample.at_home_phlebotomy.appointment_scheduled"] = ["cancelled.at_home_phlebotomy.cancelled"],
            ["collecting_sample.at_home_phlebotomy.appointment_cancelled"] = ["cancelled.at_home_phlebotomy.cancelled"],
        },
    };

    /// <summary>The key of a draft (no status yet) in the cancellation table.</summary>
    private const string Draft = "draft";

    private const string AppointmentScheduled = "collecting_sample.at_home_phlebotomy.appointment_scheduled";
    private const string AppointmentCancelled = "collecting_sample.at_home_phlebotomy.appointment_cancelled";
    private const string AwaitingRegistration = "received.testkit.awaiting_registration";
    private const string TestkitRegistered = "received.testkit.testkit_registered";

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
        var rules = For(modality);
        var from = current?.ToString();
        return [.. Modalities.Statuses(modality).Where(s => IsAllowed(rules, from, s))];
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

        var rules = For(modality);
        var from = current?.ToString();
        // The normal path after the current status; appointment_cancelled resumes at appointment_scheduled.
        var start = from is null ? 0
            : from == AppointmentCancelled ? Array.IndexOf(rules.NormalPath, AppointmentScheduled)
            : Array.IndexOf(rules.NormalPath, from) + 1;
        var ahead = rules.NormalPath[start..];

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
        var usable = candidates.Where(c => IsAllowed(rules, c.Status, finalText)).ToList();
        if (usable.Count == 0)
        {
            throw Unreachable(finalText, current);
        }
        var stop = rules.PreferredStop.TryGetValue(finalText, out var preferred) && usable.Exists(c => c.Status == preferred)
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
            .Select(from => (m, from, (IReadOnlyList<string>)(For(m).Cancellable.TryGetValue(from, out var c) ? c : []))))];

    /// <summary>The cancellations that may be recorded after <paramref name="current"/> (null for a draft).</summary>
    /// <exception cref="InvalidArgumentException">the modality is UNSPECIFIED (field <c>modality</c>).</exception>
    public static IReadOnlyList<string> CancellationsFrom(TestModality modality, NamespacedStatus? current)
    {
        Modalities.RequireModality(modality);
        CheckCurrent(modality, current);
        return For(modality).Cancellable.TryGetValue(current?.ToString() ?? Draft, out var cancels) ? cancels : [];
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

    private static bool IsAllowed(Rules rules, string? from, string to)
    {
        if (from is null)
        {
            return to == rules.NormalPath[0];
        }
        if (from == to || IsTerminalText(from))
        {
            return false;
        }
        if (to.StartsWith("cancelled.", StringComparison.Ordinal))
        {
            return rules.Cancellable.TryGetValue(from, out var cancels) && cancels.Contains(to);
        }
        if (to.StartsWith("failed.", StringComparison.Ordinal))
        {
            return rules.FailureSources.TryGetValue(to, out var sources) && sources.Contains(from);
        }
        if (from == AppointmentCancelled)
        {
            return to == AppointmentScheduled;
        }
        if (to == AppointmentCancelled)
        {
            return from == AppointmentScheduled;
        }
        if (from == AwaitingRegistration)
        {
            return to == TestkitRegistered;
        }
        var fromIndex = Array.IndexOf(rules.NormalPath, from);
        var toIndex = Array.IndexOf(rules.NormalPath, to);
        return fromIndex >= 0 && toIndex > fromIndex;
    }

    private static bool IsTerminalText(string status) =>
        status.StartsWith("completed.", StringComparison.Ordinal)
        || status.StartsWith("cancelled.", StringComparison.Ordinal)
        || status.StartsWith("failed.", StringComparison.Ordinal);

    private static Rules For(TestModality modality) => modality switch
    {
        TestModality.Testkit => TestkitRules,
        TestModality.WalkInTest => WalkInRules,
        TestModality.AtHomePhlebotomy => AtHomeRules,
        _ => throw new ArgumentOutOfRangeException(nameof(modality), modality, "No rules for this modality."),
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
