namespace LabMesh.Messaging.Redis;

/// <summary>
/// Redis settings. Bound from configuration section <c>LabMesh:Redis</c>; <c>ConnectionStrings:Redis</c>,
/// when set, is the <see cref="Configuration"/>. Without a configuration string the process uses the
/// in-process status cache and event bus instead.
/// </summary>
public sealed class RedisOptions
{
    /// <summary>
    /// A StackExchange.Redis configuration string, e.g. <c>127.0.0.1:6379,password=...</c>.
    /// <c>abortConnect</c> is always forced to false: a process starts while Redis is down and connects
    /// by itself when it comes up. <c>syncTimeout</c> bounds every call (<c>asyncTimeout</c>, when set, the
    /// asynchronous ones); LabMesh makes it 1000 ms when the string does not name it (the client's own
    /// default is 5 s). TLS is <c>ssl=true</c> (with <c>sslHost=</c> when the certificate names another
    /// host), an ACL user <c>user=...,password=...</c>.
    /// </summary>
    public string? Configuration { get; set; }

    /// <summary>
    /// How long a status cache entry lives after its last write. Default five minutes. A status change
    /// reaches the cache through its outbox event even when the process that made it dies during a Redis
    /// outage (the services' status-cache refreshers); what is not carried by an event (a requisition's
    /// derived lifecycle) can stay stale for this long at most.
    /// </summary>
    public TimeSpan StatusTtl { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The event stream. Default <c>labmesh:events</c>; dedup markers are <c>{StreamKey}:seen:{event id}</c>.</summary>
    public string StreamKey { get; set; } = "labmesh:events";

    /// <summary>The pub/sub channel critical events are fanned out on. Default <c>labmesh:critical</c>.</summary>
    public string CriticalChannel { get; set; } = "labmesh:critical";

    /// <summary>The stream is trimmed to about this many entries (<c>XADD MAXLEN ~</c>). Default one million.</summary>
    public long StreamMaxLength { get; set; } = 1_000_000;

    /// <summary>
    /// How long an event id is remembered, so publishing it again appends nothing. Default one hour:
    /// it must outlast an outbox relay's repeat after a crash (seconds), not the stream's history,
    /// and each remembered id is a key (at 500 events/s a day would be 43 million keys).
    /// </summary>
    public TimeSpan DedupWindow { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How often a subscriber looks for new stream entries when the last look found none. Default 50 ms.</summary>
    public TimeSpan StreamPollInterval { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// Status writes kept in memory while Redis cannot take them (the latest version per key), to be
    /// written when it returns. Past this many keys further writes are dropped and logged. Default 100,000.
    /// </summary>
    public int MaxPendingStatusWrites { get; set; } = 100_000;
}
