using System.Globalization;
using System.Net;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using StackExchange.Redis;

namespace LabMesh.ServiceDefaults.Redis;

/// <summary>
/// The process's one connection to Redis and the only place that calls StackExchange.Redis (1.2.6,
/// which predates streams, so stream commands run inside Lua scripts). It speaks LabMesh's terms:
/// versioned status values, the event stream with dedup by event id, critical fan-out over pub/sub.
/// It connects in the background and reconnects by itself, so a process starts while Redis is down.
/// Every failure to reach Redis or get an answer in time is a <see cref="RedisUnavailableException"/>.
/// </summary>
public sealed partial class RedisConnection : IAsyncDisposable, IDisposable
{
    // Writes ARGV[2] ("{version}:{bytes}") with a TTL of ARGV[3] ms unless the stored version is the
    // same or newer. Versions are compared as decimal digit strings so no precision is lost to Lua's
    // doubles and no locale-dependent string comparison is involved.
    private const string SetIfNewerScript = """
        local current = redis.call('GET', KEYS[1])
        if current then
          local sep = string.find(current, ':', 1, true)
          if sep then
            local old = string.sub(current, 1, sep - 1)
            local new = ARGV[1]
            if #new < #old then return 0 end
            if #new == #old then
              for i = 1, #new do
                local a, b = string.byte(new, i), string.byte(old, i)
                if a < b then return 0 end
                if a > b then break end
                if i == #new then return 0 end
              end
            end
          end
        end
        redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
        return 1
        """;

    // The dedup marker is set after XADD succeeds, so a failed append never marks an event as seen
    // (a script is atomic, so no other client runs between the EXISTS and the SET). PUBLISH in the
    // same script makes the fan-out of a critical event atomic with its append.
    private const string AppendScript = """
        if redis.call('EXISTS', KEYS[1]) == 1 then return false end
        local position = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'id', ARGV[2], 'type', ARGV[3], 'data', ARGV[4])
        redis.call('SET', KEYS[1], position, 'EX', ARGV[5])
        if ARGV[6] ~= '' then redis.call('PUBLISH', ARGV[6], position .. '\n' .. ARGV[4]) end
        return position
        """;

    // A flat array [position1, data1, position2, data2, ...]; '' stands for a missing data field
    // because a nil would end a Lua array.
    private const string ReadScript = """
        local entries = redis.call('XRANGE', KEYS[1], ARGV[1], '+', 'COUNT', ARGV[2])
        local result = {}
        for _, entry in ipairs(entries) do
          local fields = entry[2]
          local data = ''
          for i = 1, #fields, 2 do
            if fields[i] == 'data' then data = fields[i + 1] end
          end
          result[#result + 1] = entry[1]
          result[#result + 1] = data
        end
        return result
        """;

    private const string LastPositionScript = """
        local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
        if #last == 0 then return '0-0' end
        return last[1][1]
        """;

    // The entry whose 'id' field is ARGV[1]: its dedup marker holds its position while it lasts,
    // otherwise up to ARGV[3] entries from ARGV[2] on are looked at.
    private const string FindScript = """
        local seen = redis.call('GET', KEYS[1])
        if seen then return seen end
        local entries = redis.call('XRANGE', KEYS[2], ARGV[2], '+', 'COUNT', ARGV[3])
        for _, entry in ipairs(entries) do
          local fields = entry[2]
          for i = 1, #fields, 2 do
            if fields[i] == 'id' and fields[i + 1] == ARGV[1] then return entry[1] end
          end
        end
        return false
        """;

