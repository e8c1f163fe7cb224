using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.Testing;
using V1 = Grpc.Reflection.V1;
using V1Alpha = Grpc.Reflection.V1Alpha;

namespace LabMesh.AllInOne.Tests;

/// <summary>
/// Server reflection through Grpc.Reflection's generated clients (v1 and v1alpha), with no token: what grpcurl
/// asks for <c>describe</c> (the file containing a symbol) and for decoding an error detail. buf has no
/// <c>describe</c>, so this is where describe is proved.
/// </summary>
public sealed class ReflectionClientTests(AllInOneHost mesh) : IClassFixture<AllInOneHost>, IDisposable
{
    private readonly GrpcChannel _channel = mesh.Host.CreateChannel();

    /// <summary>Every <c>google.rpc</c> detail type LabMesh sends, and the Status that carries them.</summary>
    public static TheoryData<string, string> ErrorDetailTypes()
    {
        var data = new TheoryData<string, string>();
        foreach (var version in new[] { "v1", "v1alpha" })
        {
            foreach (var type in new[] { "google.rpc.BadRequest", "google.rpc.PreconditionFailure", "google.rpc.ErrorInfo", "google.rpc.ResourceInfo", "google.rpc.RetryInfo", "google.rpc.Status" })
            {
                data.Add(version, type);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(ErrorDetailTypes))]
    public async Task FileContainingSymbol_ErrorDetailType_AnswersWithTheFileThatDeclaresIt(string version, string type)
    {
        var files = await FileContainingSymbolAsync(version, type);

        var declaring = files[0];
        Assert.Contains(declaring.MessageType, m => $"{declaring.Package}.{m.Name}" == type);
        // With its imports (google/protobuf/duration.proto for RetryInfo, any.proto for Status), so a client can build it.
        Assert.All(declaring.Dependency, dependency => Assert.Contains(files, f => f.Name == dependency));
        mesh.Host.Logs.AssertNoErrors();
    }

    [Theory]
    [InlineData("v1")]
    [InlineData("v1alpha")]
    public async Task Describe_ServiceMethodAndMessage_AnswerWithTheContractFile(string version)
    {
        var service = await FileContainingSymbolAsync(version, "labmesh.results.v1.ResultsInterpretationService");
        var method = await FileContainingSymbolAsync(version, "labmesh.results.v1.ResultsInterpretationService.InterpretMarkers");
        var message = await FileContainingSymbolAsync(version, "labmesh.results.v1.InterpretMarkersRequest");

        // grpcurl describe prints these: the service with its methods, a method's types, a message's fields.
        var contract = FileDescriptorProto.Parser.ParseFrom(Contracts.Results.V1.ResultsReflection.Descriptor.SerializedData);
        Assert.Equal(contract, service[0]);
        Assert.Equal(contract, method[0]);
        Assert.Equal(contract, message[0]);
        var described = Assert.Single(service[0].Service, s => s.Name == "ResultsInterpretationService");
        var interpret = Assert.Single(described.Method, m => m.Name == "InterpretMarkers");
        Assert.Equal(".labmesh.results.v1.InterpretMarkersRequest", interpret.InputType);
        Assert.Equal(".labmesh.results.v1.InterpretMarkersResponse", interpret.OutputType);
        var request = Assert.Single(message[0].MessageType, m => m.Name == "InterpretMarkersRequest");
        var results = Assert.Single(request.Field);
        Assert.Equal(("results", ".labmesh.results.v1.Marker"), (results.Name, results.TypeName));
        mesh.Host.Logs.AssertNoErrors();
    }

    public void Dispose() => _channel.Dispose();

    /// <summary>
    /// One <c>file_containing_symbol</c> request on <c>grpc.reflection.{version}.ServerReflection</c>: the file
    /// first, then its imports. Fails on an error response (NOT_FOUND for a symbol reflection does not serve),
    /// after reading the call to its end: a call disposed before it ends is reset, which the server logs as an error.
    /// </summary>
    private async Task<IReadOnlyList<FileDescriptorProto>> FileContainingSymbolAsync(string version, string symbol)
    {
        var deadline = DateTime.UtcNow + HostFixture.Timeout;
        var files = version == "v1"
            ? (await OnlyResponseAsync(new V1.ServerReflection.ServerReflectionClient(_channel).ServerReflectionInfo(deadline: deadline),
                new V1.ServerReflectionRequest { FileContainingSymbol = symbol }, r => r.FileDescriptorResponse?.FileDescriptorProto))
            : (await OnlyResponseAsync(new V1Alpha.ServerReflection.ServerReflectionClient(_channel).ServerReflectionInfo(deadline: deadline),
                new V1Alpha.ServerReflectionRequest { FileContainingSymbol = symbol }, r => r.FileDescriptorResponse?.FileDescriptorProto));
        Assert.True(files is not null, $"{symbol} ({version}): no file descriptor response");
        return [.. files.Select(FileDescriptorProto.Parser.ParseFrom)];
    }

    /// <summary>Writes one request, ends the request stream, and reads the one response and the end of the call.</summary>
    private static async Task<IReadOnlyList<ByteString>?> OnlyResponseAsync<TRequest, TResponse>(
        AsyncDuplexStreamingCall<TRequest, TResponse> call, TRequest request, Func<TResponse, IReadOnlyList<ByteString>?> files)
    {
        using (call)
        {
            await call.RequestStream.WriteAsync(request).WaitAsync(HostFixture.Timeout);
            await call.RequestStream.CompleteAsync().WaitAsync(HostFixture.Timeout);
            Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(HostFixture.Timeout));
            var response = call.ResponseStream.Current;
            Assert.False(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(HostFixture.Timeout));
            return files(response);
        }
    }
}
