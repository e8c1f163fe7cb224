using System.Globalization;
using Google.Protobuf;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Grpc.Testing;

namespace LabMesh.Interop;

/// <summary>
/// <c>grpc.testing.TestService</c> as the gRPC interop test-case document's "Server" section
/// describes it: payloads of the requested sizes (all zeros), Echo Status, Echo Metadata,
/// <c>interval_us</c> delays, and compressed requests and responses where asked.
/// <c>UnimplementedCall</c> is deliberately not overridden: the generated base ends it with UNIMPLEMENTED.
/// </summary>
public sealed class TestServiceImpl : TestService.TestServiceBase
{
    /// <summary>The request key whose value the server sends back in its response headers.</summary>
    public const string EchoInitialKey = "x-grpc-test-echo-initial";

    /// <summary>The request key whose value the server sends back in its trailers.</summary>
    public const string EchoTrailingKey = "x-grpc-test-echo-trailing-bin";

    private static readonly WriteOptions Uncompressed = new(WriteFlags.NoCompress);
    private static readonly WriteOptions Compressed = new();

    /// <inheritdoc />
    public override async Task<Empty> EmptyCall(Empty request, ServerCallContext context)
    {
        await EchoMetadataAsync(context);
        return new Empty();
    }

    /// <inheritdoc />
    public override async Task<SimpleResponse> UnaryCall(SimpleRequest request, ServerCallContext context)
    {
        await EchoMetadataAsync(context);
        ThrowIfEchoStatus(request.ResponseStatus);
        EnsureCompressedIfExpected(request.ExpectCompressed, context);
        SetResponseCompression(context, null, request.ResponseCompressed?.Value == true);
        return new SimpleResponse { Payload = CreatePayload(request.ResponseType, request.ResponseSize) };
    }

    /// <inheritdoc />
    public override async Task<SimpleResponse> CacheableUnaryCall(SimpleRequest request, ServerCallContext context)
    {
        // The document asks for a payload that differs per call and headers that let a proxy cache it.
        var headers = new Metadata { { "cache-control", "max-age=60, public" } };
        var initial = context.RequestHeaders.Get(EchoInitialKey);
        if (initial is not null)
        {
            headers.Add(initial);
        }
        await context.WriteResponseHeadersAsync(headers);
        EchoTrailingMetadata(context);
        SetResponseCompression(context, null, compress: false);
        var now = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;
        return new SimpleResponse
        {
            Payload = new Payload { Body = ByteString.CopyFromUtf8(now.ToString(CultureInfo.InvariantCulture)) },
        };
    }

    /// <inheritdoc />
    public override async Task StreamingOutputCall(StreamingOutputCallRequest request, IServerStreamWriter<StreamingOutputCallResponse> responseStream, ServerCallContext context)
    {
        await EchoMetadataAsync(context);
        ThrowIfEchoStatus(request.ResponseStatus);
        foreach (var parameters in request.ResponseParameters)
        {
            await SendAsync(request.ResponseType, parameters, responseStream, context);
        }
    }

    /// <inheritdoc />
    public override async Task<StreamingInputCallResponse> StreamingInputCall(IAsyncStreamReader<StreamingInputCallRequest> requestStream, ServerCallContext context)
    {
        await EchoMetadataAsync(context);
        var total = 0;
        while (await requestStream.MoveNext(context.CancellationToken))
        {
            var request = requestStream.Current;
            EnsureCompressedIfExpected(request.ExpectCompressed, context);
            total += request.Payload?.Body.Length ?? 0;
        }
        SetResponseCompression(context, null, compress: false);
        return new StreamingInputCallResponse { AggregatedPayloadSize = total };
    }

    /// <inheritdoc />
    public override async Task FullDuplexCall(IAsyncStreamReader<StreamingOutputCallRequest> requestStream, IServerStreamWriter<StreamingOutputCallResponse> responseStream, ServerCallContext context)
    {
        await EchoMetadataAsync(context);
        while (await requestStream.MoveNext(context.CancellationToken))
        {
            var request = requestStream.Current;
            ThrowIfEchoStatus(request.ResponseStatus);
            foreach (var parameters in request.ResponseParameters)
            {
                await SendAsync(request.ResponseType, parameters, responseStream, context);
            }
        }
    }

