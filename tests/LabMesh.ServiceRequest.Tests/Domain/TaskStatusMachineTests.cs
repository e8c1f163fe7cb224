using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Core.Errors;
using LabMesh.ServiceRequest.Domain;

namespace LabMesh.ServiceRequest.Tests.Domain;

public class TaskStatusMachineTests
{
    private const ServiceRequestStatus Active = ServiceRequestStatus.Active;
    private const ServiceRequestStatus Completed = ServiceRequestStatus.Completed;
    private const ServiceRequestStatus Revoked = ServiceRequestStatus.Revoked;

    // Target columns of the matrix below, in this order.
    private static readonly TaskBusinessStatus[] Targets =
    [
        TaskBusinessStatus.Unspecified,
        TaskBusinessStatus.OrderConfirmed,
        TaskBusinessStatus.AppointmentAttended,
        TaskBusinessStatus.PartialResultsReady,
        TaskBusinessStatus.FullResultsReady,
        TaskBusinessStatus.AppointmentIssue,
        TaskBusinessStatus.ResultsIssue,
        TaskBusinessStatus.OrderIssue,
    ];

    private static readonly Dictionary<string, TaskBusinessStatus> Short = new()
    {
        ["none"] = TaskBusinessStatus.Unspecified,
        ["CONF"] = TaskBusinessStatus.OrderConfirmed,
        ["ATT"] = TaskBusinessStatus.AppointmentAttended,
        ["PART"] = TaskBusinessStatus.PartialResultsReady,
        ["FULL"] = TaskBusinessStatus.FullResultsReady,
        ["A_ISS"] = TaskBusinessStatus.AppointmentIssue,
        ["R_ISS"] = TaskBusinessStatus.ResultsIssue,
        ["O_ISS"] = TaskBusinessStatus.OrderIssue,
    };

    // The partner's PATCH, written from seed 000 and DESIGN.md, not from the implementation.
    // '+' moves (FULL also completes), '.' repeat = no-op, 'x' FAILED_PRECONDITION, '!' INVALID_ARGUMENT.
    //                                   to: UNSP CONF ATT PART FULL A_ISS R_ISS O_ISS
    private static readonly (ServiceRequestStatus Status, string Business, string Row)[] UpdateMatrix =
    [
        (Active, "none", "!+++++++"),
        (Active, "CONF", "!.++++++"),
        (Active, "ATT", "!x.++x++"),
        (Active, "PART", "!xx.+x+x"),
        (Active, "A_ISS", "!xxxx.xx"),
        (Active, "R_ISS", "!xxxxx.x"),
        (Active, "O_ISS", "!xxxxxx."),
        (Completed, "FULL", "!xxx.xxx"),
        (Revoked, "none", "!xxxxxxx"),
        (Revoked, "CONF", "!.xxxxxx"),
        (Revoked, "ATT", "!x.xxxxx"),
        (Revoked, "PART", "!xx.xxxx"),
        (Revoked, "A_ISS", "!xxxx.xx"),
        (Revoked, "R_ISS", "!xxxxx.x"),
        (Revoked, "O_ISS", "!xxxxxx."),
    ];

    private static readonly Dictionary<string, string> SeedWords = new()
    {
        ["CONF"] = "ORDER_CONFIRMED",
        ["ATT"] = "APPOINTMENT_ATTENDED",
        ["PART"] = "PARTIAL_RESULTS_READY",
        ["FULL"] = "FULL_RESULTS_READY",
        ["A_ISS"] = "APPOINTMENT_ISSUE",
        ["R_ISS"] = "RESULTS_ISSUE",
        ["O_ISS"] = "ORDER_ISSUE",
    };

