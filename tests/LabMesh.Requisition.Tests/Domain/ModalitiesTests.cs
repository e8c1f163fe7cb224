using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Requisition.Domain;
using LabMesh.Core.Errors;
using LabMesh.Core.Vocabulary;

namespace LabMesh.Requisition.Tests.Domain;

public class ModalitiesTests
{
    [Fact]
    public void Statuses_EveryModality_AreSeed004sListInItsOrder()
    {
        Assert.Equal(
            [
                "received.testkit.ordered", "received.testkit.awaiting_registration", "received.testkit.testkit_registered",
                "received.testkit.requisition_created", "collecting_sample.testkit.transit_customer",
                "collecting_sample.testkit.out_for_delivery", "collecting_sample.testkit.with_customer",
                "collecting_sample.testkit.transit_lab", "sample_with_lab.testkit.delivered_to_lab", "completed.testkit.completed",
                "failed.testkit.failure_to_deliver_to_customer", "failed.testkit.failure_to_deliver_to_lab",
                "failed.testkit.sample_error", "failed.testkit.lost", "cancelled.testkit.cancelled", "cancelled.testkit.do_not_process",
            ],
            Modalities.Statuses(TestModality.Testkit));
        Assert.Equal(
            [
                "received.walk_in_test.ordered", "received.walk_in_test.requisition_created",
                "sample_with_lab.walk_in_test.partial_results", "completed.walk_in_test.completed",
                "failed.walk_in_test.sample_error", "cancelled.walk_in_test.cancelled",
            ],
            Modalities.Statuses(TestModality.WalkInTest));
        Assert.Equal(
            [
                "received.at_home_phlebotomy.ordered", "received.at_home_phlebotomy.requisition_created",
                "collecting_sample.at_home_phlebotomy.appointment_scheduled", "collecting_sample.at_home_phlebotomy.draw_completed",
                "collecting_sample.at_home_phlebotomy.appointment_cancelled", "sample_with_lab.at_home_phlebotomy.partial_results",
                "completed.at_home_phlebotomy.completed", "cancelled.at_home_phlebotomy.cancelled",
            ],
            Modalities.Statuses(TestModality.AtHomePhlebotomy));
    }

    [Theory]
    [InlineData(TestModality.Testkit, "testkit")]
    [InlineData(TestModality.WalkInTest, "walk_in_test")]
    [InlineData(TestModality.AtHomePhlebotomy, "at_home_phlebotomy")]
    public void Word_EveryModality_IsTheSeedWordAndParsesBack(TestModality modality, string word)
    {
        Assert.Equal(word, Modalities.Word(modality));
        Assert.True(Modalities.TryParseModality(word, out var parsed));
        Assert.Equal(modality, parsed);
    }

    [Fact]
    public void Word_Unspecified_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Modalities.Word(TestModality.Unspecified));
        Assert.False(Modalities.TryParseModality("mail_in", out _));
    }

    [Theory]
    [InlineData(OrderStatus.Received, "received", false)]
    [InlineData(OrderStatus.CollectingSample, "collecting_sample", false)]
    [InlineData(OrderStatus.SampleWithLab, "sample_with_lab", false)]
    [InlineData(OrderStatus.Completed, "completed", true)]
    [InlineData(OrderStatus.Cancelled, "cancelled", true)]
    [InlineData(OrderStatus.Failed, "failed", true)]
    public void HighWord_EveryOrderStatus_IsTheSeedWordAndParsesBack(OrderStatus status, string word, bool terminal)
    {
        Assert.Equal(word, Modalities.HighWord(status));
        Assert.True(Modalities.TryParseHigh(word, out var parsed));
        Assert.Equal(status, parsed);
        Assert.Equal(terminal, Modalities.IsTerminal(status));
    }

    [Fact]
    public void HighWord_Unspecified_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Modalities.HighWord(OrderStatus.Unspecified));
        Assert.False(Modalities.TryParseHigh("delivered", out _));
    }

    public static TheoryData<TestModality, string> EveryStatus()
    {
        var data = new TheoryData<TestModality, string>();
        foreach (var modality in Modalities.All)
        {
            foreach (var status in Modalities.Statuses(modality))
            {
                data.Add(modality, status);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(EveryStatus))]
    public void Parse_EveryStatus_RoundTripsThroughToString(TestModality modality, string value)
    {
        var status = Modalities.Parse(modality, value, "status");
        Assert.Equal(modality, status.Modality);
        Assert.Equal(value, status.ToString());
        Assert.Equal(value.Split('.')[2], status.Low);
        Assert.Equal(value.Split('.')[0], Modalities.HighWord(status.High));
        Assert.True(Modalities.IsKnown(status));
    }

    [Fact]
    public void Parse_StatusOfAnotherModality_IsInvalidArgumentNamingBothModalities()
    {
        var ex = Assert.Throws<InvalidArgumentException>(() =>
            Modalities.Parse(TestModality.WalkInTest, "collecting_sample.testkit.transit_customer", "status"));
        var violation = Assert.Single(ex.Violations);
        Assert.Equal("status", violation.Field);
        Assert.Contains("testkit", violation.Description, StringComparison.Ordinal);
        Assert.Contains("walk_in_test", violation.Description, StringComparison.Ordinal);
        Assert.Contains("received.walk_in_test.ordered", violation.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void TryParse_WellFormedButUnlisted_ParsesButIsNotKnown()
    {
        Assert.True(Modalities.TryParse("collecting_sample.walk_in_test.transit_lab", out var status));
        Assert.False(Modalities.IsKnown(status));
        Assert.Equal(new NamespacedStatus(OrderStatus.CollectingSample, TestModality.WalkInTest, "transit_lab"), status);
    }
}
