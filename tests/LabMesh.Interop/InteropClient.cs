using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using Grpc.Testing;

namespace LabMesh.Interop;

/// <summary>Where and how the interop client connects.</summary>
public sealed class InteropClientOptions
{
    /// <summary>The host to connect to.</summary>
    public string ServerHost { get; set; } = "127.0.0.1";

    /// <summary>The port to connect to.</summary>
    public int ServerPort { get; set; }

    /// <summary>Use TLS (the certificate is always checked).</summary>
    public bool UseTls { get; set; }

    /// <summary>The name to claim: the <c>:authority</c>, the TLS server name and the name the
    /// certificate must carry; the TCP connection still goes to <see cref="ServerHost"/>.</summary>
    public string? ServerHostOverride { get; set; }

    /// <summary>A PEM file of the root to trust instead of the system store.</summary>
    public string? CaFile { get; set; }

    /// <summary>A root to trust instead of the system store (wins over <see cref="CaFile"/>).</summary>
    public X509Certificate2? CaCertificate { get; set; }
}

/// <summary>A case's assertion failed.</summary>
public sealed class InteropTestFailedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public InteropTestFailedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with its cause.</summary>
    public InteropTestFailedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates the exception.</summary>
    public InteropTestFailedException()
    {
    }
}

/// <summary>
/// The client side of the gRPC interop test cases (doc/interop-test-descriptions.md), one method per
/// case, against any server that implements <c>grpc.testing.TestService</c>. A case returns when
/// every assertion held and throws <see cref="InteropTestFailedException"/> (or the call's
/// <see cref="RpcException"/>) otherwise.
/// </summary>
public sealed class InteropClient : IDisposable
{
    /// <summary>The cases, by their interop names.</summary>
    public static readonly IReadOnlyList<string> TestCases =
    [
        "empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong", "empty_stream",
        "cancel_after_begin", "cancel_after_first_response", "timeout_on_sleeping_server",
        "status_code_and_message", "special_status_message", "custom_metadata",
        "unimplemented_method", "unimplemented_service",
        "client_compressed_unary", "server_compressed_unary", "client_compressed_streaming", "server_compressed_streaming",
    ];

    /// <summary>The cases that need gzip message compression from the runtime.</summary>
    public static readonly IReadOnlyList<string> CompressionTestCases =
    [
        "client_compressed_unary", "server_compressed_unary", "client_compressed_streaming", "server_compressed_streaming",
    ];

    private const int LargeRequestSize = 271828;
    private const int LargeResponseSize = 314159;
    private static readonly int[] RequestSizes = [27182, 8, 1828, 45904];
    private static readonly int[] ResponseSizes = [31415, 9, 2653, 58979];
    private const string EchoInitialValue = "test_initial_metadata_value";
    private static readonly byte[] EchoTrailingValue = [0xab, 0xab, 0xab];
    private const string SpecialStatusMessage = "\t\ntest with whitespace\r\nand Unicode BMP \u263A and non-BMP \U0001F608\t\n";

    private readonly InteropClientOptions _options;
    private readonly X509Certificate2? _ownedCa;
    private readonly GrpcChannel _channel;
    private readonly TestService.TestServiceClient _client;
    private GrpcChannel? _gzipChannel;

    /// <summary>Creates the client and its channel (no connection is made until the first call).</summary>
    public InteropClient(InteropClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        _options = options;
        if (options.UseTls && options.CaCertificate is null && options.CaFile is not null)
        {
            _ownedCa = X509Certificate2.CreateFromPemFile(options.CaFile);
        }
        _channel = CreateChannel(compressionAlgorithm: null);
        _client = new TestService.TestServiceClient(_channel);
    }