    public static TheoryData<ServiceRequestStatus, string, int> EveryUpdatePair()
    {
        var data = new TheoryData<ServiceRequestStatus, string, int>();
        foreach (var (status, business, _) in UpdateMatrix)
        {
            for (var to = 0; to < Targets.Length; to++)
            {
                data.Add(status, business, to);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryUpdatePair))]
    public void UpdateBusinessStatus_EveryPair_MatchesTheMatrix(ServiceRequestStatus status, string business, int to)
    {
        var row = UpdateMatrix.Single(r => r.Status == status && r.Business == business).Row;
        var current = new TaskState(status, Short[business]);
        var next = Targets[to];
        var expectedAllowed = AllowedWords(row);

        switch (row[to])
        {
            case '+':
                var moved = TaskStatusMachine.UpdateBusinessStatus(current, next);
                var expectedStatus = next == TaskBusinessStatus.FullResultsReady ? Completed : status;
                Assert.Equal(new TaskState(expectedStatus, next), moved);
                break;
            case '.':
                Assert.Equal(current, TaskStatusMachine.UpdateBusinessStatus(current, next));
                break;
            case 'x':
                var illegal = Assert.Throws<IllegalTransitionException>(() => TaskStatusMachine.UpdateBusinessStatus(current, next));
                Assert.Equal("task_business_status", illegal.Subject);
                Assert.Equal(status == Active ? SeedWords.GetValueOrDefault(business, business) : status == Completed ? "completed" : "revoked", illegal.From);
                Assert.Equal(SeedWords.Single(w => Short[w.Key] == next).Value, illegal.To);
                Assert.Equal(expectedAllowed, illegal.Allowed);
                break;
            case '!':
                var invalid = Assert.Throws<InvalidArgumentException>(() => TaskStatusMachine.UpdateBusinessStatus(current, next));
                Assert.Equal("task_business_status", Assert.Single(invalid.Violations).Field);
                break;
            default:
                Assert.Fail($"Bad matrix cell '{row[to]}'.");
                break;
        }
    }

    [Theory]
    [MemberData(nameof(EveryUpdatePair))]
    public void AllowedNext_EveryState_IsThePlusCellsOfItsRow(ServiceRequestStatus status, string business, int to)
    {
        _ = to;
        var row = UpdateMatrix.Single(r => r.Status == status && r.Business == business).Row;
        var allowed = TaskStatusMachine.AllowedNext(new TaskState(status, Short[business]));
        Assert.Equal(AllowedWords(row), allowed.Select(TaskStatusMachine.Word));
    }

    [Fact]
    public void UpdateTaskStatus_BackwardsMove_IsFailedPrecondition()
    {
        var current = new TaskState(Active, TaskBusinessStatus.PartialResultsReady);
        var ex = Assert.Throws<IllegalTransitionException>(() =>
            TaskStatusMachine.UpdateBusinessStatus(current, TaskBusinessStatus.AppointmentAttended));
        Assert.Equal(["FULL_RESULTS_READY", "RESULTS_ISSUE"], ex.Allowed);
    }

    [Fact]
    public void UpdateTaskStatus_UnknownEnumNumber_IsInvalidArgument()
    {
        var ex = Assert.Throws<InvalidArgumentException>(() =>
            TaskStatusMachine.UpdateBusinessStatus(new TaskState(Active, TaskBusinessStatus.Unspecified), (TaskBusinessStatus)42));
        Assert.Equal("task_business_status", Assert.Single(ex.Violations).Field);
    }

    [Fact]
    public void UpdateTaskStatus_HappyPathStepByStep_EndsCompleted()
    {
        var state = new TaskState(Active, TaskBusinessStatus.Unspecified);
        foreach (var next in new[] { TaskBusinessStatus.OrderConfirmed, TaskBusinessStatus.AppointmentAttended, TaskBusinessStatus.PartialResultsReady })
        {
            state = TaskStatusMachine.UpdateBusinessStatus(state, next);
            Assert.Equal(new TaskState(Active, next), state);
        }
        state = TaskStatusMachine.UpdateBusinessStatus(state, TaskBusinessStatus.FullResultsReady);
        Assert.Equal(new TaskState(Completed, TaskBusinessStatus.FullResultsReady), state);
    }

