using Microsoft.Extensions.Configuration;

namespace LabMesh.Notification.Tests.Service;

/// <summary>The tier table: team setting, then service setting, then default; window and chain looked up separately.</summary>
public sealed class CriticalTierPoliciesTests
{
    private static readonly CriticalTierPolicies Policies = Build(new Dictionary<string, string?>
    {
        ["LabMesh:Notification:AcknowledgementWindow"] = "00:20:00",
        ["LabMesh:Notification:CriticalTiers:critical_risk:EscalationChain:0"] = "attending",
        ["LabMesh:Notification:CriticalTiers:critical_risk:EscalationChain:1"] = "lab_director",
        ["LabMesh:Notification:CriticalTiers:significant_risk:AcknowledgementWindow"] = "02:00:00",
        ["LabMesh:Notification:Teams:team-a:CriticalTiers:critical_risk:AcknowledgementWindow"] = "00:05:00",
        ["LabMesh:Notification:Teams:team-b:CriticalTiers:significant_risk:EscalationChain:0"] = "nurse_line",
    });

    // (team, tier as the event says it, window, chain)
    public static TheoryData<string, string, TimeSpan, string[]> Table() => new()
    {
        { "team-a", "critical_risk", TimeSpan.FromMinutes(5), ["attending", "lab_director"] },
        { "team-a", "significant_risk", TimeSpan.FromHours(2), [] },
        { "team-b", "critical_risk", TimeSpan.FromMinutes(20), ["attending", "lab_director"] },
        { "team-b", "significant_risk", TimeSpan.FromHours(2), ["nurse_line"] },
        { "team-c", "significant_risk", TimeSpan.FromHours(2), [] },
        // An event from before tiers (no tier) or with an unknown one is followed up as critical-risk.
        { "team-c", "", TimeSpan.FromMinutes(20), ["attending", "lab_director"] },
        { "team-c", "whatever", TimeSpan.FromMinutes(20), ["attending", "lab_director"] },
    };

    [Theory]
    [MemberData(nameof(Table))]
    public void Resolve_TeamThenServiceThenDefault(string team, string tier, TimeSpan window, string[] chain)
    {
        var policy = Policies.Resolve(team, tier);

        Assert.Equal(window, policy.Window);
        Assert.Equal(chain, policy.Chain);
    }

    [Theory]
    [InlineData(1, "attending")]
    [InlineData(2, "lab_director")]
    [InlineData(7, "lab_director")]
    public void StepOf_FollowsTheChain_AndStaysOnItsLastStep(int escalation, string step) =>
        Assert.Equal(step, Policies.Resolve("team-c", "critical_risk").StepOf(escalation));

    [Fact]
    public void StepOf_WithoutAChain_IsTheTeam() =>
        Assert.Equal(CriticalTierPolicies.TeamStep, Policies.Resolve("team-a", "significant_risk").StepOf(1));

    [Theory]
    [InlineData("LabMesh:Notification:CriticalTiers:urgent:AcknowledgementWindow", "00:01:00", "CriticalTiers:urgent")]
    [InlineData("LabMesh:Notification:Teams:t:CriticalTiers:significant_risk:AcknowledgementWindow", "00:00:00", "AcknowledgementWindow must be positive")]
    [InlineData("LabMesh:Notification:CriticalTiers:critical_risk:EscalationChain:0", " ", "EscalationChain")]
    public void InvalidSettings_StopStartUp_NamingTheKey(string key, string value, string expected)
    {
        var error = Assert.Throws<InvalidOperationException>(() => Build(new Dictionary<string, string?> { [key] = value }));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    private static CriticalTierPolicies Build(Dictionary<string, string?> settings) =>
        new(new ConfigurationBuilder().AddInMemoryCollection(settings).Build()
            .GetSection(NotificationOptions.SectionName).Get<NotificationOptions>() ?? new NotificationOptions());
}
