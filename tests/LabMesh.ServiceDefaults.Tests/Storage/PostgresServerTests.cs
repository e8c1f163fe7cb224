using LabMesh.Testing;
using Npgsql;

namespace LabMesh.ServiceDefaults.Tests.Storage;

/// <summary>The PostgreSQL fixture itself, on a cluster of its own (not the shared one).</summary>
public sealed class PostgresServerTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task PostgresServer_OwnCluster_GivesIsolatedDatabasesAndIsRemovedOnDispose()
    {
        var server = await PostgresServer.StartAsync().WaitAsync(TimeSpan.FromSeconds(120));
        string first;
        try
        {
            first = await server.CreateDatabaseAsync("same name").WaitAsync(Timeout);
            var second = await server.CreateDatabaseAsync("same name").WaitAsync(Timeout);
            Assert.NotEqual(first, second);
            Assert.Equal("127.0.0.1", new NpgsqlConnectionStringBuilder(first).Host);

            await using (var connection = new NpgsqlConnection(first))
            {
                await connection.OpenAsync().WaitAsync(Timeout);
                await using var create = new NpgsqlCommand("CREATE TABLE only_here (id INTEGER);", connection);
                await create.ExecuteNonQueryAsync().WaitAsync(Timeout);
            }

            await using (var connection = new NpgsqlConnection(second))
            {
                await connection.OpenAsync().WaitAsync(Timeout);
                await using var check = new NpgsqlCommand("SELECT to_regclass('only_here') IS NULL;", connection);
                Assert.Equal(true, await check.ExecuteScalarAsync().WaitAsync(Timeout));
            }
        }
        finally
        {
            await server.DisposeAsync().AsTask().WaitAsync(Timeout);
        }

        Assert.False(Directory.Exists(server.RootDirectory));
        await using var gone = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(first) { Pooling = false, Timeout = 5 }.ConnectionString);
        await Assert.ThrowsAnyAsync<Exception>(() => gone.OpenAsync().WaitAsync(Timeout));
    }
}
