using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Reflection.V1;
using V1AlphaReflection = Grpc.Reflection.V1Alpha.ServerReflection;

namespace LabMesh.Grpc.Tests.Reflection;

/// <summary>
/// One ServerReflectionInfo stream, v1 or v1alpha, spoken through the generated clients; v1alpha messages
/// are converted to their (wire-identical) v1 forms so that tests assert on one set of types.
/// </summary>
internal sealed class ReflectionSession : IAsyncDisposable
{
    public const string V1 = "v1";
    public const string V1Alpha = "v1alpha";
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private readonly Func<ServerReflectionRequest, Task> _write;
    private readonly Func<Task<ServerReflectionResponse?>> _read;
    private readonly Func<Task> _complete;
    private readonly IDisposable _call;
    private bool _completed;

    private ReflectionSession(Func<ServerReflectionRequest, Task> write, Func<Task<ServerReflectionResponse?>> read, Func<Task> complete, IDisposable call)
    {
        _write = write;
        _read = read;
        _complete = complete;
        _call = call;
    }

    public static ReflectionSession Open(ChannelBase channel, string api)
    {
        if (api == V1)
        {
            var call = new ServerReflection.ServerReflectionClient(channel).ServerReflectionInfo();
            return new ReflectionSession(
                call.RequestStream.WriteAsync,
                async () => await call.ResponseStream.MoveNext(CancellationToken.None) ? call.ResponseStream.Current : null,
                call.RequestStream.CompleteAsync,
                call);
        }
        var alpha = new V1AlphaReflection.ServerReflectionClient(channel).ServerReflectionInfo();
        return new ReflectionSession(
            request => alpha.RequestStream.WriteAsync(global::Grpc.Reflection.V1Alpha.ServerReflectionRequest.Parser.ParseFrom(request.ToByteString())),
            async () => await alpha.ResponseStream.MoveNext(CancellationToken.None)
                ? ServerReflectionResponse.Parser.ParseFrom(alpha.ResponseStream.Current.ToByteString())
                : null,
            alpha.RequestStream.CompleteAsync,
            alpha);
    }

    public async Task<ServerReflectionResponse> AskAsync(ServerReflectionRequest request)
    {
        await _write(request).WaitAsync(Timeout);
        var response = await _read().WaitAsync(Timeout);
        Assert.True(response is not null, "The reflection stream ended instead of answering.");
        return response;
    }

    /// <summary>Half-closes and expects the server to end the stream cleanly.</summary>
    public async Task CompleteAsync()
    {
        _completed = true;
        await _complete().WaitAsync(Timeout);
        Assert.Null(await _read().WaitAsync(Timeout));
    }

    public async ValueTask DisposeAsync()
    {
        if (!_completed)
        {
            await CompleteAsync();
        }
        _call.Dispose();
    }

    /// <summary>The file names in a file_descriptor_response, in the order sent.</summary>
    public static List<string> FileNames(ServerReflectionResponse response)
    {
        Assert.True(response.MessageResponseCase == ServerReflectionResponse.MessageResponseOneofCase.FileDescriptorResponse, $"Expected files, got {response}");
        return [.. response.FileDescriptorResponse.FileDescriptorProto.Select(bytes => FileDescriptorProto.Parser.ParseFrom(bytes).Name)];
    }

    /// <summary>Builds descriptors from a response alone: proves it carried every file needed.</summary>
    public static IReadOnlyList<FileDescriptor> BuildFiles(ServerReflectionResponse response)
    {
        var files = response.FileDescriptorResponse.FileDescriptorProto
            .Select(bytes => (Bytes: bytes, Proto: FileDescriptorProto.Parser.ParseFrom(bytes)))
            .ToList();
        // BuildFromByteStrings wants every file after its imports.
        var ordered = new List<ByteString>();
        var done = new HashSet<string>(StringComparer.Ordinal);
        void Visit(string name)
        {
            if (!done.Add(name))
            {
                return;
            }
            var file = files.SingleOrDefault(f => f.Proto.Name == name);
            Assert.True(file.Proto is not null, $"The response lacks {name}.");
            foreach (var dependency in file.Proto.Dependency)
            {
                Visit(dependency);
            }
            ordered.Add(file.Bytes);
        }
        foreach (var file in files)
        {
            Visit(file.Proto.Name);
        }
        return FileDescriptor.BuildFromByteStrings(ordered);
    }
}
