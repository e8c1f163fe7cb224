using Grpc.Health.V1;
using LabMesh.Grpc.Tests.Reflection;

namespace LabMesh.Grpc.Tests.Health;

/// <summary>LabMesh's health.proto must be the published contract: probes and load balancers depend on it.</summary>
public sealed class HealthProtoTests
{
    [Fact]
    public async Task HealthProto_MatchesThePublishedDefinition()
    {
        var published = await PublishedProtos.ParseAsync("grpc/health/v1/health.proto");
        var ours = PublishedProtos.ToProto(HealthReflection.Descriptor);

        Assert.Empty(PublishedProtos.Differences(published, ours));
        Assert.Equal("Grpc.Health.V1", ours.Options.CsharpNamespace);
    }
}
