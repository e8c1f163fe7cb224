using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Requisition.Domain;
using LabMesh.Core.Errors;
using LabMesh.Core.Vocabulary;

namespace LabMesh.Requisition.Tests.Domain;

public class OrderStatusMachineTests
{
    // Seed 004, copied by hand: each modality's statuses in the seed's order (the matrix columns).
    private static readonly Dictionary<TestModality, string[]> Seed = new()
    {
        [TestModality.Testkit] =
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
        ],
        [TestModality.WalkInTest] =
        [
            "received.walk_in_test.ordered",
            "received.walk_in_test.requisition_created",
            "sample_with_lab.walk_in_test.partial_results",
            "completed.walk_in_test.completed",
            "failed.walk_in_test.sample_error",
            "cancelled.walk_in_test.cancelled",
        ],
        [TestModality.AtHomePhlebotomy] =
        [
            "received.at_home_phlebotomy.ordered",
            "received.at_home_phlebotomy.requisition_created",
            "collecting_sample.at_home_phlebotomy.appointment_scheduled",
            "collecting_sample.at_home_phlebotomy.draw_completed",
            "collecting_sample.at_home_phlebotomy.appointment_cancelled",
            "sample_with_lab.at_home_phlebotomy.partial_results",
            "completed.at_home_phlebotomy.completed",
            "cancelled.at_home_phlebotomy.cancelled",
        ],
    };

    // Every (from, to) pair, decided by hand from DESIGN.md and seed 004 (see OrderStatusMachine's
    // rule table). Row 0 is the draft (no status); row i+1 is Seed[m][i]; column j is Seed[m][j].
    // '+' recorded, '.' repeat = no-op, 'x' FAILED_PRECONDITION. '|' only groups columns.
    private static readonly Dictionary<TestModality, string[]> Matrix = new()
    {
        //                        received  collecting smp cmp failed  cancelled
        //                        ord..req  tc od wc tl dtl cmp fc fl se lo  can dnp
        [TestModality.Testkit] =
        [
            /* draft             */ "+xxx|xxxx|x|x|xxxx|xx",
            /* ordered           */ ".+++|++++|+|+|+xxx|+x",
            /* awaiting_registr. */ "x.+x|xxxx|x|x|+xxx|+x",
            /* testkit_registered*/ "xx.+|++++|+|+|+xxx|+x",
            /* requisition_creat.*/ "xxx.|++++|+|+|+xxx|+x",
            /* transit_customer  */ "xxxx|.+++|+|+|+xx+|+x",
            /* out_for_delivery  */ "xxxx|x.++|+|+|+xx+|+x",
            /* with_customer     */ "xxxx|xx.+|+|+|x+xx|+x",
            /* transit_lab       */ "xxxx|xxx.|+|+|x+++|x+",
            /* delivered_to_lab  */ "xxxx|xxxx|.|+|xx++|x+",
            /* completed         */ "xxxx|xxxx|x|.|xxxx|xx",
            /* f_deliver_customer*/ "xxxx|xxxx|x|x|.xxx|xx",
            /* f_deliver_lab     */ "xxxx|xxxx|x|x|x.xx|xx",
            /* sample_error      */ "xxxx|xxxx|x|x|xx.x|xx",
            /* lost              */ "xxxx|xxxx|x|x|xxx.|xx",
            /* cancelled         */ "xxxx|xxxx|x|x|xxxx|.x",
            /* do_not_process    */ "xxxx|xxxx|x|x|xxxx|x.",
        ],
        //                          ord req | partial | cmp | se | can
        [TestModality.WalkInTest] =
        [
            /* draft             */ "+x|x|x|x|x",
            /* ordered           */ ".+|+|+|x|+",
            /* requisition_creat.*/ "x.|+|+|+|+",
            /* partial_results   */ "xx|.|+|+|x",
            /* completed         */ "xx|x|.|x|x",
            /* sample_error      */ "xx|x|x|.|x",
            /* cancelled         */ "xx|x|x|x|.",
        ],
        //                          ord req | sch drw acan | partial | cmp | can
        [TestModality.AtHomePhlebotomy] =
        [
            /* draft             */ "+x|xxx|x|x|x",
            /* ordered           */ ".+|++x|+|+|+",
            /* requisition_creat.*/ "x.|++x|+|+|+",
            /* appt_scheduled    */ "xx|.++|+|+|+",
            /* draw_completed    */ "xx|x.x|+|+|x",
            /* appt_cancelled    */ "xx|+x.|x|x|+",
            /* partial_results   */ "xx|xxx|.|+|x",
            /* completed         */ "xx|xxx|x|.|x",
            /* cancelled         */ "xx|xxx|x|x|.",
        ],
    };

    private static string Row(TestModality modality, int from) => Matrix[modality][from + 1].Replace("|", "", StringComparison.Ordinal);

    private static NamespacedStatus? Status(TestModality modality, int index) =>
        index < 0 ? null : Modalities.Parse(modality, Seed[modality][index], "status");

    private static List<string> Allowed(TestModality modality, int from)
    {
        var row = Row(modality, from);
        return [.. Seed[modality].Where((_, j) => row[j] == '+')];
    }

    public static TheoryData<TestModality, int, int> EveryPair()
    {
        var data = new TheoryData<TestModality, int, int>();
        foreach (var (modality, statuses) in Seed)
        {
            for (var from = -1; from < statuses.Length; from++)
            {
                for (var to = 0; to < statuses.Length; to++)
                {
                    data.Add(modality, from, to);
                }
            }
        }
        return data;
    }

    [Fact]
    public void Matrix_CoversEveryStatusOfEveryModality()
    {
        foreach (var (modality, statuses) in Seed)
        {
            Assert.Equal(statuses.Length + 1, Matrix[modality].Length);
            for (var from = -1; from < statuses.Length; from++)
            {
                Assert.Equal(statuses.Length, Row(modality, from).Length);
            }
        }
    }

    [Theory]
    [MemberData(nameof(EveryPair))]
    public void Record_EveryPairOfStatuses_MatchesTheMatrix(TestModality modality, int from, int to)
    {
        var current = Status(modality, from);
        var next = Seed[modality][to];
        switch (Row(modality, from)[to])
        {
            case '+':
                var recorded = OrderStatusMachine.Record(modality, current, next);
                Assert.Equal(next, recorded.ToString());
                break;
            case '.':
                Assert.Equal(current, OrderStatusMachine.Record(modality, current, next));
                break;
            case 'x':
                var ex = Assert.Throws<IllegalTransitionException>(() => OrderStatusMachine.Record(modality, current, next));
                Assert.Equal("order status", ex.Subject);
                Assert.Equal(current?.ToString() ?? "draft", ex.From);
                Assert.Equal(next, ex.To);
                Assert.Equal(Allowed(modality, from), ex.Allowed);
                break;
            default:
                Assert.Fail("Bad matrix cell.");
                break;
        }
    }

    [Theory]
    [MemberData(nameof(EveryPair))]
    public void Matrix_EveryRecordedMove_NeverMovesTheHighLevelStageBackOrLeavesATerminal(TestModality modality, int from, int to)
    {
        // Checks the hand-written matrix itself against DESIGN.md's stage rule.
        if (from < 0 || Row(modality, from)[to] != '+')
        {
            return;
        }
        var a = Status(modality, from)!;
        var b = Status(modality, to)!;
        Assert.False(a.IsTerminal);
        Assert.True(Stage(b.High) >= Stage(a.High), $"{a} -> {b} moves the stage back.");
    }

    [Theory]
    [InlineData(TestModality.Testkit)]
    [InlineData(TestModality.WalkInTest)]
    [InlineData(TestModality.AtHomePhlebotomy)]
    public void MoveTable_RowByRow_IsSeed004sListAndTheMatrix(TestModality modality)
    {
        // The code's table, read as a reader would against seed 004: one row per status the seed lists for the
        // modality, in the seed's order (a draft first); every move a status of that modality, never to an earlier
        // high-level stage (the seed's order received, collecting_sample, sample_with_lab, then the end), nothing
        // after completed, cancelled or failed; and each row the '+' cells of the hand-written matrix.
        var table = OrderStatusMachine.MoveTable(modality);
        Assert.Equal(["draft", .. Seed[modality]], table.Select(r => r.From));
        for (var from = -1; from < Seed[modality].Length; from++)
        {
            var (row, moves) = table[from + 1];
            Assert.All(moves, to => Assert.Contains(to, Seed[modality]));
            Assert.Equal(moves.Count, moves.Distinct().Count());
            Assert.Equal(Allowed(modality, from), Seed[modality].Where(moves.Contains));
            if (from < 0)
            {
                continue;
            }

            var current = Status(modality, from)!;
            if (current.IsTerminal)
            {
                Assert.Empty(moves);
            }

            Assert.All(moves, to => Assert.True(Stage(Modalities.Parse(modality, to, "status").High) >= Stage(current.High),
                $"{row} -> {to} moves the stage back."));
        }
    }

    public static TheoryData<TestModality, int> EveryState()
    {
        var data = new TheoryData<TestModality, int>();
        foreach (var (modality, statuses) in Seed)
        {
            for (var from = -1; from < statuses.Length; from++)
            {
                data.Add(modality, from);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryState))]
    public void AllowedNext_EveryState_IsThePlusCellsOfItsRow(TestModality modality, int from)
    {
        Assert.Equal(Allowed(modality, from), OrderStatusMachine.AllowedNext(modality, Status(modality, from)));
    }

    public static TheoryData<TestModality, string> EveryStatusOfAnotherModality()
    {
        var data = new TheoryData<TestModality, string>();
        foreach (var modality in Seed.Keys)
        {
            foreach (var (other, statuses) in Seed)
            {
                if (other != modality)
                {
                    foreach (var status in statuses)
                    {
                        data.Add(modality, status);
                    }
                }
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryStatusOfAnotherModality))]
    public void Record_AnotherModalitysStatus_IsInvalidArgumentNamingTheModality(TestModality modality, string next)
    {
        var current = Status(modality, 0);
        var ex = Assert.Throws<InvalidArgumentException>(() => OrderStatusMachine.Record(modality, current, next));
        var violation = Assert.Single(ex.Violations);
        Assert.Equal("status", violation.Field);
        Assert.Contains(Modalities.Word(modality), violation.Description, StringComparison.Ordinal);
        Assert.Contains(next, violation.Description, StringComparison.Ordinal);
        Assert.All(Seed[modality], s => Assert.Contains(s, violation.Description, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("")]
    [InlineData("received")]
    [InlineData("received.testkit")]
    [InlineData("received.testkit.")]
    [InlineData("received.testkit.ordered.again")]
    [InlineData("RECEIVED.testkit.ordered")]
    [InlineData("shipped.testkit.ordered")]
    [InlineData("received.mail_in.ordered")]
    [InlineData("received.testkit.bogus")]
    [InlineData("collecting_sample.testkit.ordered")]
    [InlineData("sample_with_lab.testkit.partial_results")]
    [InlineData(" received.testkit.ordered")]
    public void Record_MalformedOrUnknownStatus_IsInvalidArgumentListingValidValues(string next)
    {
        var ex = Assert.Throws<InvalidArgumentException>(() => OrderStatusMachine.Record(TestModality.Testkit, null, next));
        var violation = Assert.Single(ex.Violations);
        Assert.Equal("status", violation.Field);
        Assert.Contains("testkit", violation.Description, StringComparison.Ordinal);
        Assert.Contains("received.testkit.requisition_created", violation.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Record_UnspecifiedModality_IsInvalidArgumentOnModality()
    {
        var ex = Assert.Throws<InvalidArgumentException>(() =>
            OrderStatusMachine.Record(TestModality.Unspecified, null, "received.testkit.ordered"));
        Assert.Equal("modality", Assert.Single(ex.Violations).Field);
    }

    [Fact]
    public void Record_AtHomeRescheduleThenDraw_IsAccepted()
    {
        NamespacedStatus? status = null;
        foreach (var next in new[]
        {
            "received.at_home_phlebotomy.ordered",
            "received.at_home_phlebotomy.requisition_created",
            "collecting_sample.at_home_phlebotomy.appointment_scheduled",
            "collecting_sample.at_home_phlebotomy.appointment_cancelled",
            "collecting_sample.at_home_phlebotomy.appointment_scheduled",
            "collecting_sample.at_home_phlebotomy.appointment_cancelled",
            "collecting_sample.at_home_phlebotomy.appointment_scheduled",
            "collecting_sample.at_home_phlebotomy.draw_completed",
            "sample_with_lab.at_home_phlebotomy.partial_results",
            "sample_with_lab.at_home_phlebotomy.partial_results",
            "completed.at_home_phlebotomy.completed",
        })
        {
            status = OrderStatusMachine.Record(TestModality.AtHomePhlebotomy, status, next);
            Assert.Equal(next, status.ToString());
        }
    }

    [Fact]
    public void RecordOrderEvent_BackwardsStage_IsFailedPrecondition()
    {
        var current = Modalities.Parse(TestModality.Testkit, "sample_with_lab.testkit.delivered_to_lab", "status");
        var ex = Assert.Throws<IllegalTransitionException>(() =>
            OrderStatusMachine.Record(TestModality.Testkit, current, "collecting_sample.testkit.transit_lab"));
        Assert.Equal(
            ["completed.testkit.completed", "failed.testkit.sample_error", "failed.testkit.lost", "cancelled.testkit.do_not_process"],
            ex.Allowed);
    }

    // PathTo from a draft to every terminal status, written by hand.
    public static TheoryData<TestModality, string, string[]> EveryTerminalStatusFromDraft() => new()
    {
        {
            TestModality.Testkit, "completed.testkit.completed",
            [
                "received.testkit.ordered", "received.testkit.awaiting_registration", "received.testkit.testkit_registered",
                "received.testkit.requisition_created", "collecting_sample.testkit.transit_customer",
                "collecting_sample.testkit.out_for_delivery", "collecting_sample.testkit.with_customer",
                "collecting_sample.testkit.transit_lab", "sample_with_lab.testkit.delivered_to_lab", "completed.testkit.completed",
            ]
        },
        {
            TestModality.Testkit, "failed.testkit.failure_to_deliver_to_customer",
            [
                "received.testkit.ordered", "received.testkit.awaiting_registration", "received.testkit.testkit_registered",
                "received.testkit.requisition_created", "collecting_sample.testkit.transit_customer",
                "collecting_sample.testkit.out_for_delivery", "failed.testkit.failure_to_deliver_to_customer",
            ]
        },
        {
            TestModality.Testkit, "failed.testkit.failure_to_deliver_to_lab",
            [
                "received.testkit.ordered", "received.testkit.awaiting_registration", "received.testkit.testkit_registered",
                "received.testkit.requisition_created", "collecting_sample.testkit.transit_customer",
                "collecting_sample.testkit.out_for_delivery", "collecting_sample.testkit.with_customer",
                "collecting_sample.testkit.transit_lab", "failed.testkit.failure_to_deliver_to_lab",
            ]
        },
        {
            TestModality.Testkit, "failed.testkit.sample_error",
            [
                "received.testkit.ordered", "received.testkit.awaiting_registration", "received.testkit.testkit_registered",
                "received.testkit.requisition_created", "collecting_sample.testkit.transit_customer",
                "collecting_sample.testkit.out_for_delivery", "collecting_sample.testkit.with_customer",
                "collecting_sample.testkit.transit_lab", "sample_with_lab.testkit.delivered_to_lab", "failed.testkit.sample_error",
            ]
        },
        {
            TestModality.Testkit, "failed.testkit.lost",
            [
                "received.testkit.ordered", "received.testkit.awaiting_registration", "received.testkit.testkit_registered",
                "received.testkit.requisition_created", "collecting_sample.testkit.transit_customer",
                "collecting_sample.testkit.out_for_delivery", "collecting_sample.testkit.with_customer",
                "collecting_sample.testkit.transit_lab", "failed.testkit.lost",
            ]
        },
        {
            TestModality.Testkit, "cancelled.testkit.cancelled",
            [
                "received.testkit.ordered", "received.testkit.awaiting_registration", "received.testkit.testkit_registered",
                "received.testkit.requisition_created", "cancelled.testkit.cancelled",
            ]
        },
        {
            TestModality.Testkit, "cancelled.testkit.do_not_process",
            [
                "received.testkit.ordered", "received.testkit.awaiting_registration", "received.testkit.testkit_registered",
                "received.testkit.requisition_created", "collecting_sample.testkit.transit_customer",
                "collecting_sample.testkit.out_for_delivery", "collecting_sample.testkit.with_customer",
                "collecting_sample.testkit.transit_lab", "sample_with_lab.testkit.delivered_to_lab", "cancelled.testkit.do_not_process",
            ]
        },
        {
            TestModality.WalkInTest, "completed.walk_in_test.completed",
            [
                "received.walk_in_test.ordered", "received.walk_in_test.requisition_created",
                "sample_with_lab.walk_in_test.partial_results", "completed.walk_in_test.completed",
            ]
        },
        {
            TestModality.WalkInTest, "failed.walk_in_test.sample_error",
            ["received.walk_in_test.ordered", "received.walk_in_test.requisition_created", "failed.walk_in_test.sample_error"]
        },
        {
            TestModality.WalkInTest, "cancelled.walk_in_test.cancelled",
            ["received.walk_in_test.ordered", "received.walk_in_test.requisition_created", "cancelled.walk_in_test.cancelled"]
        },
        {
            TestModality.AtHomePhlebotomy, "completed.at_home_phlebotomy.completed",
            [
                "received.at_home_phlebotomy.ordered", "received.at_home_phlebotomy.requisition_created",
                "collecting_sample.at_home_phlebotomy.appointment_scheduled", "collecting_sample.at_home_phlebotomy.draw_completed",
                "sample_with_lab.at_home_phlebotomy.partial_results", "completed.at_home_phlebotomy.completed",
            ]
        },
        {
            TestModality.AtHomePhlebotomy, "cancelled.at_home_phlebotomy.cancelled",
            ["received.at_home_phlebotomy.ordered", "received.at_home_phlebotomy.requisition_created", "cancelled.at_home_phlebotomy.cancelled"]
        },
    };

    [Theory]
    [MemberData(nameof(EveryTerminalStatusFromDraft))]
    public void PathTo_EveryTerminalStatusFromDraft_WalksTheNormalPath(TestModality modality, string finalStatus, string[] expected)
    {
        Assert.Equal(expected, OrderStatusMachine.PathTo(modality, null, finalStatus));
        // A placed requisition (received.*.ordered) skips the first step.
        Assert.Equal(expected[1..], OrderStatusMachine.PathTo(modality, Status(modality, 0), finalStatus));
    }

    [Fact]
    public void PathTo_EveryTerminalStatus_IsCoveredByTheDraftTable()
    {
        var covered = EveryTerminalStatusFromDraft().Select(row => (string)row[1]).ToHashSet();
        var terminal = Seed.Values.SelectMany(s => s).Where(s => s.Split('.')[0] is "completed" or "cancelled" or "failed");
        Assert.Equal(terminal.Order(), covered.Order());
    }

    public static TheoryData<TestModality, int, int> EveryStateToEveryTerminalStatus()
    {
        var data = new TheoryData<TestModality, int, int>();
        foreach (var (modality, statuses) in Seed)
        {
            for (var from = -1; from < statuses.Length; from++)
            {
                for (var to = 0; to < statuses.Length; to++)
                {
                    if (statuses[to].Split('.')[0] is "completed" or "cancelled" or "failed")
                    {
                        data.Add(modality, from, to);
                    }
                }
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryStateToEveryTerminalStatus))]
    public void PathTo_FromEveryState_IsRecordableStepByStepOrInvalidArgument(TestModality modality, int from, int to)
    {
        var current = Status(modality, from);
        var final = Seed[modality][to];
        IReadOnlyList<string> path;
        try
        {
            path = OrderStatusMachine.PathTo(modality, current, final);
        }
        catch (InvalidArgumentException ex)
        {
            Assert.Equal("final_status", Assert.Single(ex.Violations).Field);
            // Only a terminal order, a failure whose moment has passed, or a cancellation the cancellation table no
            // longer allows from here or anywhere ahead, is unreachable.
            Assert.True(current is { IsTerminal: true } || final.StartsWith("failed.", StringComparison.Ordinal)
                || (final.StartsWith("cancelled.", StringComparison.Ordinal) && !OrderStatusMachine.CancellationsFrom(modality, current).Contains(final)),
                $"{current} -> {final}");
            return;
        }
        var status = current;
        foreach (var step in path)
        {
            status = OrderStatusMachine.Record(modality, status, step);
        }
        Assert.Equal(final, status?.ToString());
        Assert.Equal(path.Count, path.Distinct().Count());
    }

    [Theory]
    [InlineData(TestModality.Testkit, "collecting_sample.testkit.with_customer", "failed.testkit.failure_to_deliver_to_customer")]
    [InlineData(TestModality.Testkit, "sample_with_lab.testkit.delivered_to_lab", "failed.testkit.failure_to_deliver_to_lab")]
    [InlineData(TestModality.Testkit, "completed.testkit.completed", "cancelled.testkit.cancelled")]
    [InlineData(TestModality.Testkit, "cancelled.testkit.cancelled", "completed.testkit.completed")]
    [InlineData(TestModality.Testkit, "collecting_sample.testkit.transit_lab", "cancelled.testkit.cancelled")]
    [InlineData(TestModality.AtHomePhlebotomy, "collecting_sample.at_home_phlebotomy.draw_completed", "cancelled.at_home_phlebotomy.cancelled")]
    [InlineData(TestModality.WalkInTest, "received.walk_in_test.ordered", "sample_with_lab.walk_in_test.partial_results")]
    [InlineData(TestModality.Testkit, "received.testkit.ordered", "collecting_sample.testkit.transit_lab")]
    [InlineData(TestModality.Testkit, "received.testkit.ordered", "completed.walk_in_test.completed")]
    [InlineData(TestModality.Testkit, "received.testkit.ordered", "completed.testkit.done")]
    public void PathTo_UnreachableOrNotFinal_IsInvalidArgumentOnFinalStatus(TestModality modality, string current, string final)
    {
        var ex = Assert.Throws<InvalidArgumentException>(() =>
            OrderStatusMachine.PathTo(modality, Modalities.Parse(modality, current, "status"), final));
        Assert.Equal("final_status", Assert.Single(ex.Violations).Field);
    }

    [Theory]
    [InlineData(TestModality.Testkit, "sample_with_lab.testkit.delivered_to_lab", "failed.testkit.lost", new[] { "failed.testkit.lost" })]
    [InlineData(TestModality.Testkit, "collecting_sample.testkit.with_customer", "failed.testkit.lost",
        new[] { "collecting_sample.testkit.transit_lab", "failed.testkit.lost" })]
    [InlineData(TestModality.Testkit, "collecting_sample.testkit.with_customer", "cancelled.testkit.cancelled", new[] { "cancelled.testkit.cancelled" })]
    [InlineData(TestModality.WalkInTest, "sample_with_lab.walk_in_test.partial_results", "failed.walk_in_test.sample_error",
        new[] { "failed.walk_in_test.sample_error" })]
    [InlineData(TestModality.AtHomePhlebotomy, "collecting_sample.at_home_phlebotomy.appointment_cancelled", "completed.at_home_phlebotomy.completed",
        new[]
        {
            "collecting_sample.at_home_phlebotomy.appointment_scheduled", "collecting_sample.at_home_phlebotomy.draw_completed",
            "sample_with_lab.at_home_phlebotomy.partial_results", "completed.at_home_phlebotomy.completed",
        })]
    [InlineData(TestModality.AtHomePhlebotomy, "collecting_sample.at_home_phlebotomy.appointment_cancelled", "cancelled.at_home_phlebotomy.cancelled",
        new[] { "cancelled.at_home_phlebotomy.cancelled" })]
    public void PathTo_FromPastTheUsualPoint_FailsWhereItStillCan(TestModality modality, string current, string final, string[] expected)
    {
        Assert.Equal(expected, OrderStatusMachine.PathTo(modality, Modalities.Parse(modality, current, "status"), final));
    }

    [Fact]
    public void PathTo_AlreadyAtTheFinalStatus_IsEmpty()
    {
        var completed = Modalities.Parse(TestModality.Testkit, "completed.testkit.completed", "status");
        Assert.Empty(OrderStatusMachine.PathTo(TestModality.Testkit, completed, "completed.testkit.completed"));
    }

    [Theory]
    [InlineData(TestModality.Testkit)]
    [InlineData(TestModality.WalkInTest)]
    [InlineData(TestModality.AtHomePhlebotomy)]
    public void PathTo_EmptyFinalStatus_MeansCompleted(TestModality modality)
    {
        var word = Modalities.Word(modality);
        Assert.Equal(
            OrderStatusMachine.PathTo(modality, null, $"completed.{word}.completed"),
            OrderStatusMachine.PathTo(modality, null, ""));
    }

    // The cancellation table, written by hand from Junction's rule (until the lab has the sample; a test kit's
    // sample on its way to or at the lab is do_not_process instead), and the README's table generated from the code.
    [Theory]
    [InlineData(TestModality.Testkit, null, "cancelled.testkit.cancelled")]
    [InlineData(TestModality.Testkit, "received.testkit.awaiting_registration", "cancelled.testkit.cancelled")]
    [InlineData(TestModality.Testkit, "collecting_sample.testkit.with_customer", "cancelled.testkit.cancelled")]
    [InlineData(TestModality.Testkit, "collecting_sample.testkit.transit_lab", "cancelled.testkit.do_not_process")]
    [InlineData(TestModality.Testkit, "sample_with_lab.testkit.delivered_to_lab", "cancelled.testkit.do_not_process")]
    [InlineData(TestModality.Testkit, "failed.testkit.lost", "")]
    [InlineData(TestModality.WalkInTest, "received.walk_in_test.requisition_created", "cancelled.walk_in_test.cancelled")]
    [InlineData(TestModality.WalkInTest, "sample_with_lab.walk_in_test.partial_results", "")]
    [InlineData(TestModality.AtHomePhlebotomy, "collecting_sample.at_home_phlebotomy.appointment_cancelled", "cancelled.at_home_phlebotomy.cancelled")]
    [InlineData(TestModality.AtHomePhlebotomy, "collecting_sample.at_home_phlebotomy.draw_completed", "")]
    [InlineData(TestModality.AtHomePhlebotomy, "completed.at_home_phlebotomy.completed", "")]
    public void CancellationsFrom_FollowTheTable(TestModality modality, string? current, string expected)
    {
        var from = current is null ? null : Modalities.Parse(modality, current, "status");
        Assert.Equal(expected.Length == 0 ? [] : new[] { expected }, OrderStatusMachine.CancellationsFrom(modality, from));
    }

    [Fact]
    public void RequisitionReadme_ShowsTheCancellationTableOfTheCode()
    {
        var readme = File.ReadAllText(Path.Combine(LabMesh.Testing.Repository.Root, "services", "LabMesh.Requisition", "README.md")).ReplaceLineEndings("\n");
        const string begin = "<!-- cancellation-table:begin -->\n";
        const string end = "<!-- cancellation-table:end -->";
        var start = readme.IndexOf(begin, StringComparison.Ordinal);
        var stop = readme.IndexOf(end, StringComparison.Ordinal);
        Assert.True(start >= 0 && stop > start, "the Requisition README has no cancellation table between its markers");
        Assert.Equal(OrderStatusMachine.CancellationTableMarkdown(), readme[(start + begin.Length)..stop]);
        Assert.Equal(Modalities.All.Sum(m => Modalities.Statuses(m).Count + 1), OrderStatusMachine.Cancellations.Count);
    }

    private static int Stage(OrderStatus high) => high switch
    {
        OrderStatus.Received => 1,
        OrderStatus.CollectingSample => 2,
        OrderStatus.SampleWithLab => 3,
        _ => 4,
    };
}
