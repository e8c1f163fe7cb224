using Google.Protobuf.Reflection;

namespace LabMesh.Grpc.Tests.Reflection;

/// <summary>LabMesh's reflection protos must be the published contracts that grpcurl and friends speak.</summary>
public sealed class ReflectionProtoTests
{
    [Fact]
    public async Task ReflectionV1Proto_MatchesThePublishedDefinition()
    {
        var published = await PublishedProtos.ParseAsync("grpc/reflection/v1/reflection.proto");
        var ours = PublishedProtos.ToProto(global::Grpc.Reflection.V1.ReflectionReflection.Descriptor);

        Assert.Empty(PublishedProtos.Differences(published, ours));
    }

    [Fact]
    public async Task ReflectionV1AlphaProto_MatchesThePublishedDefinition()
    {
        var published = await PublishedProtos.ParseAsync("grpc/reflection/v1alpha/reflection.proto");
        var ours = PublishedProtos.ToProto(global::Grpc.Reflection.V1Alpha.ReflectionReflection.Descriptor);

        Assert.Empty(PublishedProtos.Differences(published, ours));
    }

    [Fact]
    public void ReflectionV1AndV1Alpha_AreTheSameMessagesUnderTwoPackages()
    {
        // The v1alpha service answers through the v1 implementation by a byte-level round trip, which is
        // only sound while both define the same messages with the same numbers and types.
        var v1 = PublishedProtos.ToProto(global::Grpc.Reflection.V1.ReflectionReflection.Descriptor);
        var v1Alpha = PublishedProtos.ToProto(global::Grpc.Reflection.V1Alpha.ReflectionReflection.Descriptor);
        Rename(v1Alpha, "grpc.reflection.v1alpha", "grpc.reflection.v1");

        var differences = PublishedProtos.Differences(v1, v1Alpha);

        Assert.Contains(differences, d => d.StartsWith("file name", StringComparison.Ordinal));
        Assert.All(differences, d => Assert.True(d.StartsWith("file ", StringComparison.Ordinal), d));
    }

    private static void Rename(FileDescriptorProto file, string from, string to)
    {
        foreach (var field in file.MessageType.SelectMany(m => m.Field).Where(f => f.HasTypeName))
        {
            field.TypeName = field.TypeName.Replace(from, to, StringComparison.Ordinal);
        }
        foreach (var method in file.Service.SelectMany(s => s.Method))
        {
            method.InputType = method.InputType.Replace(from, to, StringComparison.Ordinal);
            method.OutputType = method.OutputType.Replace(from, to, StringComparison.Ordinal);
        }
        file.Package = to;
    }
}
