using System.Diagnostics;
using LabMesh.Messaging.Events;
using LabMesh.Core.Diagnostics;
using Microsoft.Extensions.Options;

namespace LabMesh.Notification;

/// <summary>
/// Escalates critical results nobody acknowledged within their tier's window (<see cref="CriticalTierPolicies"/>:
/// per team and CLSI GP47 tier), and again every window after that until someone does, each time to the next
/// step of the tier's escalation chain: each escalation is a
/// <c>critical_result.escalated</c> event (to the team's escalation endpoints and subscribers) and an
/// audit line, committed together. Replicas may all look: the store escalates each result once per window.
/// </summary>
public sealed partial class EscalationWorker(
    NotificationStore store,
    [FromKeyedServices(NotificationStore.ServiceName)] OutboxRelay relay,
    IOptions<NotificationOptions> options,
    ILogger<EscalationWorker> logger) : BackgroundService
{
    private const int BatchSize = 100;

    /// <summary>One pass: escalates what is overdue now; returns how many.</summary>
    public async Task<int> EscalateOnceAsync(CancellationToken cancellationToken)
    {
        // A span for a pass that escalated something; a pass that found nothing overdue (most of them) is dropped.
        using var span = LabMeshTelemetry.Source.StartActivity("escalate overdue critical results");
        var total = 0;
        try
        {
            return total = await EscalateAllAsync(cancellationToken);
        }
        finally
        {
            if (span is not null)
            {
                span.SetTag("labmesh.critical_results.escalated", total);
                if (total == 0)
                {
                    span.IsAllDataRequested = false;
                    span.ActivityTraceFlags &= ~ActivityTraceFlags.Recorded;
                }
            }
        }
    }

    private async Task<int> EscalateAllAsync(CancellationToken cancellationToken)
    {
        var total = 0;
        while (true)
        {
            var escalated = await store.EscalateOverdueAsync(BatchSize, cancellationToken);
            foreach (var critical in escalated)
            {
                LogEscalated(logger, critical.Id, critical.TeamId, critical.Tier, critical.Escalations, critical.EscalatedTo);
                LabMeshMetrics.CriticalEscalated.Add(1);
            }

            total += escalated.Count;
            if (escalated.Count > 0)
            {
                relay.Nudge();
            }

            if (escalated.Count < BatchSize)
            {
                return total;
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.EscalationCheckInterval);
        try
        {
            do
            {
                try
                {
                    await EscalateOnceAsync(stoppingToken);
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    LogFailed(logger, ex);
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Critical result {CriticalId} of team {TeamId} ({Tier}) is unacknowledged: escalation {Escalation} to {EscalatedTo}")]
    private static partial void LogEscalated(ILogger logger, string criticalId, string teamId, string tier, int escalation, string escalatedTo);

    [LoggerMessage(Level = LogLevel.Error, Message = "Escalating overdue critical results failed; trying again next interval")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