    public static TheoryData<ServiceRequestStatus, string> EveryState()
    {
        var data = new TheoryData<ServiceRequestStatus, string>();
        foreach (var (status, business, _) in UpdateMatrix)
        {
            data.Add(status, business);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryState))]
    public void Revoke_EveryState_RevokesActiveKeepsRevokedRefusesCompleted(ServiceRequestStatus status, string business)
    {
        var current = new TaskState(status, Short[business]);
        switch (status)
        {
            case Active:
                Assert.Equal(new TaskState(Revoked, Short[business]), TaskStatusMachine.Revoke(current));
                break;
            case Revoked:
                Assert.Equal(current, TaskStatusMachine.Revoke(current));
                break;
            default:
                var ex = Assert.Throws<IllegalTransitionException>(() => TaskStatusMachine.Revoke(current));
                Assert.Equal("status", ex.Subject);
                Assert.Equal("completed", ex.From);
                Assert.Equal("revoked", ex.To);
                Assert.Empty(ex.Allowed);
                break;
        }
    }

    // Order events (seed 004) applied to an active service request: DESIGN.md's consistency table.
    // Cells: the resulting state, '-' unchanged. n c a p = active with none / CONF / ATT / PART;
    // i r o = active with A_ISS / R_ISS / O_ISS; F = completed FULL; R = revoked, business kept.
    //                                                         from: none CONF ATT PART A_ISS R_ISS O_ISS
    private static readonly (string Event, string Row)[] EventMatrix =
    [
        ("received.testkit.ordered", "-------"),
        ("received.testkit.awaiting_registration", "-------"),
        ("received.testkit.testkit_registered", "-------"),
        ("received.testkit.requisition_created", "c------"),
        ("collecting_sample.testkit.transit_customer", "-------"),
        ("collecting_sample.testkit.out_for_delivery", "-------"),
        ("collecting_sample.testkit.with_customer", "-------"),
        ("collecting_sample.testkit.transit_lab", "aa-----"),
        ("sample_with_lab.testkit.delivered_to_lab", "aa-----"),
        ("completed.testkit.completed", "FFFF---"),
        ("failed.testkit.failure_to_deliver_to_customer", "ooor---"),
        ("failed.testkit.failure_to_deliver_to_lab", "ooor---"),
        ("failed.testkit.sample_error", "rrrr---"),
        ("failed.testkit.lost", "ooor---"),
        ("cancelled.testkit.cancelled", "RRRRRRR"),
        ("cancelled.testkit.do_not_process", "RRRRRRR"),
        ("received.walk_in_test.ordered", "-------"),
        ("received.walk_in_test.requisition_created", "c------"),
        ("sample_with_lab.walk_in_test.partial_results", "aa-----"),
        ("completed.walk_in_test.completed", "FFFF---"),
        ("failed.walk_in_test.sample_error", "rrrr---"),
        ("cancelled.walk_in_test.cancelled", "RRRRRRR"),
        ("received.at_home_phlebotomy.ordered", "-------"),
        ("received.at_home_phlebotomy.requisition_created", "c------"),
        ("collecting_sample.at_home_phlebotomy.appointment_scheduled", "-------"),
        ("collecting_sample.at_home_phlebotomy.draw_completed", "aa-----"),
        ("collecting_sample.at_home_phlebotomy.appointment_cancelled", "ii-----"),
        ("sample_with_lab.at_home_phlebotomy.partial_results", "aa-----"),
        ("completed.at_home_phlebotomy.completed", "FFFF---"),
        ("cancelled.at_home_phlebotomy.cancelled", "RRRRRRR"),
    ];

    private static readonly string[] ActiveColumns = ["none", "CONF", "ATT", "PART", "A_ISS", "R_ISS", "O_ISS"];

    public static TheoryData<string, int> EveryEventOnEveryActiveState()
    {
        var data = new TheoryData<string, int>();
        foreach (var (orderEvent, _) in EventMatrix)
        {
            for (var column = 0; column < ActiveColumns.Length; column++)
            {
                data.Add(orderEvent, column);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryEventOnEveryActiveState))]
    public void ApplyOrderEvent_EveryEventOnEveryActiveState_MatchesTheConsistencyTable(string orderEvent, int column)
    {
        var current = new TaskState(Active, Short[ActiveColumns[column]]);
        var cell = EventMatrix.Single(e => e.Event == orderEvent).Row[column];
        var expected = cell switch
        {
            '-' => current,
            'c' => new TaskState(Active, TaskBusinessStatus.OrderConfirmed),
            'a' => new TaskState(Active, TaskBusinessStatus.AppointmentAttended),
            'i' => new TaskState(Active, TaskBusinessStatus.AppointmentIssue),
            'r' => new TaskState(Active, TaskBusinessStatus.ResultsIssue),
            'o' => new TaskState(Active, TaskBusinessStatus.OrderIssue),
            'F' => new TaskState(Completed, TaskBusinessStatus.FullResultsReady),
            'R' => current with { Status = Revoked },
            _ => throw new InvalidOperationException($"Bad matrix cell '{cell}'."),
        };
        Assert.Equal(expected, TaskStatusMachine.ApplyOrderEvent(current, orderEvent));
    }

    public static TheoryData<string, ServiceRequestStatus, string> EveryEventOnEveryTerminalState()
    {
        var data = new TheoryData<string, ServiceRequestStatus, string>();
        foreach (var (orderEvent, _) in EventMatrix)
        {
            foreach (var (status, business, _) in UpdateMatrix.Where(r => r.Status != Active))
            {
                data.Add(orderEvent, status, business);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryEventOnEveryTerminalState))]
    public void ApplyOrderEvent_CompletedOrRevokedRequest_IsUnchanged(string orderEvent, ServiceRequestStatus status, string business)
    {
        var current = new TaskState(status, Short[business]);
        Assert.Equal(current, TaskStatusMachine.ApplyOrderEvent(current, orderEvent));
    }

    [Theory]
    [MemberData(nameof(EveryEventOnEveryActiveState))]
    public void ApplyOrderEvent_SameEventTwice_ChangesNothingTheSecondTime(string orderEvent, int column)
    {
        var once = TaskStatusMachine.ApplyOrderEvent(new TaskState(Active, Short[ActiveColumns[column]]), orderEvent);
        Assert.Equal(once, TaskStatusMachine.ApplyOrderEvent(once, orderEvent));
    }

    [Theory]
    [InlineData("")]
    [InlineData("completed")]
    [InlineData("completed.testkit")]
    [InlineData("completed.testkit.")]
    [InlineData("completed.testkit.completed.extra")]
    [InlineData("done.testkit.completed")]
    [InlineData("completed.mail_in.completed")]
    [InlineData("COMPLETED.testkit.completed")]
    public void ApplyOrderEvent_MalformedStatus_IsInvalidArgumentOnOrderStatus(string orderStatus)
    {
        var ex = Assert.Throws<InvalidArgumentException>(() =>
            TaskStatusMachine.ApplyOrderEvent(new TaskState(Active, TaskBusinessStatus.OrderConfirmed), orderStatus));
        Assert.Equal("order_status", Assert.Single(ex.Violations).Field);
    }

    [Fact]
    public void ApplyOrderEvent_RescheduleAfterAppointmentCancelled_StaysAppointmentIssue()
    {
        // Issue statuses are terminal: the owner, not the order feed, decides what comes next.
        var state = new TaskState(Active, TaskBusinessStatus.Unspecified);
        foreach (var orderEvent in new[]
        {
            "received.at_home_phlebotomy.requisition_created",
            "collecting_sample.at_home_phlebotomy.appointment_scheduled",
            "collecting_sample.at_home_phlebotomy.appointment_cancelled",
            "collecting_sample.at_home_phlebotomy.appointment_scheduled",
            "collecting_sample.at_home_phlebotomy.draw_completed",
            "completed.at_home_phlebotomy.completed",
        })
        {
            state = TaskStatusMachine.ApplyOrderEvent(state, orderEvent);
        }
        Assert.Equal(new TaskState(Active, TaskBusinessStatus.AppointmentIssue), state);
    }

    // The owner's reschedule, written from seed 000 ("APPOINTMENT_ISSUE ... WHOOP will reschedule"): only an active
    // request in APPOINTMENT_ISSUE reopens (to ORDER_CONFIRMED); every other state is left as it is.
    [Theory]
    [InlineData(ServiceRequestStatus.Active, TaskBusinessStatus.AppointmentIssue, ServiceRequestStatus.Active, TaskBusinessStatus.OrderConfirmed)]
    [InlineData(ServiceRequestStatus.Active, TaskBusinessStatus.ResultsIssue, ServiceRequestStatus.Active, TaskBusinessStatus.ResultsIssue)]
    [InlineData(ServiceRequestStatus.Active, TaskBusinessStatus.OrderIssue, ServiceRequestStatus.Active, TaskBusinessStatus.OrderIssue)]
    [InlineData(ServiceRequestStatus.Active, TaskBusinessStatus.Unspecified, ServiceRequestStatus.Active, TaskBusinessStatus.Unspecified)]
    [InlineData(ServiceRequestStatus.Active, TaskBusinessStatus.OrderConfirmed, ServiceRequestStatus.Active, TaskBusinessStatus.OrderConfirmed)]
    [InlineData(ServiceRequestStatus.Active, TaskBusinessStatus.AppointmentAttended, ServiceRequestStatus.Active, TaskBusinessStatus.AppointmentAttended)]
    [InlineData(ServiceRequestStatus.Revoked, TaskBusinessStatus.AppointmentIssue, ServiceRequestStatus.Revoked, TaskBusinessStatus.AppointmentIssue)]
    [InlineData(ServiceRequestStatus.Completed, TaskBusinessStatus.FullResultsReady, ServiceRequestStatus.Completed, TaskBusinessStatus.FullResultsReady)]
    public void Reschedule_ReopensOnlyAnActiveAppointmentIssue(
        ServiceRequestStatus status, TaskBusinessStatus business, ServiceRequestStatus expectedStatus, TaskBusinessStatus expectedBusiness)
    {
        Assert.Equal(new TaskState(expectedStatus, expectedBusiness), TaskStatusMachine.Reschedule(new TaskState(status, business)));
    }

    [Fact]
    public void Reschedule_ThenTheDraw_MovesTheReopenedRequestOn_WhileThePartnerAloneCannot()
    {
        var issue = TaskStatusMachine.ApplyOrderEvent(new TaskState(Active, TaskBusinessStatus.OrderConfirmed),
            "collecting_sample.at_home_phlebotomy.appointment_cancelled");
        Assert.Throws<IllegalTransitionException>(() => TaskStatusMachine.UpdateBusinessStatus(issue, TaskBusinessStatus.OrderConfirmed));

        var reopened = TaskStatusMachine.Reschedule(issue);
        var drawn = TaskStatusMachine.ApplyOrderEvent(
            TaskStatusMachine.ApplyOrderEvent(reopened, "collecting_sample.at_home_phlebotomy.appointment_scheduled"),
            "collecting_sample.at_home_phlebotomy.draw_completed");

        Assert.Equal(new TaskState(Active, TaskBusinessStatus.AppointmentIssue), issue);
        Assert.Equal(new TaskState(Active, TaskBusinessStatus.AppointmentAttended), drawn);
    }

    private static List<string> AllowedWords(string row)
    {
        var allowed = new List<string>();
        for (var i = 0; i < row.Length; i++)
        {
            if (row[i] == '+')
            {
                allowed.Add(SeedWords.Single(w => Short[w.Key] == Targets[i]).Value);
            }
        }
        return allowed;
    }

    // A result report (the ResultsInterpretation service): partial → PART, final → FULL (completed),
    // only forward, never out of an issue status, completed or revoked.
    // (status, business status, final, expected status, expected business status)
    public static TheoryData<ServiceRequestStatus, string, bool, ServiceRequestStatus, string> ResultsCases() => new()
    {
        { Active, "none", false, Active, "PART" },
        { Active, "none", true, Completed, "FULL" },
        { Active, "CONF", false, Active, "PART" },
        { Active, "ATT", true, Completed, "FULL" },
        { Active, "PART", false, Active, "PART" },
        { Active, "PART", true, Completed, "FULL" },
        { Completed, "FULL", false, Completed, "FULL" },
        { Completed, "FULL", true, Completed, "FULL" },
        { Active, "A_ISS", true, Active, "A_ISS" },
        { Active, "R_ISS", false, Active, "R_ISS" },
        { Active, "O_ISS", true, Active, "O_ISS" },
        { Revoked, "CONF", true, Revoked, "CONF" },
        { Revoked, "none", false, Revoked, "none" },
    };

    [Theory]
    [MemberData(nameof(ResultsCases))]
    public void ApplyResults_MovesForwardOnly(ServiceRequestStatus status, string business, bool final, ServiceRequestStatus expectedStatus, string expectedBusiness)
    {
        var after = TaskStatusMachine.ApplyResults(new TaskState(status, Short[business]), final);

        Assert.Equal(new TaskState(expectedStatus, Short[expectedBusiness]), after);
    }
}
