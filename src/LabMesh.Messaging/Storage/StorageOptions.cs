namespace LabMesh.Messaging.Storage;

/// <summary>Where a service keeps its data. Bound from configuration section <c>LabMesh:Storage</c>.</summary>
public sealed class StorageOptions
{
    /// <summary>Directory of the SQLite files (<c>{DataDirectory}/{service}.db</c>). Default <c>data</c>.</summary>
    public string DataDirectory { get; set; } = "data";

    /// <summary>When set, PostgreSQL is used instead of SQLite, one schema per service.</summary>
    public string? PostgresConnectionString { get; set; }
}

public enum StorageProvider
{
    Sqlite,
    Postgres,
}

/// <summary>One versioned schema step; <paramref name="Postgres"/> defaults to the SQLite text.</summary>
public sealed record Migration(int Version, string Name, string Sqlite, string? Postgres = null);
