using System.Collections.Concurrent;
using System.Data.Common;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using Google.Protobuf;
using LabMesh.Contracts.Common.V1;
using LabMesh.Messaging.Storage;
using LabMesh.Core.Diagnostics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace LabMesh.Messaging.Events;

/// <summary>How an <see cref="OutboxRelay"/> paces itself. Bound from <c>LabMesh:Outbox</c>.</summary>
public sealed class OutboxRelayOptions
{
    /// <summary>How often the outbox is looked at when nobody calls <see cref="OutboxRelay.Nudge"/>.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Rows taken per pass, oldest first.</summary>
    public int BatchSize { get; set; } = 100;

    /// <summary>The wait after the first failed pass; it doubles with every further failure.</summary>
    public TimeSpan InitialBackoff { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// The longest wait between two passes while the bus or the store keeps failing: events flow again at most this
    /// long after the bus is back. Short on purpose (a pass while Redis is down fails at once in this process, with no
    /// network traffic: the client fails fast while disconnected), so an outage does not keep events away for
    /// longer than it lasted.
    /// </summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>One publish that takes longer than this counts as a failure (the row is retried).</summary>
    public TimeSpan PublishTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long sent rows are kept (to investigate) before the relay deletes them.</summary>
    public TimeSpan SentRetention { get; set; } = TimeSpan.FromHours(24);

    /// <summary>How often the relay deletes sent rows older than <see cref="SentRetention"/>.</summary>
    public TimeSpan PurgeInterval { get; set; } = TimeSpan.FromMinutes(5);
}

/// <summary>
/// Moves one store's committed outbox rows to the <see cref="IEventBus"/>, oldest first, and marks
/// them sent. Delivery is at least once: a row is marked only after the bus accepted it, so a crash
/// in between publishes it again (the bus deduplicates by <see cref="Event.Id"/>). A failed publish
/// ends the pass there, so a later event never overtakes an earlier one, and the relay backs off.
/// On PostgreSQL, replicas relaying the same schema take turns (a transaction-scoped advisory lock,
/// and the rows claimed <c>FOR UPDATE SKIP LOCKED</c>), so each row is published by one of them.
/// </summary>
public sealed partial class OutboxRelay : BackgroundService
{
    private const int MaxErrorLength = 2000;
    private const int PurgeChunk = 5000;

    private readonly Database _database;
    private readonly IEventBus _bus;
    private readonly OutboxRelayOptions _options;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly IOutboxPublishedListener? _listener;
    private readonly WakeSignal _wake = new();
    private readonly SemaphoreSlim _pass = new(1, 1);
    private DateTimeOffset? _oldestUnsent;
    private int _publishFailing;

