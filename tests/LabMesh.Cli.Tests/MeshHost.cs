using Grpc.Net.Client;
using LabMesh.Testing;

namespace LabMesh.Cli.Tests;

/// <summary>
/// The all-in-one host as its own process on a free loopback port, with its embedded defaults (SQLite in a
/// fresh data directory, in-process cache and bus): what <c>labmesh</c> is pointed at by default. Started
/// once for the collection; a test fails on an error the host logged while it ran (<see cref="AllInOneProcess.Mark"/>).
/// </summary>
public sealed class MeshHost : AllInOneProcess
{
    public GrpcChannel CreateChannel() => GrpcChannel.ForAddress(Address);

    protected override IEnumerable<string> Arguments() =>
    [
        "--LabMesh:Storage:DataDirectory=" + Path.Combine(WorkingDirectory, "data"),
        // `labmesh load` runs one caller as fast as it can: past the per-caller rate limit (LabMesh:Limits) by design.
        "--LabMesh:Limits:PermitsPerSecond=0",
    ];

    // Trust TestCaller's key (the tests' own calls), which labmesh also signs with (LABMESH_DEV_KEY, see LabMeshCli).
    protected override IReadOnlyDictionary<string, string> Environment() =>
        TestCaller.HostSettings.ToDictionary(s => s.Key.Replace(":", "__", StringComparison.Ordinal), s => s.Value!);
}

[CollectionDefinition(Name)]
public sealed class MeshCollection : ICollectionFixture<MeshHost>
{
    public const string Name = "mesh";
}