    /// <summary>Runs one case by its interop name.</summary>
    public Task RunAsync(string testCase, CancellationToken cancellationToken = default) => testCase switch
    {
        "empty_unary" => EmptyUnaryAsync(cancellationToken),
        "large_unary" => LargeUnaryAsync(cancellationToken),
        "client_streaming" => ClientStreamingAsync(cancellationToken),
        "server_streaming" => ServerStreamingAsync(cancellationToken),
        "ping_pong" => PingPongAsync(cancellationToken),
        "empty_stream" => EmptyStreamAsync(cancellationToken),
        "cancel_after_begin" => CancelAfterBeginAsync(cancellationToken),
        "cancel_after_first_response" => CancelAfterFirstResponseAsync(cancellationToken),
        "timeout_on_sleeping_server" => TimeoutOnSleepingServerAsync(cancellationToken),
        "status_code_and_message" => StatusCodeAndMessageAsync(cancellationToken),
        "special_status_message" => SpecialStatusMessageAsync(cancellationToken),
        "custom_metadata" => CustomMetadataAsync(cancellationToken),
        "unimplemented_method" => UnimplementedMethodAsync(cancellationToken),
        "unimplemented_service" => UnimplementedServiceAsync(cancellationToken),
        "client_compressed_unary" => ClientCompressedUnaryAsync(cancellationToken),
        "server_compressed_unary" => ServerCompressedUnaryAsync(cancellationToken),
        "client_compressed_streaming" => ClientCompressedStreamingAsync(cancellationToken),
        "server_compressed_streaming" => ServerCompressedStreamingAsync(cancellationToken),
        _ => throw new ArgumentException($"Unknown test case '{testCase}'. Known: {string.Join(", ", TestCases)}.", nameof(testCase)),
    };

    /// <summary>empty_unary: a zero-byte request gets a zero-byte response.</summary>
    public async Task EmptyUnaryAsync(CancellationToken cancellationToken = default)
    {
        var response = await _client.EmptyCallAsync(new Empty(), cancellationToken: cancellationToken);
        Check(response is not null, "EmptyCall returned no response");
    }

    /// <summary>large_unary: 271828 bytes up, 314159 bytes down.</summary>
    public async Task LargeUnaryAsync(CancellationToken cancellationToken = default)
    {
        var response = await _client.UnaryCallAsync(LargeRequest(), cancellationToken: cancellationToken);
        CheckZeroPayload(response.Payload, LargeResponseSize, "UnaryCall response");
    }

    /// <summary>client_streaming: four requests, one response with the sum of their sizes.</summary>
    public async Task ClientStreamingAsync(CancellationToken cancellationToken = default)
    {
        using var call = _client.StreamingInputCall(cancellationToken: cancellationToken);
        foreach (var size in RequestSizes)
        {
            await call.RequestStream.WriteAsync(new StreamingInputCallRequest { Payload = ZeroPayload(size) }, cancellationToken);
        }
        await call.RequestStream.CompleteAsync();
        var response = await call.ResponseAsync;
        Check(response.AggregatedPayloadSize == 74922, $"aggregated_payload_size is {response.AggregatedPayloadSize}, expected 74922");
    }

    /// <summary>server_streaming: one request, four responses of the requested sizes.</summary>
    public async Task ServerStreamingAsync(CancellationToken cancellationToken = default)
    {
        var request = new StreamingOutputCallRequest();
        request.ResponseParameters.AddRange(ResponseSizes.Select(size => new ResponseParameters { Size = size }));
        using var call = _client.StreamingOutputCall(request, cancellationToken: cancellationToken);
        var sizes = new List<int>();
        while (await call.ResponseStream.MoveNext(cancellationToken))
        {
            CheckZeroPayload(call.ResponseStream.Current.Payload, ResponseSizes.ElementAtOrDefault(sizes.Count), $"response {sizes.Count}");
            sizes.Add(call.ResponseStream.Current.Payload.Body.Length);
        }
        CheckSizes(sizes, ResponseSizes);
        Check(call.GetStatus().StatusCode == StatusCode.OK, $"status is {call.GetStatus()}, expected OK");
    }

    /// <summary>ping_pong: four request/response round trips on one bidirectional call.</summary>
    public async Task PingPongAsync(CancellationToken cancellationToken = default)
    {
        using var call = _client.FullDuplexCall(cancellationToken: cancellationToken);
        for (var i = 0; i < RequestSizes.Length; i++)
        {
            await call.RequestStream.WriteAsync(PingRequest(ResponseSizes[i], RequestSizes[i]), cancellationToken);
            Check(await call.ResponseStream.MoveNext(cancellationToken), $"the stream ended before response {i}");
            CheckZeroPayload(call.ResponseStream.Current.Payload, ResponseSizes[i], $"response {i}");
        }
        await call.RequestStream.CompleteAsync();
        Check(!await call.ResponseStream.MoveNext(cancellationToken), "more than four responses");
        Check(call.GetStatus().StatusCode == StatusCode.OK, $"status is {call.GetStatus()}, expected OK");
    }