    // 1 when the stream may have dropped an entry after position ARGV[1]. Entries leave only from the head
    // (XADD's MAXLEN trim; nothing here uses XDEL), so: the cursor's own entry still there means nothing
    // after it went; otherwise an entry after it went if the oldest kept one (or, in an emptied stream, the
    // last one added) comes after it. Conservative by one entry: when the cursor's entry was the last one
    // trimmed, nothing after it is missing, yet 1 is answered. Ids compare as (milliseconds, sequence),
    // both exact in a Lua number.
    private const string DroppedAfterScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        if #redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1]) > 0 then return 0 end
        local function after(a, b)
          local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
          local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
          ams, aseq, bms, bseq = tonumber(ams), tonumber(aseq), tonumber(bms), tonumber(bseq)
          return ams > bms or (ams == bms and aseq > bseq)
        end
        local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
        if #oldest > 0 then
          if after(oldest[1][1], ARGV[1]) then return 1 end
          return 0
        end
        local info = redis.call('XINFO', 'STREAM', KEYS[1])
        for i = 1, #info, 2 do
          if info[i] == 'last-generated-id' and after(info[i + 1], ARGV[1]) then return 1 end
        end
        return 0
        """;

    // A consumer group's next entries for consumer ARGV[1]: with ARGV[5] = 1, first its own pending ones
    // (taken and not acknowledged: a batch it failed to process, retried before anything newer); then
    // those another consumer took more than ARGV[2] ms ago without acknowledging them (it died or hangs),
    // else new ones. The group is created on first use at the stream's start, not its end: entries
    // appended before it existed (a first deployment, or relays flushing their outage backlog into a
    // Redis that came back empty) are read too; ingesting them is idempotent. Same flat shape as ReadScript.
    private const string ReadGroupScript = """
        local ok, err = pcall(redis.call, 'XGROUP', 'CREATE', KEYS[1], ARGV[3], '0', 'MKSTREAM')
        if not ok and not string.find(tostring(err), 'BUSYGROUP', 1, true) then return redis.error_reply(tostring(err)) end
        local entries = {}
        if ARGV[5] == '1' then
          local own = redis.call('XREADGROUP', 'GROUP', ARGV[3], ARGV[1], 'COUNT', ARGV[4], 'STREAMS', KEYS[1], '0')
          if own and own[1] then entries = own[1][2] end
        end
        if #entries == 0 then
          entries = redis.call('XAUTOCLAIM', KEYS[1], ARGV[3], ARGV[1], ARGV[2], '0-0', 'COUNT', ARGV[4])[2]
        end
        if #entries == 0 then
          local read = redis.call('XREADGROUP', 'GROUP', ARGV[3], ARGV[1], 'COUNT', ARGV[4], 'STREAMS', KEYS[1], '>')
          if read and read[1] then entries = read[1][2] end
        end
        local result = {}
        for _, entry in ipairs(entries) do
          local data = ''
          local fields = entry[2]
          if fields then
            for i = 1, #fields, 2 do
              if fields[i] == 'data' then data = fields[i + 1] end
            end
          end
          result[#result + 1] = entry[1]
          result[#result + 1] = data
        end
        return result
        """;

    private readonly RedisOptions _options;
    private readonly ConfigurationOptions _configuration;
    private readonly ILogger _logger;
    private readonly TimeSpan _timeout;
    private readonly string _endPoints;
    private readonly Task<ConnectionMultiplexer> _connecting;
    private int _disposed;

    /// <summary>Starts connecting in the background and returns at once.</summary>
    /// <exception cref="ArgumentException"><see cref="RedisOptions.Configuration"/> is missing or malformed.</exception>
    public RedisConnection(IOptions<RedisOptions> options, ILogger<RedisConnection> logger)
    {
        _options = options.Value;
        _logger = logger;
        if (string.IsNullOrWhiteSpace(_options.Configuration))
        {
            throw new ArgumentException("RedisOptions.Configuration is required.", nameof(options));
        }

        _configuration = ConfigurationOptions.Parse(_options.Configuration);
        _configuration.AbortOnConnectFail = false;
        _timeout = TimeSpan.FromMilliseconds(Math.Max(1, _configuration.SyncTimeout));
        _endPoints = string.Join(",", _configuration.EndPoints.Select(e => e.ToString()));
        _connecting = ConnectCoreAsync();
    }

    /// <summary>Raised (on the thread pool) whenever the connection to Redis is established or re-established.</summary>
    public event EventHandler? ConnectionRestored;

    // Live subscriptions, to subscribe again when the subscription link comes back (ResubscribeAsync).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<object, (string Channel, Action<RedisChannel, RedisValue> Handler)> _subscriptions = new();

    /// <summary>Whether Redis can be reached right now.</summary>
    public bool IsConnected => _connecting.IsCompletedSuccessfully && _connecting.Result.IsConnected;

    /// <summary>The options this connection was made with.</summary>
    public RedisOptions Options => _options;

    /// <summary>
    /// Creates a connection and waits for its first connection attempt to finish, successful or not
    /// (when Redis is down it keeps trying in the background).
    /// </summary>
    public static async Task<RedisConnection> ConnectAsync(IOptions<RedisOptions> options, ILogger<RedisConnection> logger, CancellationToken cancellationToken)
    {
        var connection = new RedisConnection(options, logger);
        try
        {
            await connection._connecting.WaitAsync(cancellationToken);
        }
        catch
        {
            connection.Dispose();
            throw;
        }

        return connection;
    }

    /// <summary>
    /// Writes <paramref name="value"/> at <paramref name="key"/> with version <paramref name="version"/>
    /// and a time to live of <paramref name="ttl"/>, unless the stored version is the same or newer.
    /// </summary>
    /// <returns>Whether the value was written.</returns>
    public async Task<bool> SetVersionedAsync(string key, long version, ReadOnlyMemory<byte> value, TimeSpan ttl, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(version);
        var versionText = version.ToString(CultureInfo.InvariantCulture);
        var stored = new byte[versionText.Length + 1 + value.Length];
        Encoding.ASCII.GetBytes(versionText, stored);
        stored[versionText.Length] = (byte)':';
        value.Span.CopyTo(stored.AsSpan(versionText.Length + 1));
        var ttlMilliseconds = Math.Max(1L, (long)Math.Ceiling(ttl.TotalMilliseconds));

        var result = await ExecuteAsync(
            "status write",
            db => db.ScriptEvaluateAsync(SetIfNewerScript, [key], [versionText, stored, ttlMilliseconds]),
            cancellationToken);
        return (long)result == 1;
    }

    /// <summary>The values written by <see cref="SetVersionedAsync"/> at <paramref name="keys"/>, in one round trip (MGET), in order; null for a miss.</summary>
    public async Task<IReadOnlyList<VersionedValue?>> GetVersionedManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken)
    {
        if (keys.Count == 0)
        {
            return [];
        }

        var redisKeys = new RedisKey[keys.Count];
        for (var i = 0; i < keys.Count; i++)
        {
            redisKeys[i] = keys[i];
        }

        var values = await ExecuteAsync("status read", db => db.StringGetAsync(redisKeys), cancellationToken);
        var result = new VersionedValue?[values.Length];
        for (var i = 0; i < values.Length; i++)
        {
            result[i] = values[i].IsNull ? null : DecodeVersioned((byte[])values[i]!);
        }

        return result;
    }

    /// <summary>
    /// Appends an event to the stream unless its id was appended within <see cref="RedisOptions.DedupWindow"/>,
    /// and when <paramref name="critical"/> also publishes it on <see cref="RedisOptions.CriticalChannel"/>,
    /// atomically with the append.
    /// </summary>
    /// <returns>The new stream position, or null when the event id was already appended.</returns>
    public async Task<string?> AppendEventAsync(string eventId, string eventType, ReadOnlyMemory<byte> data, bool critical, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(eventId);
        var seenKey = _options.StreamKey + ":seen:" + eventId;
        var dedupSeconds = Math.Max(1L, (long)Math.Ceiling(_options.DedupWindow.TotalSeconds));
        var bytes = data.ToArray();
        var result = await ExecuteAsync(
            "event append",
            db => db.ScriptEvaluateAsync(
                AppendScript,
                [seenKey, _options.StreamKey],
                [_options.StreamMaxLength, eventId, eventType, bytes, dedupSeconds, critical ? _options.CriticalChannel : string.Empty]),
            cancellationToken);
        return result.IsNull ? null : (string?)result;
    }

    /// <summary>
    /// Whether the stream dropped (its MAXLEN trim) an entry that came after <paramref name="position"/>;
    /// conservative by one entry (see the script).
    /// </summary>
    public async Task<bool> HasDroppedAfterAsync(string position, CancellationToken cancellationToken)
    {
        if (!IsStreamPosition(position))
        {
            throw new ArgumentException($"'{position}' is not a stream position.", nameof(position));
        }

        var result = await ExecuteAsync(
            "stream retention check",
            db => db.ScriptEvaluateAsync(DroppedAfterScript, [_options.StreamKey], [position]),
            cancellationToken);
        return (long)result == 1;
    }

    /// <summary>Up to <paramref name="count"/> stream entries after <paramref name="afterPosition"/> (null: from the oldest kept), oldest first.</summary>
    public async Task<IReadOnlyList<StoredEvent>> ReadEventsAsync(string? afterPosition, int count, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        if (afterPosition is not null && !IsStreamPosition(afterPosition))
        {
            throw new ArgumentException($"'{afterPosition}' is not a stream position.", nameof(afterPosition));
        }

        var start = afterPosition is null ? "-" : "(" + afterPosition;
        var result = await ExecuteAsync(
            "event read",
            db => db.ScriptEvaluateAsync(ReadScript, [_options.StreamKey], [start, count]),
            cancellationToken);
        return ToStoredEvents(result);
    }

    /// <summary>
    /// The stream position of the event with id <paramref name="eventId"/>: from its dedup marker while
    /// it lasts (<see cref="RedisOptions.DedupWindow"/>), otherwise by looking at up to
    /// <paramref name="scanLimit"/> entries from <paramref name="notBefore"/> on. Null when not found.
    /// </summary>
    public async Task<string?> FindEventPositionAsync(string eventId, DateTimeOffset notBefore, int scanLimit, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(eventId);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(scanLimit);
        var start = Math.Max(0, notBefore.ToUnixTimeMilliseconds()).ToString(CultureInfo.InvariantCulture);
        var result = await ExecuteAsync(
            "event lookup",
            db => db.ScriptEvaluateAsync(FindScript, [_options.StreamKey + ":seen:" + eventId, _options.StreamKey], [eventId, start, scanLimit]),
            cancellationToken);
        return result.IsNull ? null : (string?)result;
    }

    /// <summary>
    /// Up to <paramref name="count"/> entries of the stream for <paramref name="consumer"/> of consumer
    /// group <paramref name="group"/> (created at the stream's start when missing): with
    /// <paramref name="ownPendingFirst"/>, first the consumer's own unacknowledged ones (a batch it failed
    /// to process, so it is retried before anything newer); then entries another consumer took longer than
    /// <paramref name="claimIdle"/> ago and never acknowledged; then new ones. Each stays pending until
    /// <see cref="AcknowledgeEventsAsync"/>, so a consumer that dies leaves its entries to the others.
    /// </summary>
    public async Task<IReadOnlyList<StoredEvent>> ReadGroupEventsAsync(
        string group, string consumer, int count, TimeSpan claimIdle, bool ownPendingFirst, CancellationToken cancellationToken)
    {
        ArgumentException.ThrowIfNullOrEmpty(group);
        ArgumentException.ThrowIfNullOrEmpty(consumer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        var idle = Math.Max(1L, (long)claimIdle.TotalMilliseconds);
        var result = await ExecuteAsync(
            "event group read",
            db => db.ScriptEvaluateAsync(ReadGroupScript, [_options.StreamKey], [consumer, idle, group, count, ownPendingFirst ? 1 : 0]),
            cancellationToken);
        return ToStoredEvents(result);
    }

    /// <summary>Acknowledges <paramref name="positions"/> for consumer group <paramref name="group"/> (XACK).</summary>
    public async Task AcknowledgeEventsAsync(string group, IReadOnlyList<string> positions, CancellationToken cancellationToken)
    {
        if (positions.Count == 0)
        {
            return;
        }

        var ids = new RedisValue[positions.Count];
        for (var i = 0; i < ids.Length; i++)
        {
            ids[i] = positions[i];
        }

        await ExecuteAsync(
            "event group ack",
            db => db.ScriptEvaluateAsync("return redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))", [_options.StreamKey], [group, .. ids]),
            cancellationToken);
    }

    /// <summary>The position of the newest stream entry, <c>0-0</c> when the stream is empty.</summary>
    public Task<string> GetLastEventPositionAsync(CancellationToken cancellationToken) =>
        ExecuteAsync("stream tail read", async db => (string)(await db.ScriptEvaluateAsync(LastPositionScript, [_options.StreamKey]))!, cancellationToken);

    /// <summary>
    /// <see cref="GetLastEventPositionAsync"/> for callers that cannot await; blocks for at most
    /// <c>syncTimeout</c> and fails at once when not connected.
    /// </summary>
    public string GetLastEventPosition()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (!_connecting.IsCompletedSuccessfully)
        {
            throw new RedisUnavailableException("Still connecting to Redis.");
        }

        try
        {
            return (string)_connecting.Result.GetDatabase().ScriptEvaluate(LastPositionScript, [_options.StreamKey])!;
        }
        catch (Exception ex) when (IsRedisFailure(ex))
        {
            throw Unavailable("stream tail read", ex);
        }
    }

    /// <summary>
    /// Calls <paramref name="handler"/> with every message published on <paramref name="channel"/>, one
    /// at a time in arrival order, on the connection's reader: keep it short (hand the message off).
    /// Its exceptions are caught and logged. The subscription survives reconnects; dispose it to stop.
    /// </summary>
    public async Task<IDisposable> SubscribeAsync(string channel, Action<byte[]> handler, CancellationToken cancellationToken)
    {
        var multiplexer = await GetMultiplexerAsync(cancellationToken);
        var subscriber = multiplexer.GetSubscriber();
        Action<RedisChannel, RedisValue> onMessage = (_, value) =>
        {
            try
            {
                handler((byte[]?)value ?? []);
            }
            catch (Exception ex)
            {
                LogHandlerFailed(_logger, channel, ex);
            }
        };

        var key = new object();
        var unsubscribe = () =>
        {
            _subscriptions.TryRemove(key, out _);
            try
            {
                subscriber.Unsubscribe(channel, onMessage, CommandFlags.FireAndForget);
            }
            catch (Exception ex) when (IsRedisFailure(ex) || ex is ObjectDisposedException)
            {
                // Nothing to undo on a connection that is gone.
            }
        };

        try
        {
            // While disconnected StackExchange.Redis records the handler and subscribes when it connects.
            await subscriber.SubscribeAsync(channel, onMessage).WaitAsync(_timeout, cancellationToken);
            _subscriptions[key] = (channel, onMessage);
        }
        catch (Exception ex) when (IsRedisFailure(ex))
        {
            unsubscribe();
            throw Unavailable("subscribe " + channel, ex);
        }
        catch (OperationCanceledException)
        {
            unsubscribe();
            throw;
        }

        return new Subscription(unsubscribe);
    }

    /// <summary>
    /// Calls <paramref name="onCritical"/> whenever a critical event is appended anywhere
    /// (<see cref="AppendEventAsync"/> publishes on <see cref="RedisOptions.CriticalChannel"/> in the same
    /// script): a wake-up for readers of the stream, which then read the event there, in order.
    /// </summary>
    public Task<IDisposable> OnCriticalEventAsync(Action onCritical, CancellationToken cancellationToken) =>
        SubscribeAsync(_options.CriticalChannel, _ => onCritical(), cancellationToken);

    /// <summary>Whether <paramref name="value"/> looks like a stream position (<c>milliseconds-sequence</c> or <c>milliseconds</c>).</summary>
    public static bool IsStreamPosition(string value)
    {
        var dash = value.IndexOf('-', StringComparison.Ordinal);
        return dash < 0
            ? IsDigits(value.AsSpan())
            : IsDigits(value.AsSpan(0, dash)) && IsDigits(value.AsSpan(dash + 1));

        static bool IsDigits(ReadOnlySpan<char> text) => text.Length is > 0 and <= 20 && !text.ContainsAnyExceptInRange('0', '9');
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_connecting.IsCompleted)
        {
            Close(_connecting);
        }
        else
        {
            _connecting.ContinueWith(Close, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private void Close(Task<ConnectionMultiplexer> connecting)
    {
        if (!connecting.IsCompletedSuccessfully)
        {
            _ = connecting.Exception;
            return;
        }

        var multiplexer = connecting.Result;
        multiplexer.ConnectionFailed -= OnConnectionFailed;
        multiplexer.ConnectionRestored -= OnConnectionRestored;
        multiplexer.InternalError -= OnInternalError;
        try
        {
            // Not waiting for outstanding commands: with Redis hung that would block for syncTimeout.
            multiplexer.Close(allowCommandsToComplete: false);
        }
        catch (Exception ex) when (IsRedisFailure(ex))
        {
            // Closing a broken connection can report that it is broken.
        }

        multiplexer.Dispose();
    }

    private async Task<ConnectionMultiplexer> ConnectCoreAsync()
    {
        ConnectionMultiplexer multiplexer;
        try
        {
            multiplexer = await ConnectionMultiplexer.ConnectAsync(_configuration);
        }
        catch (Exception ex) when (IsRedisFailure(ex))
        {
            LogConnectFailed(_logger, ex);
            throw Unavailable("connect", ex);
        }

        multiplexer.ConnectionFailed += OnConnectionFailed;
        multiplexer.ConnectionRestored += OnConnectionRestored;
        multiplexer.InternalError += OnInternalError;

        // Checked after subscribing to the events so a connection made in between is not missed
        // (listeners may hear about it twice, which they tolerate).
        if (multiplexer.IsConnected)
        {
            LogConnected(_logger, _endPoints);
            RaiseConnectionRestored();
        }
        else
        {
            LogStartedDisconnected(_logger, _endPoints);
        }

        return multiplexer;
    }

    private async Task<T> ExecuteAsync<T>(string operation, Func<IDatabase, Task<T>> call, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        cancellationToken.ThrowIfCancellationRequested();
        var multiplexer = await GetMultiplexerAsync(cancellationToken);

        Task<T> task;
        try
        {
            task = call(multiplexer.GetDatabase());
        }
        catch (Exception ex) when (IsRedisFailure(ex))
        {
            throw Unavailable(operation, ex);
        }

        // 1.2.6 has no cancellation and does not time out asynchronous calls itself.
        try
        {
            return await task.WaitAsync(_timeout, cancellationToken);
        }
        catch (TimeoutException ex) when (!task.IsCompleted)
        {
            Observe(task);
            throw new RedisUnavailableException($"Redis did not answer the {operation} within {_timeout.TotalMilliseconds} ms.", ex);
        }
        catch (OperationCanceledException) when (!task.IsCompleted)
        {
            Observe(task);
            throw;
        }
        catch (Exception ex) when (IsRedisFailure(ex))
        {
            throw Unavailable(operation, ex);
        }
    }

    private async ValueTask<ConnectionMultiplexer> GetMultiplexerAsync(CancellationToken cancellationToken)
    {
        if (_connecting.IsCompletedSuccessfully)
        {
            return _connecting.Result;
        }

        try
        {
            return await _connecting.WaitAsync(_timeout, cancellationToken);
        }
        catch (TimeoutException ex)
        {
            throw new RedisUnavailableException("Still connecting to Redis.", ex);
        }
    }

    private static void Observe(Task task) =>
        task.ContinueWith(t => _ = t.Exception, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);

    private static bool IsRedisFailure(Exception ex) =>
        ex is RedisException or TimeoutException || IsClientFaultWhileDisconnected(ex);

    // 1.2.6 can throw NullReferenceException from its own code while it describes a connection that
    // is not there (ServerEndPoint.LastException reads the subscription bridge's exception twice, and a
    // reconnect clears it in between; seen when a call met a multiplexer still connecting). Only a fault
    // raised inside the client library counts; one in our code stays a bug.
    private static bool IsClientFaultWhileDisconnected(Exception ex) =>
        ex is NullReferenceException && ex.TargetSite?.DeclaringType?.Assembly == typeof(ConnectionMultiplexer).Assembly;

    private static RedisUnavailableException Unavailable(string operation, Exception ex) =>
        new($"Redis could not serve the {operation}: {ex.Message}", ex);

    // ReadScript's and ReadGroupScript's flat [position1, data1, position2, data2, ...].
    private static StoredEvent[] ToStoredEvents(RedisResult result)
    {
        var flat = (RedisResult[])result!;
        var events = new StoredEvent[flat.Length / 2];
        for (var i = 0; i < events.Length; i++)
        {
            events[i] = new StoredEvent((string)flat[2 * i]!, (byte[])flat[(2 * i) + 1]! ?? []);
        }

        return events;
    }

    private static VersionedValue? DecodeVersioned(byte[] stored)
    {
        var separator = Array.IndexOf(stored, (byte)':', 0, Math.Min(stored.Length, 21));
        if (separator <= 0 || !long.TryParse(stored.AsSpan(0, separator), NumberStyles.None, CultureInfo.InvariantCulture, out var version))
        {
            return null;
        }

        return new VersionedValue(version, stored[(separator + 1)..]);
    }

    private void OnConnectionFailed(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType == ConnectionType.Interactive)
        {
            LogConnectionLost(_logger, e.EndPoint, e.FailureType, e.Exception);
        }
    }

    private void OnConnectionRestored(object? sender, ConnectionFailedEventArgs e)
    {
        if (e.ConnectionType == ConnectionType.Interactive)
        {
            LogConnectionRestored(_logger, e.EndPoint);
            RaiseConnectionRestored();
        }
        else if (e.ConnectionType == ConnectionType.Subscription && sender is ConnectionMultiplexer multiplexer)
        {
            _ = Task.Run(() => ResubscribeAsync(multiplexer));
        }
    }

    /// <summary>
    /// Subscribes every live subscription again on a subscription link that came back. StackExchange.Redis
    /// 1.2.6 is meant to do it by itself, but after a Redis restart it sometimes does not (seen about once in
    /// eight restarts), and the channel then stays silent: a message lost between the two commands here is
    /// only a wake-up, which the stream readers' own polling makes up for.
    /// </summary>
    private async Task ResubscribeAsync(ConnectionMultiplexer multiplexer)
    {
        var subscriber = multiplexer.GetSubscriber();
        foreach (var (channel, handler) in _subscriptions.Values)
        {
            try
            {
                await subscriber.UnsubscribeAsync(channel, handler).WaitAsync(_timeout);
                await subscriber.SubscribeAsync(channel, handler).WaitAsync(_timeout);
            }
            catch (Exception ex) when (IsRedisFailure(ex) || ex is TimeoutException or ObjectDisposedException)
            {
                LogResubscribeFailed(_logger, channel, ex);
            }
        }
    }

    private void OnInternalError(object? sender, InternalErrorEventArgs e) =>
        LogInternalError(_logger, e.Origin ?? "?", e.Exception);

    private void RaiseConnectionRestored()
    {
        // Off the client's reader thread: a listener that blocks must not stall every Redis reply.
        _ = Task.Run(() =>
        {
            if (ConnectionRestored is not { } handlers)
            {
                return;
            }

            foreach (var handler in handlers.GetInvocationList().Cast<EventHandler>())
            {
                try
                {
                    handler(this, EventArgs.Empty);
                }
                catch (Exception ex)
                {
                    LogRestoredListenerFailed(_logger, ex);
                }
            }
        });
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Redis connected to {EndPoints}")]
    private static partial void LogConnected(ILogger logger, string endPoints);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis at {EndPoints} is not reachable yet; connecting in the background")]
    private static partial void LogStartedDisconnected(ILogger logger, string endPoints);

    [LoggerMessage(Level = LogLevel.Error, Message = "Redis connection could not be created")]
    private static partial void LogConnectFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis connection to {EndPoint} lost ({FailureType}); reconnecting in the background")]
    private static partial void LogConnectionLost(ILogger logger, EndPoint? endPoint, ConnectionFailureType failureType, Exception? exception);

    [LoggerMessage(Level = LogLevel.Information, Message = "Redis connection to {EndPoint} restored")]
    private static partial void LogConnectionRestored(ILogger logger, EndPoint? endPoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis: subscribing to {Channel} again after a reconnect failed; its messages wait for the next reconnect")]
    private static partial void LogResubscribeFailed(ILogger logger, string channel, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Redis client internal error in {Origin}")]
    private static partial void LogInternalError(ILogger logger, string origin, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "Redis subscription handler for {Channel} failed")]
    private static partial void LogHandlerFailed(ILogger logger, string channel, Exception exception);


    [LoggerMessage(Level = LogLevel.Error, Message = "A Redis connection-restored listener failed")]
    private static partial void LogRestoredListenerFailed(ILogger logger, Exception exception);

    private sealed class Subscription(Action unsubscribe) : IDisposable
    {
        private Action? _unsubscribe = unsubscribe;

        public void Dispose() => Interlocked.Exchange(ref _unsubscribe, null)?.Invoke();
    }
}

/// <summary>A value written with a version by <see cref="RedisConnection.SetVersionedAsync"/>.</summary>
public readonly record struct VersionedValue(long Version, byte[] Value);

/// <summary>One entry of the event stream: its position and the serialized event.</summary>
public sealed record StoredEvent(string Position, byte[] Data);

/// <summary>Redis could not serve a call: not connected, no answer in time, or an error reply.</summary>
public sealed class RedisUnavailableException : Exception
{
    public RedisUnavailableException()
    {
    }

    public RedisUnavailableException(string message)
        : base(message)
    {
    }

    public RedisUnavailableException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
