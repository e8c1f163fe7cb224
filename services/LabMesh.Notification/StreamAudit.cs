using System.Threading.Channels;

namespace LabMesh.Notification;

/// <summary>
/// Records in the critical results' audit trail that a Subscribe stream carried a critical event to a
/// subscriber. The stream only queues the line (it never waits on the store); this service writes
/// the queue in batches. Lines still queued when the process dies are lost; the webhook and
/// acknowledgement lines are written with their own transactions and are not.
/// </summary>
public sealed partial class StreamAudit(NotificationStore store, TimeProvider time, ILogger<StreamAudit> logger) : BackgroundService
{
    private const int BatchSize = 500;

    private readonly Channel<AuditRecord> _queue = Channel.CreateBounded<AuditRecord>(
        new BoundedChannelOptions(100_000) { SingleReader = true });

    /// <summary>Queues "notified over a stream" for <paramref name="criticalId"/>.</summary>
    public void StreamNotified(string criticalId, string subscriber, string eventType)
    {
        if (!_queue.Writer.TryWrite(new AuditRecord(criticalId, time.GetUtcNow(), AuditActions.Notified, "subscriber:" + subscriber, "stream", eventType + " sent on a Subscribe stream")))
        {
            LogDropped(logger, criticalId);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var batch = new List<AuditRecord>(BatchSize);
        try
        {
            while (await _queue.Reader.WaitToReadAsync(stoppingToken))
            {
                while (batch.Count < BatchSize && _queue.Reader.TryRead(out var entry))
                {
                    batch.Add(entry);
                }

                try
                {
                    await store.AddAuditAsync(batch, stoppingToken);
                    batch.Clear();
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    LogFailed(logger, batch.Count, ex);
                    await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping: write what is queued, without waiting on a cancelled token.
            while (_queue.Reader.TryRead(out var entry))
            {
                batch.Add(entry);
            }

            if (batch.Count > 0)
            {
                await store.AddAuditAsync(batch, CancellationToken.None);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Audit queue full: the stream notification of critical result {CriticalId} was not recorded")]
    private static partial void LogDropped(ILogger logger, string criticalId);

    [LoggerMessage(Level = LogLevel.Error, Message = "Writing {Count} stream audit lines failed; retrying")]
    private static partial void LogFailed(ILogger logger, int count, Exception exception);
}
