using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using LabMesh.Contracts.Common.V1;
using LabMesh.Messaging.Storage;

namespace LabMesh.Messaging.Events;

/// <summary>
/// The transactional outbox: a service writes its state change and the event it causes in one
/// local transaction (<see cref="AddAsync"/>), and an <see cref="OutboxRelay"/> moves the committed
/// rows to the <see cref="IEventBus"/> afterwards. So an event is published if and only if its
/// change committed, and a bus outage delays events but never loses them.
/// </summary>
public static class Outbox
{
    /// <summary>
    /// The step that creates the <c>outbox</c> table; every service puts it in its own migration list
    /// under a version of its choosing.
    /// </summary>
    public static Migration Migration(int version) => new(version, "outbox", SqliteSchema, PostgresSchema);

    /// <summary>
    /// Inserts <paramref name="evt"/> in <paramref name="transaction"/>, so it commits with the caller's
    /// state change or not at all. Fills <see cref="Event.Id"/> (a version 7 GUID, time-ordered),
    /// <see cref="Event.CreatedAt"/> and the W3C trace context of <see cref="Activity.Current"/> when
    /// they are empty. Call <see cref="OutboxRelay.Nudge"/> after the commit to publish at once.
    /// </summary>
    public static async Task AddAsync(DbTransaction transaction, Event evt, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(transaction);
        ArgumentNullException.ThrowIfNull(evt);
        var connection = transaction.Connection
            ?? throw new InvalidOperationException("The transaction has completed; add the event inside an open transaction.");
        if (string.IsNullOrEmpty(evt.Type))
        {
            throw new ArgumentException("An event needs a type.", nameof(evt));
        }

        if (string.IsNullOrEmpty(evt.Id))
        {
            evt.Id = Guid.CreateVersion7().ToString();
        }

        evt.CreatedAt ??= Timestamp.FromDateTimeOffset(DateTimeOffset.UtcNow);

        var activity = Activity.Current;
        if (activity is not null && string.IsNullOrEmpty(evt.Traceparent) && activity.IdFormat == ActivityIdFormat.W3C && activity.Id is { } id)
        {
            evt.Traceparent = id;
            if (string.IsNullOrEmpty(evt.Tracestate) && activity.TraceStateString is { } state)
            {
                evt.Tracestate = state;
            }
        }

        await using var command = connection.CreateCommand();
        command.Transaction = transaction;
        command.CommandText =
            "INSERT INTO outbox (event_id, event_type, payload, created_at, attempts) VALUES (@event_id, @event_type, @payload, @created_at, 0);";
        AddParameter(command, "event_id", evt.Id);
        AddParameter(command, "event_type", evt.Type);
        AddParameter(command, "payload", evt.ToByteArray());
        AddParameter(command, "created_at", FormatTime(evt.CreatedAt.ToDateTimeOffset()));
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>
    /// ISO-8601 UTC with a fixed width ("2025-01-02T03:04:05.0000000Z"), so the text columns order
    /// and compare as the instants they hold.
    /// </summary>
    internal static string FormatTime(DateTimeOffset time) =>
        time.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff'Z'", CultureInfo.InvariantCulture);

    internal static void AddParameter(DbCommand command, string name, object? value)
    {
        var parameter = command.CreateParameter();
        parameter.ParameterName = name;
        parameter.Value = value ?? DBNull.Value;
        command.Parameters.Add(parameter);
    }

    // The partial indexes keep the relay's scan of unsent rows and the purge of old sent rows cheap
    // however many sent rows the retention keeps.
    private const string SqliteSchema = """
        CREATE TABLE outbox (
            sequence INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL UNIQUE,
            event_type TEXT NOT NULL,
            payload BLOB NOT NULL,
            created_at TEXT NOT NULL,
            sent_at TEXT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NULL
        );
        CREATE INDEX ix_outbox_unsent ON outbox (sequence) WHERE sent_at IS NULL;
        CREATE INDEX ix_outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;
        """;

    private const string PostgresSchema = """
        CREATE TABLE outbox (
            sequence BIGSERIAL PRIMARY KEY,
            event_id TEXT NOT NULL UNIQUE,
            event_type TEXT NOT NULL,
            payload BYTEA NOT NULL,
            created_at TEXT NOT NULL,
            sent_at TEXT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            last_error TEXT NULL
        );
        CREATE INDEX ix_outbox_unsent ON outbox (sequence) WHERE sent_at IS NULL;
        CREATE INDEX ix_outbox_sent_at ON outbox (sent_at) WHERE sent_at IS NOT NULL;
        """;
}
