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
    public static async Task<T> MatchAsync<T>(Func<Task<T>> probe, Func<T, bool> done, TimeSpan? timeout = null, string? what = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (true)
        {
            var value = await probe().WaitAsync(deadline - DateTime.UtcNow is var left && left > TimeSpan.Zero ? left : TimeSpan.Zero);
            if (done(value))
            {
                return value;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Timed out waiting for {what ?? "a condition"}; last value: {value}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Polls <paramref name="condition"/> until it holds; TimeoutException naming <paramref name="what"/> after <paramref name="timeout"/>.</summary>
    public static Task HoldsAsync(Func<Task<bool>> condition, TimeSpan timeout, string what) =>
        MatchAsync(condition, held => held, timeout, what);

    public static Task HoldsAsync(Func<bool> condition, TimeSpan timeout, string what) =>
        MatchAsync(() => Task.FromResult(condition()), held => held, timeout, what);
}
