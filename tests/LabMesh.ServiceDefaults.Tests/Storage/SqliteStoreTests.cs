using LabMesh.Messaging.Storage;
using Microsoft.Data.Sqlite;

namespace LabMesh.ServiceDefaults.Tests.Storage;

/// <summary>The store contract on a real SQLite file in a temporary directory.</summary>
public sealed class SqliteStoreTests : StoreContractTests
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "labmesh-sqlite-" + Guid.NewGuid().ToString("N")[..12]);

    protected override Task<StorageOptions> CreateOptionsAsync() =>
        Task.FromResult(new StorageOptions { DataDirectory = _directory });

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        SqliteConnection.ClearAllPools();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    [Fact]
    public async Task Sqlite_File_IsInWalMode()
    {
        await OutboxStoreAsync();
        var file = Path.Combine(_directory, ServiceName + ".db");
        Assert.True(File.Exists(file));

        // A plain connection, without the store's pragmas: WAL is a property of the file itself.
        await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = file, Pooling = false }.ConnectionString);
        await connection.OpenAsync().WaitAsync(Timeout);
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode;";
        Assert.Equal("wal", (string?)await command.ExecuteScalarAsync().WaitAsync(Timeout));
    }

    [Fact]
    public async Task Sqlite_SettingsHold_OnEveryOpen_OfAPooledConnection()
    {
        // The PRAGMAs run once per SQLite connection the pool makes, not on every open: a connection handed out
        // again, and one made new after the pool was cleared, still has them.
        var store = await OutboxStoreAsync();
        for (var round = 0; round < 2; round++)
        {
            for (var open = 0; open < 3; open++)
            {
                await using var connection = await store.OpenAsync(CancellationToken.None).WaitAsync(Timeout);
                Assert.Equal((1L, 1L, 30000L), (await ScalarAsync(connection, "PRAGMA foreign_keys;"),
                    await ScalarAsync(connection, "PRAGMA synchronous;"), await ScalarAsync(connection, "PRAGMA busy_timeout;")));
            }

            SqliteConnection.ClearAllPools();
        }
    }

    private static async Task<long> ScalarAsync(System.Data.Common.DbConnection connection, string sql)
    {
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync().WaitAsync(Timeout), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Sqlite_DirectoryAndFiles_AreOwnerOnly()
    {
        // The stores hold patient names and webhook secrets (issue 17, finding 5: they were 0644 in a 0755 directory).
        await OutboxStoreAsync();
        var file = Path.Combine(_directory, ServiceName + ".db");
        var files = Directory.GetFiles(_directory, ServiceName + ".db*");

        Assert.Contains(file + "-wal", files);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_directory));
        Assert.All(files, f => Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(f)));
    }
}
