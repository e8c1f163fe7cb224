namespace LabMesh.Notification;

/// <summary>
/// How one tier of critical result is followed up for one team: how long a person has to acknowledge
/// it (and between escalations), and whom each escalation reaches.
/// </summary>
/// <param name="Tier">"critical_risk" or "significant_risk".</param>
/// <param name="Window">The acknowledgement window, and the time between escalations.</param>
/// <param name="Chain">Escalation n reaches step n (the last step again after the end); empty: "team".</param>
public sealed record CriticalTierPolicy(string Tier, TimeSpan Window, IReadOnlyList<string> Chain)
{
    /// <summary>Who escalation <paramref name="escalation"/> (1 for the first) reaches.</summary>
    public string StepOf(int escalation) =>
        Chain.Count == 0 ? CriticalTierPolicies.TeamStep : Chain[Math.Clamp(escalation - 1, 0, Chain.Count - 1)];
}

/// <summary>
/// CLSI GP47's tiers as the Notification service follows them up, table-driven: for each team and tier, the
/// acknowledgement window and the escalation chain (<see cref="Resolve"/>). Built once from
/// <see cref="NotificationOptions"/>, checked at start-up.
/// </summary>
/// <remarks>
/// A setting is looked up in this order, the first that is set wins:
/// <c>Teams:{team}:CriticalTiers:{tier}</c>, then <c>CriticalTiers:{tier}</c>, then the default (critical-risk:
/// <see cref="NotificationOptions.AcknowledgementWindow"/>; significant-risk: <see cref="DefaultSignificantRiskWindow"/>;
/// no chain). Window and chain are looked up separately, so a team may set only its chain. A critical result
/// whose tier is unknown or empty (published before tiers existed) is followed up as critical-risk.
/// </remarks>
public sealed class CriticalTierPolicies
{
    public const string CriticalRisk = "critical_risk";
    public const string SignificantRisk = "significant_risk";

    /// <summary>Who an escalation reaches when no chain is configured: the team's escalation endpoints and subscribers.</summary>
    public const string TeamStep = "team";

    /// <summary>The significant-risk window when none is configured.</summary>
    public static readonly TimeSpan DefaultSignificantRiskWindow = TimeSpan.FromHours(4);

    public static IReadOnlyList<string> Tiers { get; } = [CriticalRisk, SignificantRisk];

    private readonly Dictionary<string, CriticalTierPolicy> _defaults = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Team, string Tier), CriticalTierPolicy> _teams = [];

    public CriticalTierPolicies(NotificationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var section = NotificationOptions.SectionName;
        foreach (var key in options.CriticalTiers.Keys)
        {
            Check(key, $"{section}:CriticalTiers:{key}");
        }

        foreach (var tier in Tiers)
        {
            var configured = options.CriticalTiers.GetValueOrDefault(tier);
            var window = tier == CriticalRisk ? options.AcknowledgementWindow : DefaultSignificantRiskWindow;
            _defaults[tier] = Build(tier, configured, new CriticalTierPolicy(tier, window, []), $"{section}:CriticalTiers:{tier}");
        }

        foreach (var (team, teamOptions) in options.Teams)
        {
            foreach (var (tier, configured) in teamOptions.CriticalTiers)
            {
                var path = $"{section}:Teams:{team}:CriticalTiers:{tier}";
                Check(tier, path);
                _teams[(team, tier)] = Build(tier, configured, _defaults[tier], path);
            }
        }
    }

    /// <summary>The policy of <paramref name="tier"/> for <paramref name="teamId"/> (critical-risk for an unknown tier).</summary>
    public CriticalTierPolicy Resolve(string teamId, string? tier)
    {
        var known = tier is SignificantRisk ? SignificantRisk : CriticalRisk;
        return _teams.TryGetValue((teamId, known), out var policy) ? policy : _defaults[known];
    }

    private static CriticalTierPolicy Build(string tier, CriticalTierOptions? configured, CriticalTierPolicy fallback, string path)
    {
        if (configured is null)
        {
            return fallback;
        }

        if (configured.AcknowledgementWindow is { } window && window <= TimeSpan.Zero)
        {
            throw new InvalidOperationException($"{path}:AcknowledgementWindow must be positive.");
        }

        var chain = configured.EscalationChain.Select(s => s.Trim()).ToList();
        if (chain.Any(s => s.Length is 0 or > 200))
        {
            throw new InvalidOperationException($"{path}:EscalationChain: each step must name someone (1 to 200 characters).");
        }

        return new CriticalTierPolicy(tier, configured.AcknowledgementWindow ?? fallback.Window, chain.Count > 0 ? chain : fallback.Chain);
    }

    private static void Check(string tier, string path)
    {
        if (!Tiers.Contains(tier, StringComparer.Ordinal))
        {
            throw new InvalidOperationException($"{path}: the tier must be '{CriticalRisk}' or '{SignificantRisk}'.");
        }
    }
}