    /// <summary>empty_stream: a bidirectional call with no messages either way.</summary>
    public async Task EmptyStreamAsync(CancellationToken cancellationToken = default)
    {
        using var call = _client.FullDuplexCall(cancellationToken: cancellationToken);
        await call.RequestStream.CompleteAsync();
        Check(!await call.ResponseStream.MoveNext(cancellationToken), "a response arrived on an empty stream");
        Check(call.GetStatus().StatusCode == StatusCode.OK, $"status is {call.GetStatus()}, expected OK");
    }

    /// <summary>cancel_after_begin: a client-streaming call cancelled before any message ends CANCELLED.</summary>
    public async Task CancelAfterBeginAsync(CancellationToken cancellationToken = default)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var call = _client.StreamingInputCall(cancellationToken: cancel.Token);
        await cancel.CancelAsync();
        await ExpectErrorAsync(() => call.ResponseAsync, StatusCode.Cancelled, "StreamingInputCall cancelled after begin");
    }

    /// <summary>cancel_after_first_response: a bidirectional call cancelled after one response ends CANCELLED.</summary>
    public async Task CancelAfterFirstResponseAsync(CancellationToken cancellationToken = default)
    {
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var call = _client.FullDuplexCall(cancellationToken: cancel.Token);
        await call.RequestStream.WriteAsync(PingRequest(31415, 27182), cancellationToken);
        Check(await call.ResponseStream.MoveNext(cancellationToken), "the stream ended before the first response");
        CheckZeroPayload(call.ResponseStream.Current.Payload, 31415, "the first response");
        await cancel.CancelAsync();
        await ExpectErrorAsync(() => call.ResponseStream.MoveNext(CancellationToken.None), StatusCode.Cancelled, "FullDuplexCall cancelled after the first response");
    }

    /// <summary>timeout_on_sleeping_server: a 1 ms deadline on a call the server never answers ends DEADLINE_EXCEEDED.</summary>
    public async Task TimeoutOnSleepingServerAsync(CancellationToken cancellationToken = default)
    {
        using var call = _client.FullDuplexCall(deadline: DateTime.UtcNow.AddMilliseconds(1), cancellationToken: cancellationToken);
        try
        {
            await call.RequestStream.WriteAsync(new StreamingOutputCallRequest { Payload = ZeroPayload(27182) }, cancellationToken);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.DeadlineExceeded)
        {
            // The deadline may pass before the write; the read below still has to report it.
        }
        await ExpectErrorAsync(() => call.ResponseStream.MoveNext(cancellationToken), StatusCode.DeadlineExceeded, "FullDuplexCall with a 1 ms deadline");
    }

    /// <summary>status_code_and_message: the server ends unary and bidirectional calls with the requested status.</summary>
    public async Task StatusCodeAndMessageAsync(CancellationToken cancellationToken = default)
    {
        const string message = "test status message";
        var status = new EchoStatus { Code = (int)StatusCode.Unknown, Message = message };

        var unary = await ExpectErrorAsync(
            async () => await _client.UnaryCallAsync(new SimpleRequest { ResponseStatus = status }, cancellationToken: cancellationToken),
            StatusCode.Unknown, "UnaryCall with response_status");
        Check(unary.Status.Detail == message, $"UnaryCall status message is '{unary.Status.Detail}', expected '{message}'");

        using var call = _client.FullDuplexCall(cancellationToken: cancellationToken);
        await call.RequestStream.WriteAsync(new StreamingOutputCallRequest { ResponseStatus = status }, cancellationToken);
        await call.RequestStream.CompleteAsync();
        var duplex = await ExpectErrorAsync(() => call.ResponseStream.MoveNext(cancellationToken), StatusCode.Unknown, "FullDuplexCall with response_status");
        Check(duplex.Status.Detail == message, $"FullDuplexCall status message is '{duplex.Status.Detail}', expected '{message}'");
    }

    /// <summary>special_status_message: a status message with whitespace and non-ASCII survives percent-encoding.</summary>
    public async Task SpecialStatusMessageAsync(CancellationToken cancellationToken = default)
    {
        var status = new EchoStatus { Code = (int)StatusCode.Unknown, Message = SpecialStatusMessage };
        var error = await ExpectErrorAsync(
            async () => await _client.UnaryCallAsync(new SimpleRequest { ResponseStatus = status }, cancellationToken: cancellationToken),
            StatusCode.Unknown, "UnaryCall with a special response_status message");
        Check(error.Status.Detail == SpecialStatusMessage, $"status message is '{Escape(error.Status.Detail)}', expected '{Escape(SpecialStatusMessage)}'");
    }

    /// <summary>custom_metadata: ASCII and binary metadata echoed in headers and trailers, unary and bidirectional.</summary>
    public async Task CustomMetadataAsync(CancellationToken cancellationToken = default)
    {
        var headers = new Metadata
        {
            { TestServiceImpl.EchoInitialKey, EchoInitialValue },
            { TestServiceImpl.EchoTrailingKey, EchoTrailingValue },
        };

        using (var unary = _client.UnaryCallAsync(LargeRequest(), headers, cancellationToken: cancellationToken))
        {
            var response = await unary.ResponseAsync;
            CheckZeroPayload(response.Payload, LargeResponseSize, "UnaryCall response");
            CheckEchoedMetadata(await unary.ResponseHeadersAsync, unary.GetTrailers(), "UnaryCall");
        }

        using var duplex = _client.FullDuplexCall(headers, cancellationToken: cancellationToken);
        var request = new StreamingOutputCallRequest { Payload = ZeroPayload(LargeRequestSize) };
        request.ResponseParameters.Add(new ResponseParameters { Size = LargeResponseSize });
        await duplex.RequestStream.WriteAsync(request, cancellationToken);
        await duplex.RequestStream.CompleteAsync();
        var responseHeaders = await duplex.ResponseHeadersAsync;
        Check(await duplex.ResponseStream.MoveNext(cancellationToken), "FullDuplexCall ended without a response");
        CheckZeroPayload(duplex.ResponseStream.Current.Payload, LargeResponseSize, "FullDuplexCall response");
        Check(!await duplex.ResponseStream.MoveNext(cancellationToken), "FullDuplexCall sent more than one response");
        CheckEchoedMetadata(responseHeaders, duplex.GetTrailers(), "FullDuplexCall");
    }

    /// <summary>unimplemented_method: TestService/UnimplementedCall ends UNIMPLEMENTED.</summary>
    public async Task UnimplementedMethodAsync(CancellationToken cancellationToken = default) =>
        await ExpectErrorAsync(
            async () => await _client.UnimplementedCallAsync(new Empty(), cancellationToken: cancellationToken),
            StatusCode.Unimplemented, "TestService/UnimplementedCall");

    /// <summary>unimplemented_service: UnimplementedService/UnimplementedCall ends UNIMPLEMENTED.</summary>
    public async Task UnimplementedServiceAsync(CancellationToken cancellationToken = default)
    {
        var client = new UnimplementedService.UnimplementedServiceClient(_channel);
        await ExpectErrorAsync(
            async () => await client.UnimplementedCallAsync(new Empty(), cancellationToken: cancellationToken),
            StatusCode.Unimplemented, "UnimplementedService/UnimplementedCall");
    }

    /// <summary>client_compressed_unary: an uncompressed probe that expects compression fails INVALID_ARGUMENT;
    /// a gzip-compressed request and a plain one that expects none both succeed.</summary>
    public async Task ClientCompressedUnaryAsync(CancellationToken cancellationToken = default)
    {
        var expectCompressed = LargeRequest();
        expectCompressed.ExpectCompressed = new BoolValue { Value = true };
        await ExpectErrorAsync(
            async () => await _client.UnaryCallAsync(expectCompressed, cancellationToken: cancellationToken),
            StatusCode.InvalidArgument, "the uncompressed probe with expect_compressed");

        var gzip = new TestService.TestServiceClient(GzipChannel());
        var compressed = await gzip.UnaryCallAsync(expectCompressed, cancellationToken: cancellationToken);
        CheckZeroPayload(compressed.Payload, LargeResponseSize, "the response to the compressed request");

        var expectPlain = LargeRequest();
        expectPlain.ExpectCompressed = new BoolValue { Value = false };
        var plain = await _client.UnaryCallAsync(expectPlain, cancellationToken: cancellationToken);
        CheckZeroPayload(plain.Payload, LargeResponseSize, "the response to the uncompressed request");
    }

    /// <summary>server_compressed_unary: responses compressed or not as asked (the flag itself is not
    /// visible through the API; the response's grpc-encoding is checked where the runtime exposes it).</summary>
    public async Task ServerCompressedUnaryAsync(CancellationToken cancellationToken = default)
    {
        foreach (var compress in new[] { true, false })
        {
            var request = LargeRequest();
            request.ResponseCompressed = new BoolValue { Value = compress };
            using var call = _client.UnaryCallAsync(request, cancellationToken: cancellationToken);
            var response = await call.ResponseAsync;
            CheckZeroPayload(response.Payload, LargeResponseSize, $"the response with response_compressed={compress}");
            var encoding = (await call.ResponseHeadersAsync).GetValue("grpc-encoding");
            Check(!compress || encoding is null || encoding == "gzip", $"response_compressed=true answered with grpc-encoding '{encoding}'");
        }
    }

    /// <summary>client_compressed_streaming: a probe fails INVALID_ARGUMENT; then a compressed and an
    /// uncompressed message on one call add up to 73086.</summary>
    public async Task ClientCompressedStreamingAsync(CancellationToken cancellationToken = default)
    {
        var first = new StreamingInputCallRequest { ExpectCompressed = new BoolValue { Value = true }, Payload = ZeroPayload(27182) };
        using (var probe = _client.StreamingInputCall(cancellationToken: cancellationToken))
        {
            await ExpectErrorAsync(
                async () =>
                {
                    await probe.RequestStream.WriteAsync(first, cancellationToken);
                    await probe.RequestStream.CompleteAsync();
                    await probe.ResponseAsync;
                },
                StatusCode.InvalidArgument, "the uncompressed probe with expect_compressed");
        }

        var gzip = new TestService.TestServiceClient(GzipChannel());
        using var call = gzip.StreamingInputCall(cancellationToken: cancellationToken);
        await call.RequestStream.WriteAsync(first, cancellationToken);
        call.RequestStream.WriteOptions = new WriteOptions(WriteFlags.NoCompress);
        await call.RequestStream.WriteAsync(new StreamingInputCallRequest { ExpectCompressed = new BoolValue { Value = false }, Payload = ZeroPayload(45904) }, cancellationToken);
        await call.RequestStream.CompleteAsync();
        var response = await call.ResponseAsync;
        Check(response.AggregatedPayloadSize == 73086, $"aggregated_payload_size is {response.AggregatedPayloadSize}, expected 73086");
    }

    /// <summary>server_compressed_streaming: a compressed and an uncompressed response of the requested sizes.</summary>
    public async Task ServerCompressedStreamingAsync(CancellationToken cancellationToken = default)
    {
        var request = new StreamingOutputCallRequest();
        request.ResponseParameters.Add(new ResponseParameters { Size = 31415, Compressed = new BoolValue { Value = true } });
        request.ResponseParameters.Add(new ResponseParameters { Size = 92653, Compressed = new BoolValue { Value = false } });
        using var call = _client.StreamingOutputCall(request, cancellationToken: cancellationToken);
        var sizes = new List<int>();
        while (await call.ResponseStream.MoveNext(cancellationToken))
        {
            sizes.Add(call.ResponseStream.Current.Payload.Body.Length);
        }
        CheckSizes(sizes, [31415, 92653]);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _channel.Dispose();
        _gzipChannel?.Dispose();
        _ownedCa?.Dispose();
    }

    private GrpcChannel GzipChannel() => _gzipChannel ??= CreateChannel("gzip");

    private GrpcChannel CreateChannel(string? compressionAlgorithm)
    {
        var options = new GrpcChannelOptions { CompressionAlgorithm = compressionAlgorithm };
        var host = _options.ServerHostOverride ?? _options.ServerHost;
        if (_options.UseTls || _options.ServerHostOverride is not null)
        {
            options.HttpHandler = CreateHandler();
            options.DisposeHttpHandler = true;
        }
        var scheme = _options.UseTls ? "https" : "http";
        var authorityHost = host.Contains(':', StringComparison.Ordinal) ? $"[{host}]" : host;
        return GrpcChannel.ForAddress($"{scheme}://{authorityHost}:{_options.ServerPort}", options);
    }

    private SocketsHttpHandler CreateHandler()
    {
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = true,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        };
        if (_options.ServerHostOverride is not null)
        {
            // The URI carries the claimed name (authority, SNI, certificate check); the socket goes to the real host.
            var realHost = _options.ServerHost;
            handler.ConnectCallback = async (context, cancellationToken) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                try
                {
                    await socket.ConnectAsync(realHost, context.DnsEndPoint.Port, cancellationToken);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
        }
        if (_options.UseTls)
        {
            handler.SslOptions = new SslClientAuthenticationOptions
            {
                ApplicationProtocols = [SslApplicationProtocol.Http2],
            };
            var ca = _options.CaCertificate ?? _ownedCa;
            if (ca is not null)
            {
                // Trust exactly this root; the host name is still checked against the certificate.
                var policy = new X509ChainPolicy
                {
                    TrustMode = X509ChainTrustMode.CustomRootTrust,
                    RevocationMode = X509RevocationMode.NoCheck,
                };
                policy.CustomTrustStore.Add(ca);
                handler.SslOptions.CertificateChainPolicy = policy;
            }
        }
        return handler;
    }

    private static SimpleRequest LargeRequest() => new() { ResponseSize = LargeResponseSize, Payload = ZeroPayload(LargeRequestSize) };

    private static StreamingOutputCallRequest PingRequest(int responseSize, int requestSize)
    {
        var request = new StreamingOutputCallRequest { Payload = ZeroPayload(requestSize) };
        request.ResponseParameters.Add(new ResponseParameters { Size = responseSize });
        return request;
    }

    private static Payload ZeroPayload(int size) => new() { Body = UnsafeByteOperations.UnsafeWrap(new byte[size]) };

    private static void CheckZeroPayload(Payload? payload, int expectedSize, string what)
    {
        Check(payload is not null, $"{what} has no payload");
        var body = payload!.Body.Span;
        Check(body.Length == expectedSize, $"{what} payload is {body.Length} bytes, expected {expectedSize}");
        Check(!body.ContainsAnyExcept((byte)0), $"{what} payload is not all zeros");
    }

    private static void CheckSizes(List<int> actual, int[] expected) =>
        Check(actual.SequenceEqual(expected), $"response sizes are [{string.Join(", ", actual)}], expected [{string.Join(", ", expected)}]");

    private static void CheckEchoedMetadata(Metadata headers, Metadata trailers, string call)
    {
        var initial = headers.GetValue(TestServiceImpl.EchoInitialKey);
        Check(initial == EchoInitialValue, $"{call}: response header '{TestServiceImpl.EchoInitialKey}' is '{initial}', expected '{EchoInitialValue}'");
        var trailing = trailers.GetValueBytes(TestServiceImpl.EchoTrailingKey);
        Check(trailing is not null && trailing.AsSpan().SequenceEqual(EchoTrailingValue),
            $"{call}: trailer '{TestServiceImpl.EchoTrailingKey}' is {(trailing is null ? "missing" : Convert.ToHexString(trailing))}, expected ABABAB");
    }

    private static async Task<RpcException> ExpectErrorAsync(Func<Task> action, StatusCode expected, string what)
    {
        try
        {
            await action();
        }
        catch (RpcException e)
        {
            Check(e.StatusCode == expected, $"{what} ended {e.StatusCode} ('{Escape(e.Status.Detail)}'), expected {expected}");
            return e;
        }
        throw new InteropTestFailedException($"{what} succeeded, expected {expected}");
    }

    private static void Check(bool condition, string message)
    {
        if (!condition)
        {
            throw new InteropTestFailedException(message);
        }
    }

    private static string Escape(string text) => text.Replace("\t", "\\t", StringComparison.Ordinal)
        .Replace("\r", "\\r", StringComparison.Ordinal)
        .Replace("\n", "\\n", StringComparison.Ordinal);
}
