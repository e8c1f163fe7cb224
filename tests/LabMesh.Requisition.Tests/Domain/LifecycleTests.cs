using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Requisition.Domain;

namespace LabMesh.Requisition.Tests.Domain;

public class LifecycleTests
{
    private const TaskBusinessStatus Conf = TaskBusinessStatus.OrderConfirmed;
    private const TaskBusinessStatus Att = TaskBusinessStatus.AppointmentAttended;
    private const TaskBusinessStatus Part = TaskBusinessStatus.PartialResultsReady;
    private const TaskBusinessStatus Full = TaskBusinessStatus.FullResultsReady;
    private const TaskBusinessStatus RIssue = TaskBusinessStatus.ResultsIssue;

    private const TestModality Kit = TestModality.Testkit;
    private const TestModality WalkIn = TestModality.WalkInTest;
    private const TestModality AtHome = TestModality.AtHomePhlebotomy;

    // The results stage the ResultsInterpretation service reported last.
    private const LifecycleStatus None = LifecycleStatus.Unspecified;
    private const LifecycleStatus PartialStage = LifecycleStatus.PartialResults;
    private const LifecycleStatus Amended = LifecycleStatus.ResultsAmended;
    private const LifecycleStatus InterpReady = LifecycleStatus.InterpretationReady;
    private const LifecycleStatus InterpShared = LifecycleStatus.InterpretationShared;

