using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Core.Vocabulary;

namespace LabMesh.ServiceDefaults.Tests.Vocabulary;

/// <summary>The words read from the generated enums are the seeds' words, which events and webhooks carry.</summary>
public sealed class EnumWordsTests
{
    [Fact]
    public void LifecycleWords_AreSeed003sWords_InTheContractsOrder()
    {
        Assert.Equal(
            ["", "not_purchased", "purchased", "schedule_appointment", "upcoming_appointment", "processing", "partial_results",
             "results_ready", "results_amended", "interpretation_ready", "interpretation_shared"],
            Enum.GetValues<LifecycleStatus>().Select(LifecycleWords.Word));
    }

    [Fact]
    public void Word_OtherEnums_DropTheirOwnPrefix()
    {
        Assert.Equal(["", "normal", "abnormal", "critical"], Enum.GetValues<Interpretation>().Select(v => EnumWords.Word(v)));
        Assert.Equal(["", "partial", "final"], Enum.GetValues<ReportStatus>().Select(v => EnumWords.Word(v)));
        Assert.Equal(["", "phone", "in_person", "app", "pager", "secure_message"], Enum.GetValues<AcknowledgementChannel>().Select(v => EnumWords.Word(v)));
    }

    [Fact]
    public void Word_ANumberTheContractDoesNotName_IsEmpty()
    {
        Assert.Equal("", EnumWords.Word((LifecycleStatus)99));
        Assert.Equal("", EnumWords.Word(LifecycleStatus.Unspecified));
    }

    [Fact]
    public void TryParse_ReadsBackEveryWord_AndNothingElse()
    {
        foreach (var modality in new[] { TestModality.Testkit, TestModality.WalkInTest, TestModality.AtHomePhlebotomy })
        {
            Assert.True(EnumWords.TryParse<TestModality>(EnumWords.Word(modality), out var read));
            Assert.Equal(modality, read);
        }

        Assert.Equal("walk_in_test", EnumWords.Word(TestModality.WalkInTest));
        foreach (var word in new[] { "", null, "unspecified", "WALK_IN_TEST", "TEST_MODALITY_TESTKIT", "testkit " })
        {
            Assert.False(EnumWords.TryParse<TestModality>(word, out var read), word);
            Assert.Equal(TestModality.Unspecified, read);
        }
    }

    [Fact]
    public void Word_AnEnumNotGeneratedFromProto_IsRefused()
    {
        Assert.Throws<TypeInitializationException>(() => EnumWords.Word(DayOfWeek.Monday));
    }
}
