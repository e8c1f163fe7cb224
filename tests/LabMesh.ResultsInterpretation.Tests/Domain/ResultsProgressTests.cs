using LabMesh.Contracts.Requisition.V1;
using LabMesh.ResultsInterpretation.Domain;
using LabMesh.Core.Errors;

namespace LabMesh.ResultsInterpretation.Tests.Domain;

public class ResultsProgressTests
{
    private static readonly DateTimeOffset Now = new(2026, 1, 2, 3, 4, 5, TimeSpan.Zero);

    private static ResultsProgress New() => new("req-1", "team-1", "patient-1", LifecycleStatus.Unspecified, 0, 0, false, null);

    [Fact]
    public void Submitted_EveryActiveRequestFinal_IsInterpretationReadyAndAllResultsReceived()
    {
        var next = New().Submitted(["sr-1", "sr-2"], new HashSet<string> { "sr-1", "sr-2", "sr-revoked" });

        Assert.Equal(LifecycleStatus.InterpretationReady, next.Stage);
        Assert.True(next.AllReceived);
        Assert.Equal(1, next.Sequence);
        Assert.Equal("all_results_received", next.LabOrderStatus);
    }

    [Theory]
    [InlineData(new[] { "sr-1", "sr-2" }, new[] { "sr-1" })]
    [InlineData(new string[0], new[] { "sr-1" })]
    [InlineData(new[] { "sr-1" }, new string[0])]
    public void Submitted_SomeActiveRequestWithoutAFinalReport_IsPartialResults(string[] active, string[] final)
    {
        var before = New() with { Stage = LifecycleStatus.InterpretationReady, Sequence = 4, AllReceived = true };

        var next = before.Submitted(active, final.ToHashSet(StringComparer.Ordinal));

        Assert.Equal(LifecycleStatus.PartialResults, next.Stage);
        Assert.False(next.AllReceived);
        Assert.Equal(5, next.Sequence);
        Assert.Equal("results_received", next.LabOrderStatus);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Amended_KeepsAllReceived_AndNumbersANewMilestone(bool allReceived)
    {
        var before = New() with { Stage = LifecycleStatus.InterpretationShared, Sequence = 7, AllReceived = allReceived };

        var next = before.Amended();

        Assert.Equal(LifecycleStatus.ResultsAmended, next.Stage);
        Assert.Equal(allReceived, next.AllReceived);
        Assert.Equal(8, next.Sequence);
        Assert.Equal("results_amended", next.LabOrderStatus);
    }

    [Fact]
    public void Share_AllReceived_IsInterpretationSharedAtThatTime_AndSharingAgainChangesNothing()
    {
        var ready = New() with { Stage = LifecycleStatus.InterpretationReady, Sequence = 2, AllReceived = true };

        var (shared, changed) = ResultsProgress.Share(ready, Now);
        Assert.True(changed);
        Assert.Equal(LifecycleStatus.InterpretationShared, shared.Stage);
        Assert.Equal(3, shared.Sequence);
        Assert.Equal(Now, shared.SharedTime);

        var (again, changedAgain) = ResultsProgress.Share(shared, Now.AddHours(1));
        Assert.False(changedAgain);
        Assert.Same(shared, again);
        Assert.Throws<InvalidOperationException>(() => shared.LabOrderStatus);
    }

    [Fact]
    public void Share_WithoutEveryResult_IsIllegalNamingTheStage()
    {
        var partial = New() with { Stage = LifecycleStatus.PartialResults, Sequence = 1 };

        var ex = Assert.Throws<IllegalTransitionException>(() => ResultsProgress.Share(partial, Now));
        Assert.Equal("partial_results", ex.From);
        Assert.Equal("interpretation_shared", ex.To);

        var none = Assert.Throws<IllegalTransitionException>(() => ResultsProgress.Share(null, Now));
        Assert.Equal("no_results", none.From);
    }
}
