namespace LabMesh.Testing;

/// <summary>Which store a service under test uses.</summary>
public enum Backend
{
    Sqlite,
    Postgres,
}

/// <summary>Configuration for a service host under test, with the same keys a deployment uses.</summary>
public static class TestSettings
{
    /// <summary>
    /// A fresh data directory (SQLite) or a fresh PostgreSQL database on the shared test cluster,
    /// and Redis when <paramref name="redisConfiguration"/> is given (in-process bus and cache otherwise).
    /// </summary>
    public static async Task<Dictionary<string, string?>> CreateAsync(Backend backend, string? redisConfiguration = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["LabMesh:Storage:DataDirectory"] = Directory.CreateTempSubdirectory("labmesh-test-").FullName,
            ["LabMesh:Outbox:PollInterval"] = "00:00:00.050",
        };
        if (backend == Backend.Postgres)
        {
            var server = await PostgresServer.SharedAsync();
            settings["ConnectionStrings:Postgres"] = await server.CreateDatabaseAsync("t" + Guid.NewGuid().ToString("N")[..16]);
        }

        if (redisConfiguration is not null)
        {
            settings["ConnectionStrings:Redis"] = redisConfiguration;
        }

        return settings;
    }
}

/// <summary>Polling for what happens asynchronously (an outbox relay, a sync worker), with a bound.</summary>
public static class Eventually
{
    public static Task<T> MatchAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan? timeout = null, string? what = null) =>
        MatchAsync(probe, done, timeout ?? TimeSpan.FromSeconds(15), () => what ?? "a condition", TimeSpan.FromMilliseconds(20));

    /// <summary>
    /// Polls <paramref name="probe"/> every <paramref name="interval"/> until <paramref name="done"/> holds for its value;
    /// TimeoutException after <paramref name="timeout"/>, naming <paramref name="what"/> (made when it fails, so it can
    /// say what was seen) and the last value.
    /// </summary>
    public static async Task<T> MatchAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan timeout, Func<string> what, TimeSpan interval)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var value = await probe().WaitAsync(deadline - DateTime.UtcNow is var left && left > TimeSpan.Zero ? left : TimeSpan.Zero);
            if (done(value))
            {
                return value;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out waiting for {what()}; last value: {value}");
            }

            await Task.Delay(interval);
        }
    }

    /// <summary>Polls <paramref name="condition"/> until it holds; TimeoutException naming <paramref name="what"/> after <paramref name="timeout"/>.</summary>
    public static Task HoldsAsync(Func<Task<bool>> condition, TimeSpan timeout, string what) =>
        MatchAsync(condition, held => held, timeout, what);

    /// <summary>
    /// Polls <paramref name="condition"/> every <paramref name="interval"/> until it holds; TimeoutException after
    /// <paramref name="timeout"/> with <paramref name="what"/>, made when it fails (so it can say what was seen by then).
    /// </summary>
    public static Task HoldsAsync(Func<Task<bool>> condition, TimeSpan timeout, Func<string> what, TimeSpan interval) =>
        MatchAsync(condition, held => held, timeout, what, interval);

    public static Task HoldsAsync(Func<bool> condition, TimeSpan timeout, string what) =>
        MatchAsync(() => Task.FromResult(condition()), held => held, timeout, what);

    /// <summary>
    /// For what must not happen (nothing more arrives, nothing is sent twice): polls <paramref name="condition"/> for
    /// the whole of <paramref name="during"/> and fails at the first poll where it no longer holds, naming
    /// <paramref name="what"/>. An absence can only be watched for a while; what should have arrived is waited for
    /// with <see cref="HoldsAsync(Func{Task{bool}}, TimeSpan, string)"/> first.
    /// </summary>
    public static async Task StaysAsync(Func<Task<bool>> condition, TimeSpan during, string what)
    {
        var end = DateTime.UtcNow + during;
        do
        {
            if (!await condition())
            {
                throw new InvalidOperationException($"No longer true: {what}");
            }

            await Task.Delay(20);
        }
        while (DateTime.UtcNow < end);

        if (!await condition())
        {
            throw new InvalidOperationException($"No longer true: {what}");
        }
    }

    public static Task StaysAsync(Func<bool> condition, TimeSpan during, string what) =>
        StaysAsync(() => Task.FromResult(condition()), during, what);
}