    // Events are written "high.low"; the modality's word goes in the middle.
    // (case, draft, modality, events, service requests, results stage, expected)
    public static TheoryData<string, bool, TestModality, string[], TaskBusinessStatus[], LifecycleStatus, LifecycleStatus> Cases() => new()
    {
        { "draft", true, Kit, [], [], None, LifecycleStatus.NotPurchased },
        { "draft ignores the results stage", true, AtHome, [], [Full], InterpShared, LifecycleStatus.NotPurchased },
        { "placed, no event yet", false, Kit, [], [], None, LifecycleStatus.Purchased },
        { "placed at-home, no event yet", false, AtHome, [], [], None, LifecycleStatus.ScheduleAppointment },
        { "testkit ordered", false, Kit, ["received.ordered"], [], None, LifecycleStatus.Purchased },
        { "walk-in requisition created", false, WalkIn, ["received.ordered", "received.requisition_created"], [Conf], None, LifecycleStatus.Purchased },
        { "at-home ordered", false, AtHome, ["received.ordered"], [], None, LifecycleStatus.ScheduleAppointment },
        { "at-home requisition created", false, AtHome, ["received.ordered", "received.requisition_created"], [Conf], None, LifecycleStatus.ScheduleAppointment },
        {
            "at-home scheduled", false, AtHome,
            ["received.ordered", "received.requisition_created", "collecting_sample.appointment_scheduled"], [Conf], None,
            LifecycleStatus.UpcomingAppointment
        },
        {
            "at-home appointment cancelled", false, AtHome,
            ["received.ordered", "collecting_sample.appointment_scheduled", "collecting_sample.appointment_cancelled"],
            [TaskBusinessStatus.AppointmentIssue], None, LifecycleStatus.ScheduleAppointment
        },
        {
            "at-home rescheduled", false, AtHome,
            ["received.ordered", "collecting_sample.appointment_scheduled", "collecting_sample.appointment_cancelled", "collecting_sample.appointment_scheduled"],
            [], None, LifecycleStatus.UpcomingAppointment
        },
        {
            "at-home draw completed", false, AtHome,
            ["received.ordered", "collecting_sample.appointment_scheduled", "collecting_sample.draw_completed"], [Att], None,
            LifecycleStatus.Processing
        },
        {
            "testkit shipping to the patient", false, Kit,
            ["received.ordered", "received.requisition_created", "collecting_sample.transit_customer", "collecting_sample.with_customer"],
            [Conf], None, LifecycleStatus.Purchased
        },
        {
            "testkit on its way to the lab", false, Kit,
            ["received.ordered", "collecting_sample.with_customer", "collecting_sample.transit_lab"], [Att], None,
            LifecycleStatus.Processing
        },
        {
            "testkit delivered to the lab", false, Kit,
            ["received.ordered", "collecting_sample.transit_lab", "sample_with_lab.delivered_to_lab"], [Att, Att], None,
            LifecycleStatus.Processing
        },
        {
            "walk-in partial results event", false, WalkIn,
            ["received.ordered", "received.requisition_created", "sample_with_lab.partial_results"], [Att, Att], None,
            LifecycleStatus.PartialResults
        },
        {
            "one test has partial results", false, Kit,
            ["received.ordered", "sample_with_lab.delivered_to_lab"], [Part, Att], None, LifecycleStatus.PartialResults
        },
        {
            "one test full, one pending", false, Kit,
            ["received.ordered", "sample_with_lab.delivered_to_lab"], [Full, Att], None, LifecycleStatus.PartialResults
        },
        {
            "one test full, one with a results issue", false, Kit,
            ["received.ordered", "sample_with_lab.delivered_to_lab"], [Full, RIssue], None, LifecycleStatus.PartialResults
        },
        {
            "every test full", false, Kit,
            ["received.ordered", "sample_with_lab.delivered_to_lab"], [Full, Full], None, LifecycleStatus.ResultsReady
        },
        {
            "every test full before any lab event", false, WalkIn,
            ["received.ordered"], [Full], None, LifecycleStatus.ResultsReady
        },
        {
            "order completed", false, AtHome,
            ["received.ordered", "collecting_sample.draw_completed", "sample_with_lab.partial_results", "completed.completed"],
            [Full, RIssue], None, LifecycleStatus.ResultsReady
        },
        {
            "order completed, no service request listed", false, WalkIn,
            ["received.ordered", "completed.completed"], [], None, LifecycleStatus.ResultsReady
        },
        {
            "failed after the lab got the sample", false, Kit,
            ["received.ordered", "sample_with_lab.delivered_to_lab", "failed.sample_error"], [RIssue], None,
            LifecycleStatus.Processing
        },
        {
            "failed on the way to the patient", false, Kit,
            ["received.ordered", "collecting_sample.transit_customer", "failed.failure_to_deliver_to_customer"],
            [TaskBusinessStatus.OrderIssue], None, LifecycleStatus.Purchased
        },
        { "cancelled after placing", false, Kit, ["received.ordered", "cancelled.cancelled"], [], None, LifecycleStatus.Purchased },
        {
            "cancelled after scheduling", false, AtHome,
            ["received.ordered", "collecting_sample.appointment_scheduled", "cancelled.cancelled"], [], None,
            LifecycleStatus.UpcomingAppointment
        },
        { "results amended", false, Kit, ["received.ordered", "completed.completed"], [Full], Amended, LifecycleStatus.ResultsAmended },
        {
            "interpretation ready", false, Kit,
            ["received.ordered", "sample_with_lab.delivered_to_lab"], [Full], InterpReady, LifecycleStatus.InterpretationReady
        },
        {
            "interpretation shared", false, Kit,
            ["received.ordered", "completed.completed"], [Full], InterpShared, LifecycleStatus.InterpretationShared
        },
        {
            "amended after sharing: the latest stage, not the highest", false, AtHome,
            ["received.ordered", "completed.completed"], [Full], Amended, LifecycleStatus.ResultsAmended
        },
        {
            "a partial report before the order completed: the order's later view wins", false, Kit,
            ["received.ordered", "completed.completed"], [Full], PartialStage, LifecycleStatus.ResultsReady
        },
        {
            "a partial report before any service request moved", false, WalkIn,
            ["received.ordered", "received.requisition_created"], [Conf, Conf], PartialStage, LifecycleStatus.PartialResults
        },
        {
            "interpretation ready on partial results", false, Kit,
            ["received.ordered", "sample_with_lab.delivered_to_lab"], [Part], InterpReady, LifecycleStatus.InterpretationReady
        },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Derive_Case_GivesTheSeed003Status(
        string name, bool draft, TestModality modality, string[] events, TaskBusinessStatus[] serviceRequests, LifecycleStatus results, LifecycleStatus expected)
    {
        var word = Modalities.Word(modality);
        var inputs = new LifecycleInputs(
            draft,
            modality,
            [.. events.Select(e => e.Replace(".", $".{word}.", StringComparison.Ordinal))],
            serviceRequests,
            results);
        Assert.True(expected == Lifecycle.Derive(inputs), $"{name}: expected {expected}, got {Lifecycle.Derive(inputs)}");
    }

    [Fact]
    public void Derive_MalformedStoredEvent_Throws()
    {
        Assert.Throws<ArgumentException>(() =>
            Lifecycle.Derive(new LifecycleInputs(false, Kit, ["delivered"], [])));
    }
}