    public OutboxRelay(
        Database database, IEventBus bus, OutboxRelayOptions options, ILogger<OutboxRelay> logger, TimeProvider? timeProvider = null, IOutboxPublishedListener? listener = null)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentNullException.ThrowIfNull(bus);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(logger);
        if (options.BatchSize <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), "OutboxRelayOptions.BatchSize must be positive.");
        }

        _database = database;
        _bus = bus;
        _options = options;
        _logger = logger;
        _time = timeProvider ?? TimeProvider.System;
        _listener = listener;
    }

    /// <summary>The service whose outbox this relay drains.</summary>
    public string ServiceName => _database.ServiceName;

    /// <summary>
    /// Test seam: runs after a batch was published and before it is marked sent. Throwing from it
    /// stands for the process dying at that moment.
    /// </summary>
    internal Func<IReadOnlyList<Event>, CancellationToken, Task>? BeforeMarkSent { get; set; }

    /// <summary>Wakes the relay at once (call it after committing a transaction that added events).</summary>
    public void Nudge() => _wake.Set();

    /// <summary>
    /// The fast path of an event that must not wait behind the outbox's backlog (a critical result): call it
    /// after the transaction that added <paramref name="evt"/> to the outbox committed, and it is published at
    /// once, without waiting for the relay's turn and outside its order. Returns without waiting for the bus.
    /// The outbox row stays the durable record: the relay's pass publishes it again in its place (the bus
    /// appends nothing for an id it has, and subscribers drop an id they have seen) and marks it sent. A
    /// failure here (Redis down at commit) is only logged at Debug; the relay delivers the event when the
    /// bus is back, as it does every event.
    /// </summary>
    public void Expedite(Event evt)
    {
        ArgumentNullException.ThrowIfNull(evt);
        _ = ExpediteAsync(evt);
    }

    private async Task ExpediteAsync(Event evt)
    {
        using var span = LabMeshTelemetry.StartForEvent("publish", ActivityKind.Producer, evt);
        span?.SetTag("messaging.operation.type", "send");
        span?.SetTag("labmesh.outbox.expedited", true);
        try
        {
            using var timeout = new CancellationTokenSource(_options.PublishTimeout);
            await _bus.PublishAsync(evt, timeout.Token);
            LogExpedited(_logger, ServiceName, evt.Id, evt.Type);
        }
        catch (Exception ex)
        {
            span?.SetStatus(ActivityStatusCode.Error, ex.GetType().Name);
            LogExpediteFailed(_logger, ServiceName, evt.Id, evt.Type, ex);
        }
    }

    /// <summary>
    /// One pass: publishes up to <see cref="OutboxRelayOptions.BatchSize"/> unsent rows, oldest first,
    /// and marks them sent. Returns how many were published. A bus failure is not thrown: it ends the
    /// pass, and the failed row keeps its place with <c>attempts</c> and <c>last_error</c> updated.
    /// Store failures are thrown. Passes of one relay never overlap.
    /// </summary>
    public async Task<int> RelayOnceAsync(CancellationToken cancellationToken) =>
        (await RunPassAsync(cancellationToken)).Published;

    /// <summary>Deletes rows sent longer than <see cref="OutboxRelayOptions.SentRetention"/> ago; returns how many.</summary>
    public async Task<int> PurgeSentAsync(CancellationToken cancellationToken)
    {
        var cutoff = Outbox.FormatTime(_time.GetUtcNow() - _options.SentRetention);
        var total = 0;
        while (true)
        {
            // Chunked, so a large backlog never holds SQLite's write lock for long.
            var deleted = await _database.WriteAsync(async (connection, transaction) =>
            {
                await using var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText =
                    "DELETE FROM outbox WHERE sequence IN (SELECT sequence FROM outbox WHERE sent_at IS NOT NULL AND sent_at < @cutoff ORDER BY sequence LIMIT @limit);";
                Outbox.AddParameter(command, "cutoff", cutoff);
                Outbox.AddParameter(command, "limit", PurgeChunk);
                return await command.ExecuteNonQueryAsync(cancellationToken);
            }, cancellationToken);
            total += deleted;
            if (deleted < PurgeChunk)
            {
                break;
            }
        }

        if (total > 0)
        {
            LogPurged(_logger, ServiceName, total);
        }

        return total;
    }

    /// <summary>
    /// Publishes again, oldest first, the sent rows the store still keeps (<see cref="OutboxRelayOptions.SentRetention"/>),
    /// for a bus that does not survive a restart (<see cref="IEventBus.SurvivesRestart"/>): the in-process bus
    /// of the all-in-one host starts empty, and an event it took just before the process died may never
    /// have reached its consumers. They deduplicate by event id. Returns how many were published.
    /// </summary>
    public async Task<int> ReplaySentAsync(CancellationToken cancellationToken)
    {
        var replayed = 0;
        var after = 0L;
        while (true)
        {
            List<OutboxRow> rows;
            await using (var connection = await _database.OpenAsync(cancellationToken))
            await using (var command = connection.CreateCommand())
            {
                command.CommandText =
                    $"SELECT {RowColumns} FROM outbox WHERE sent_at IS NOT NULL AND sequence > @after ORDER BY sequence LIMIT @limit;";
                Outbox.AddParameter(command, "after", after);
                Outbox.AddParameter(command, "limit", _options.BatchSize);
                rows = await ReadRowsAsync(command, cancellationToken);
            }

            var outcome = await PublishAsync(rows, cancellationToken);
            replayed += outcome.Published.Count;
            if (outcome.Failure is not null || rows.Count < _options.BatchSize)
            {
                if (replayed > 0)
                {
                    LogReplayed(_logger, ServiceName, replayed);
                }

                return replayed;
            }

            after = rows[^1].Sequence;
        }
    }

    /// <summary>
    /// How long the oldest event of this outbox has waited to be published, as of the last pass (zero when the last
    /// pass left nothing behind): <c>labmesh.outbox.oldest_unsent.age</c>. A bus outage shows here first.
    /// </summary>
    public TimeSpan OldestUnsentAge => _oldestUnsent is { } oldest && _time.GetUtcNow() - oldest is { } age && age > TimeSpan.Zero ? age : TimeSpan.Zero;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var gauge = OutboxGauge.Register(this);
        LogStarted(_logger, ServiceName, _database.Provider);
        if (!_bus.SurvivesRestart)
        {
            try
            {
                // Before any new row: the replayed events are older.
                await ReplaySentAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogStoreFailed(_logger, ServiceName, 1, ex);
            }
        }

        var failures = 0;
        var nextPurge = _time.GetUtcNow();
        while (!stoppingToken.IsCancellationRequested)
        {
            var more = false;
            try
            {
                var pass = await RunPassAsync(stoppingToken);
                failures = pass.Failed ? failures + 1 : 0;
                more = !pass.Failed && pass.Claimed == _options.BatchSize;

                if (_time.GetUtcNow() >= nextPurge)
                {
                    nextPurge = _time.GetUtcNow() + _options.PurgeInterval;
                    await PurgeSentAsync(stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
            catch (Exception ex)
            {
                failures++;
                LogStoreFailed(_logger, ServiceName, failures, ex);
            }

            if (more)
            {
                continue;
            }

            try
            {
                if (failures == 0)
                {
                    await _wake.WaitAsync(_options.PollInterval, stoppingToken);
                }
                else
                {
                    // While failing, nudges do not shorten the wait: a service committing at full
                    // speed must not turn a bus outage into a retry storm.
                    await Task.Delay(Backoff(failures), _time, stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                break;
            }
        }
    }

    internal TimeSpan Backoff(int failures)
    {
        var initial = _options.InitialBackoff > TimeSpan.Zero ? _options.InitialBackoff : _options.PollInterval;
        var factor = Math.Pow(2, Math.Min(failures - 1, 20));
        var delay = TimeSpan.FromTicks((long)Math.Min(initial.Ticks * factor, _options.MaxBackoff.Ticks));
        return delay > TimeSpan.Zero ? delay : TimeSpan.FromMilliseconds(1);
    }

    private async Task<PassResult> RunPassAsync(CancellationToken cancellationToken)
    {
        await _pass.WaitAsync(cancellationToken);
        try
        {
            return _database.Provider == StorageProvider.Postgres
                ? await RunPostgresPassAsync(cancellationToken)
                : await RunSqlitePassAsync(cancellationToken);
        }
        finally
        {
            _pass.Release();
        }
    }

    private async Task<PassResult> RunSqlitePassAsync(CancellationToken cancellationToken)
    {
        // One relay per SQLite file (the embedded host), so reading without a claim is enough; marking
        // goes through WriteAsync like any other write.
        List<OutboxRow> rows;
        await using (var connection = await _database.OpenAsync(cancellationToken))
        {
            rows = await ReadUnsentAsync(connection, null, lockRows: false, cancellationToken);
        }

        if (rows.Count == 0)
        {
            _oldestUnsent = null;
            return default;
        }

        var outcome = await PublishAsync(rows, cancellationToken);
        Track(outcome);

        // Not cancellable: what the bus has accepted is recorded even while the host stops, or it
        // would all be published again after the restart.
        await _database.WriteAsync(async (connection, transaction) =>
        {
            await RecordOutcomeAsync(connection, transaction, outcome, CancellationToken.None);
            return 0;
        }, CancellationToken.None);
        return new PassResult(rows.Count, outcome.Published.Count, outcome.Failure is not null);
    }

    private async Task<PassResult> RunPostgresPassAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _database.OpenAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);

        // Replicas take turns per schema: SKIP LOCKED alone would let a second replica publish rows
        // 101-200 while the first is still publishing 1-100, and order would be lost. The lock is
        // released with the transaction, after the batch is marked.
        await using (var turn = connection.CreateCommand())
        {
            turn.Transaction = transaction;
            turn.CommandText = "SELECT pg_try_advisory_xact_lock(hashtext(@key));";
            Outbox.AddParameter(turn, "key", "labmesh:outbox:" + ServiceName);
            if (await turn.ExecuteScalarAsync(cancellationToken) is not true)
            {
                return default;
            }
        }

        var rows = await ReadUnsentAsync(connection, transaction, lockRows: true, cancellationToken);
        if (rows.Count == 0)
        {
            _oldestUnsent = null;
            await transaction.CommitAsync(cancellationToken);
            return default;
        }

        var outcome = await PublishAsync(rows, cancellationToken);
        Track(outcome);

        // Not cancellable: what the bus has accepted is recorded even while the host stops.
        await RecordOutcomeAsync(connection, transaction, outcome, CancellationToken.None);
        await transaction.CommitAsync(CancellationToken.None);
        return new PassResult(rows.Count, outcome.Published.Count, outcome.Failure is not null);
    }

    private async Task<List<OutboxRow>> ReadUnsentAsync(DbConnection connection, DbTransaction? transaction, bool lockRows, CancellationToken cancellationToken)
    {
        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText =
            $"SELECT {RowColumns} FROM outbox WHERE sent_at IS NULL ORDER BY sequence LIMIT @limit"
            + (lockRows ? " FOR UPDATE SKIP LOCKED;" : ";");
        Outbox.AddParameter(command, "limit", _options.BatchSize);
        return await ReadRowsAsync(command, cancellationToken);
    }

    private const string RowColumns = "sequence, event_id, event_type, payload";

    private static async Task<List<OutboxRow>> ReadRowsAsync(DbCommand command, CancellationToken cancellationToken)
    {
        var rows = new List<OutboxRow>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(new OutboxRow(reader.GetInt64(0), reader.GetString(1), reader.GetString(2), (byte[])reader.GetValue(3)));
        }

        return rows;
    }

    private async Task<PublishOutcome> PublishAsync(List<OutboxRow> rows, CancellationToken cancellationToken)
    {
        var published = new List<OutboxRow>(rows.Count);
        var events = new List<Event>(rows.Count);
        foreach (var row in rows)
        {
            Event evt;
            try
            {
                evt = Event.Parser.ParseFrom(row.Payload);
            }
            catch (InvalidProtocolBufferException ex)
            {
                // Cannot happen for rows written by Outbox.AddAsync; the row blocks the outbox
                // until someone repairs or deletes it, which is better than skipping an event.
                LogUnreadable(_logger, ServiceName, row.EventId, row.EventType, row.Sequence, ex);
                return await TellListenerAsync(new PublishOutcome(published, events, row, ex), cancellationToken);
            }

            // The span that caused the event (its traceparent) is this one's parent: one lab order, one trace.
            using var span = LabMeshTelemetry.StartForEvent("publish", ActivityKind.Producer, evt);
            span?.SetTag("messaging.operation.type", "send");
            span?.SetTag("messaging.system", _bus is RedisEventBus ? "redis" : "labmesh.inprocess");
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(_options.PublishTimeout);
                await _bus.PublishAsync(evt, timeout.Token);
                published.Add(row);
                events.Add(evt);
                LogPublished(_logger, ServiceName, row.EventId, row.EventType, row.Sequence);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // Stopping: keep what was published so far; this row is simply tried again later.
                break;
            }
            catch (Exception ex)
            {
                span?.SetStatus(ActivityStatusCode.Error, ex.GetType().Name);
                // Stop here: publishing the rows after this one would reorder events. One warning per outage: with
                // the short backoff a pass fails twice a second while the bus is down.
                if (Interlocked.Exchange(ref _publishFailing, 1) == 0)
                {
                    LogPublishFailed(_logger, ServiceName, row.EventId, row.EventType, row.Sequence, ex);
                }
                else
                {
                    LogPublishStillFailing(_logger, ServiceName, row.EventId, row.EventType, row.Sequence, ex);
                }

                return await TellListenerAsync(new PublishOutcome(published, events, row, ex), cancellationToken);
            }
        }

        if (published.Count > 0 && Interlocked.Exchange(ref _publishFailing, 0) == 1)
        {
            LogPublishRecovered(_logger, ServiceName, published.Count);
        }

        return await TellListenerAsync(new PublishOutcome(published, events, null, null), cancellationToken);
    }

    // Before the rows are marked: a listener that fails leaves the whole batch unsent, to be published
    // (deduplicated by the bus) and handed to it again.
    private async Task<PublishOutcome> TellListenerAsync(PublishOutcome outcome, CancellationToken cancellationToken)
    {
        if (_listener is null || outcome.Published.Count == 0)
        {
            return outcome;
        }

        try
        {
            await _listener.OnPublishedAsync(outcome.Events, cancellationToken);
            return outcome;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            var first = outcome.Published[0];
            LogListenerFailed(_logger, ServiceName, outcome.Published.Count, first.Sequence, ex);
            return new PublishOutcome([], [], first, ex);
        }
    }

    private async Task RecordOutcomeAsync(DbConnection connection, DbTransaction transaction, PublishOutcome outcome, CancellationToken cancellationToken)
    {
        if (outcome.Published.Count > 0)
        {
            if (BeforeMarkSent is { } hook)
            {
                await hook(outcome.Events, cancellationToken);
            }

            var now = Outbox.FormatTime(_time.GetUtcNow());
            await using var mark = connection.CreateCommand();
            mark.Transaction = transaction;
            Outbox.AddParameter(mark, "sent_at", now);
            const string Update = "UPDATE outbox SET sent_at = @sent_at, attempts = attempts + 1, last_error = NULL WHERE ";
            if (_database.Provider == StorageProvider.Postgres)
            {
                // By the exact sequences, never a range: PostgreSQL hands out sequences before commit,
                // so a row inside the range may have committed after the batch was read.
                mark.CommandText = Update + "sequence = ANY(@sequences);";
                Outbox.AddParameter(mark, "sequences", outcome.Published.Select(r => r.Sequence).ToArray());
                await mark.ExecuteNonQueryAsync(cancellationToken);
            }
            else
            {
                mark.CommandText = Update + "sequence = @sequence;";
                var sequence = mark.CreateParameter();
                sequence.ParameterName = "sequence";
                mark.Parameters.Add(sequence);
                foreach (var row in outcome.Published)
                {
                    sequence.Value = row.Sequence;
                    await mark.ExecuteNonQueryAsync(cancellationToken);
                }
            }
        }

        if (outcome.Failed is { } failed && outcome.Failure is { } failure)
        {
            var error = failure.GetType().Name + ": " + failure.Message;
            if (error.Length > MaxErrorLength)
            {
                error = error[..MaxErrorLength];
            }

            await using var record = connection.CreateCommand();
            record.Transaction = transaction;
            record.CommandText = "UPDATE outbox SET attempts = attempts + 1, last_error = @error WHERE sequence = @sequence;";
            Outbox.AddParameter(record, "error", error);
            Outbox.AddParameter(record, "sequence", failed.Sequence);
            await record.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    private sealed record OutboxRow(long Sequence, string EventId, string EventType, byte[] Payload);

    /// <summary>After a pass: the event the bus refused is now the oldest unsent one; when none was refused, nothing read is left.</summary>
    private void Track(PublishOutcome outcome)
    {
        if (outcome.Failed is null)
        {
            _oldestUnsent = null;
            return;
        }

        try
        {
            _oldestUnsent = Event.Parser.ParseFrom(outcome.Failed.Payload).CreatedAt?.ToDateTimeOffset() ?? _oldestUnsent ?? _time.GetUtcNow();
        }
        catch (InvalidProtocolBufferException)
        {
            _oldestUnsent ??= _time.GetUtcNow();
        }
    }

    private sealed record PublishOutcome(List<OutboxRow> Published, List<Event> Events, OutboxRow? Failed, Exception? Failure);

    private readonly record struct PassResult(int Claimed, int Published, bool Failed);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Outbox {Service}: publishing event {EventId} ({EventType}), sequence {Sequence}, failed again; it stays queued and is retried")]
    private static partial void LogPublishStillFailing(ILogger logger, string service, string eventId, string eventType, long sequence, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Outbox {Service}: publishing works again ({Count} events in this pass)")]
    private static partial void LogPublishRecovered(ILogger logger, string service, int count);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Outbox {Service}: published event {EventId} ({EventType}) at once, ahead of the relay")]
    private static partial void LogExpedited(ILogger logger, string service, string eventId, string eventType);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Outbox {Service}: publishing event {EventId} ({EventType}) at once failed; the relay publishes it")]
    private static partial void LogExpediteFailed(ILogger logger, string service, string eventId, string eventType, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Outbox relay for {Service} started ({Provider})")]
    private static partial void LogStarted(ILogger logger, string service, StorageProvider provider);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Outbox {Service}: published event {EventId} ({EventType}), sequence {Sequence}")]
    private static partial void LogPublished(ILogger logger, string service, string eventId, string eventType, long sequence);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Outbox {Service}: publishing event {EventId} ({EventType}), sequence {Sequence}, failed; it stays queued and is retried")]
    private static partial void LogPublishFailed(ILogger logger, string service, string eventId, string eventType, long sequence, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Outbox {Service}: {Count} events from sequence {Sequence} were published, but what follows their publishing failed; they stay queued and are retried")]
    private static partial void LogListenerFailed(ILogger logger, string service, int count, long sequence, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Outbox {Service}: event {EventId} ({EventType}), sequence {Sequence}, is unreadable; the outbox is blocked until the row is repaired or deleted")]
    private static partial void LogUnreadable(ILogger logger, string service, string eventId, string eventType, long sequence, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Outbox {Service}: relay pass failed ({Failures} in a row); backing off")]
    private static partial void LogStoreFailed(ILogger logger, string service, int failures, Exception exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Outbox {Service}: published {Count} retained sent events again to the in-process bus, which started empty")]
    private static partial void LogReplayed(ILogger logger, string service, int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Outbox {Service}: deleted {Count} sent rows past retention")]
    private static partial void LogPurged(ILogger logger, string service, int count);
}

/// <summary><c>labmesh.outbox.oldest_unsent.age</c>: one measurement per running relay, by service.</summary>
internal static class OutboxGauge
{
    private static readonly ConcurrentDictionary<OutboxRelay, byte> Relays = new();

    static OutboxGauge() => LabMeshTelemetry.Meter.CreateObservableGauge(
        "labmesh.outbox.oldest_unsent.age",
        () => Relays.Keys.Select(relay => new Measurement<double>(relay.OldestUnsentAge.TotalSeconds, new KeyValuePair<string, object?>("labmesh.service", relay.ServiceName))),
        "s", "How long the oldest event of an outbox has waited to be published (0: nothing waits).");

    public static IDisposable Register(OutboxRelay relay)
    {
        Relays[relay] = 0;
        return new Registration(relay);
    }

    private sealed class Registration(OutboxRelay relay) : IDisposable
    {
        public void Dispose() => Relays.TryRemove(relay, out _);
    }
}
