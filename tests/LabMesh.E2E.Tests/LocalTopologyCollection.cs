using LabMesh.Testing;

namespace LabMesh.E2E.Tests;

/// <summary>deploy/local's topology (LabMesh.Testing's <see cref="LocalTopologyFixture"/>), up once for every class of this project.</summary>
[CollectionDefinition(Name)]
public sealed class LocalTopologyCollection : ICollectionFixture<LocalTopologyFixture>
{
    public const string Name = "deploy/local";
}