    /// <inheritdoc />
    public override async Task HalfDuplexCall(IAsyncStreamReader<StreamingOutputCallRequest> requestStream, IServerStreamWriter<StreamingOutputCallResponse> responseStream, ServerCallContext context)
    {
        await EchoMetadataAsync(context);
        var requests = new List<StreamingOutputCallRequest>();
        while (await requestStream.MoveNext(context.CancellationToken))
        {
            requests.Add(requestStream.Current);
        }
        foreach (var request in requests)
        {
            ThrowIfEchoStatus(request.ResponseStatus);
            foreach (var parameters in request.ResponseParameters)
            {
                await SendAsync(request.ResponseType, parameters, responseStream, context);
            }
        }
    }

    private static async Task SendAsync(PayloadType type, ResponseParameters parameters, IServerStreamWriter<StreamingOutputCallResponse> responseStream, ServerCallContext context)
    {
        if (parameters.IntervalUs > 0)
        {
            await Task.Delay(TimeSpan.FromMicroseconds(parameters.IntervalUs), context.CancellationToken);
        }
        SetResponseCompression(context, responseStream, parameters.Compressed?.Value == true);
        await responseStream.WriteAsync(new StreamingOutputCallResponse { Payload = CreatePayload(type, parameters.Size) });
    }

    private static Payload CreatePayload(PayloadType type, int size)
    {
        if (type != PayloadType.Compressable)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"Unsupported response type {(int)type}."));
        }
        if (size < 0)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"Negative response size {size}."));
        }
        // A fresh array is all zeros; wrapping it saves a copy of up to megabytes per response.
        return new Payload { Type = type, Body = UnsafeByteOperations.UnsafeWrap(new byte[size]) };
    }

    private static async Task EchoMetadataAsync(ServerCallContext context)
    {
        var initial = context.RequestHeaders.Get(EchoInitialKey);
        if (initial is not null)
        {
            await context.WriteResponseHeadersAsync([initial]);
        }
        EchoTrailingMetadata(context);
    }

    private static void EchoTrailingMetadata(ServerCallContext context)
    {
        var trailing = context.RequestHeaders.Get(EchoTrailingKey);
        if (trailing is not null)
        {
            context.ResponseTrailers.Add(trailing);
        }
    }

    private static void ThrowIfEchoStatus(EchoStatus? status)
    {
        if (status is not null && status.Code != 0)
        {
            throw new RpcException(new Status((StatusCode)status.Code, status.Message));
        }
    }

    private static void EnsureCompressedIfExpected(BoolValue? expectCompressed, ServerCallContext context)
    {
        if (expectCompressed?.Value != true)
        {
            return;
        }
        // The Grpc.Core API does not expose a message's compressed flag, so the call's grpc-encoding
        // stands for it: a client that compresses a message announces an encoding for the call.
        var encoding = RequestEncoding(context);
        if (encoding is null || encoding == "identity")
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, "Expected a compressed request, but it arrived uncompressed."));
        }
    }

    // grpc-encoding is a protocol header, so it is not in RequestHeaders; read it from HTTP.
    private static string? RequestEncoding(ServerCallContext context) =>
        context.GetHttpContext().Request.Headers.TryGetValue("grpc-encoding", out var value) ? value.ToString() : null;

    private static void SetResponseCompression(ServerCallContext context, IServerStreamWriter<StreamingOutputCallResponse>? stream, bool compress)
    {
        // The server compresses responses (GrpcServiceOptions.ResponseCompressionAlgorithm) unless a
        // message is marked NoCompress; the interop cases want compression only where they ask for it.
        var options = compress ? Compressed : Uncompressed;
        context.WriteOptions = options;
        if (stream is not null)
        {
            stream.WriteOptions = options;
        }
    }
}
