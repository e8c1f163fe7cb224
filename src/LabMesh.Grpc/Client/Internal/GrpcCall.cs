using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.IO.Pipelines;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime.CompilerServices;
using Grpc.Core;
using Grpc.Core.Internal;

namespace Grpc.Net.Client.Internal;

/// <summary>
/// One client call over HTTP/2. It sends the request (a whole message, or a stream the caller writes),
/// reads the response headers, messages and trailers, and settles the call's status exactly once:
/// from the trailers, from a Trailers-Only answer, from the HTTP status when no grpc-status came,
/// or from what went wrong locally (deadline, cancellation, a broken connection).
/// </summary>
internal sealed class GrpcCall<TRequest, TResponse> : IDisposable
    where TRequest : class
    where TResponse : class
{
    private readonly GrpcChannel _channel;
    private readonly Method<TRequest, TResponse> _method;
    private readonly string? _host;
    private readonly CallOptions _options;
    private readonly CancellationTokenSource _cts = new();
    private readonly TaskCompletionSource<Metadata> _headers = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly DateTime _deadline;
    private readonly CancellationToken _parentToken;
    private readonly long _startTimestamp = Stopwatch.GetTimestamp();
    private readonly Activity? _activity;
    private CancellationTokenSource? _deadlineCts;
    private readonly CancellationTokenRegistration _userRegistration;
    private readonly CancellationTokenRegistration _parentRegistration;
    private readonly CancellationTokenRegistration _shutdownRegistration;
    private Task<bool>? _started;
    private HttpResponseMessage? _response;
    private MessageReader? _reader;
    private StreamingContent? _requestContent;
    private Status? _status;
    private Metadata? _trailers;
    private volatile bool _deadlineExceeded;
    private volatile bool _disposed;

    public GrpcCall(GrpcChannel channel, Method<TRequest, TResponse> method, string? host, CallOptions options)
    {
        _channel = channel;
        _method = method;
        _host = host;
        _options = options;
        _deadline = options.Deadline?.ToUniversalTime() ?? DateTime.MaxValue;
        if (options.PropagationToken is { } parent)
        {
            if (parent.Options.IsPropagateDeadline && parent.ParentDeadline < _deadline)
            {
                _deadline = parent.ParentDeadline;
            }
            if (parent.Options.IsPropagateCancellation)
            {
                _parentToken = parent.ParentCancellationToken;
            }
        }
        if (options.CancellationToken.CanBeCanceled)
        {
            _userRegistration = options.CancellationToken.UnsafeRegister(static s => ((GrpcCall<TRequest, TResponse>)s!).CancelTransport(), this);
        }
        if (_parentToken.CanBeCanceled)
        {
            _parentRegistration = _parentToken.UnsafeRegister(static s => ((GrpcCall<TRequest, TResponse>)s!).CancelTransport(), this);
        }
        _shutdownRegistration = channel.ShutdownToken.UnsafeRegister(static s => ((GrpcCall<TRequest, TResponse>)s!).CancelTransport(), this);
        // The call's span must not become the caller's Activity.Current: it is made current only
        // inside the call's own async flow (SendAsync).
        var callerActivity = Activity.Current;
        _activity = GrpcTelemetry.StartClient(method, channel.Address);
        Activity.Current = callerActivity;
        ResponseStream = new ResponseStreamReader(this);
        RequestStream = new RequestStreamWriter(this);
    }

    public Task<Metadata> ResponseHeadersAsync => _headers.Task;

    /// <summary>
    /// True once response headers that are not a Trailers-Only answer have arrived: the server has
    /// committed to this attempt and it must not be retried.
    /// </summary>
    public bool Committed { get; private set; }

    /// <summary>Earlier attempts of this call, sent as <c>grpc-previous-rpc-attempts</c> when non-zero.</summary>
    public int PreviousAttempts { get; init; }

    public IAsyncStreamReader<TResponse> ResponseStream { get; }

    public IClientStreamWriter<TRequest> RequestStream { get; }

    public Status GetStatus() => _status ?? throw new InvalidOperationException("Unable to get the status because the call is not complete.");

    public Metadata GetTrailers() => _trailers ?? throw new InvalidOperationException("Unable to get the trailers because the call is not complete.");

    public async Task<TResponse> RunUnaryAsync(TRequest request)
    {
        try
        {
            _started = SendAsync(CreateUnaryContent(request));
            return await ReadSingleResponseAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }
    }

    public void StartServerStreaming(TRequest request)
    {
        try
        {
            _started = SendAsync(CreateUnaryContent(request));
        }
        catch (Exception ex)
        {
            _started = Task.FromException<bool>(Fail(ex));
        }
    }

    public async Task<TResponse> RunClientStreamingAsync()
    {
        _requestContent = new StreamingContent();
        try
        {
            _started = SendAsync(_requestContent);
            return await ReadSingleResponseAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }
    }

    public void StartDuplexStreaming()
    {
        _requestContent = new StreamingContent();
        _started = SendAsync(_requestContent);
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        if (_status is null)
        {
            Complete(new Status(StatusCode.Cancelled, "gRPC call disposed."), Metadata.Empty);
            CancelTransport();
        }
        Cleanup();
    }

    private UnaryContent CreateUnaryContent(TRequest request)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var writer = new MessageWriter(_channel.Options.MaxSendMessageSize, _channel.Options.CompressionLevel ?? CompressionLevel.Fastest);
        writer.Write(buffer, request, _method.RequestMarshaller.ContextualSerializer, RequestEncoding());
        return new UnaryContent(buffer.WrittenMemory);
    }

    private string? RequestEncoding()
    {
        var writeOptions = _options.WriteOptions;
        return _channel.Options.CompressionAlgorithm is { } algorithm && (writeOptions is null || (writeOptions.Flags & WriteFlags.NoCompress) == 0)
            ? algorithm
            : null;
    }

    /// <summary>Sends the request and reads the response headers. False when the call already ended OK without a body.</summary>
    private async Task<bool> SendAsync(HttpContent content)
    {
        try
        {
            var timeout = TimeSpan.Zero;
            if (_deadline != DateTime.MaxValue)
            {
                timeout = _deadline - DateTime.UtcNow;
                if (timeout <= TimeSpan.Zero)
                {
                    _deadlineExceeded = true;
                    throw new OperationCanceledException();
                }
                if (timeout < TimeSpan.FromMilliseconds(uint.MaxValue - 1))
                {
                    _deadlineCts = new CancellationTokenSource();
                    _deadlineCts.Token.UnsafeRegister(static s => ((GrpcCall<TRequest, TResponse>)s!).OnDeadline(), this);
                    _deadlineCts.CancelAfter(timeout);
                }
            }
            if (_activity is not null)
            {
                Activity.Current = _activity;
            }
            using var request = CreateRequest(content, timeout);
            var response = await _channel.HttpInvoker.SendAsync(request, _cts.Token).ConfigureAwait(false);
            _response = response;
            return await ReadHeadersAsync(response).ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }
    }

    private HttpRequestMessage CreateRequest(HttpContent content, TimeSpan timeout)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, _channel.GetMethodUri(_method))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        content.Headers.TryAddWithoutValidation("content-type", GrpcProtocol.ContentType);
        var headers = request.Headers;
        headers.TryAddWithoutValidation(GrpcProtocol.TeHeader, "trailers");
        if ((_activity ?? Activity.Current) is { } traceContext)
        {
            // W3C trace context (traceparent, tracestate) in the call's metadata.
            DistributedContextPropagator.Current.Inject(traceContext, headers,
                static (carrier, name, value) => ((HttpRequestHeaders)carrier!).TryAddWithoutValidation(name, value));
        }
        headers.TryAddWithoutValidation(GrpcProtocol.UserAgentHeader, GrpcProtocol.UserAgent);
        headers.TryAddWithoutValidation(GrpcProtocol.AcceptEncodingHeader, GrpcCompression.AcceptEncoding);
        if (_channel.Options.CompressionAlgorithm is { } encoding)
        {
            headers.TryAddWithoutValidation(GrpcProtocol.EncodingHeader, encoding);
        }
        if (timeout > TimeSpan.Zero)
        {
            headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, GrpcProtocol.FormatTimeout(timeout));
        }
        if (_host is not null)
        {
            headers.Host = _host;
        }
        if (PreviousAttempts > 0)
        {
            headers.TryAddWithoutValidation(GrpcProtocol.PreviousAttemptsHeader, PreviousAttempts.ToString(CultureInfo.InvariantCulture));
        }
        if (_options.Headers is { Count: > 0 } metadata)
        {
            foreach (var entry in metadata)
            {
                if (GrpcProtocol.IsReservedHeader(entry.Key))
                {
                    continue;
                }
                headers.TryAddWithoutValidation(entry.Key, entry.IsBinary ? GrpcProtocol.EncodeBinaryHeader(entry.ValueBytes) : entry.Value);
            }
        }
        return request;
    }

    private async Task<bool> ReadHeadersAsync(HttpResponseMessage response)
    {
        var headerMetadata = ToMetadata(response.Headers);
        _headers.TrySetResult(headerMetadata);

        var grpcStatus = FirstValue(response.Headers, GrpcProtocol.StatusHeader);
        if (grpcStatus is not null)
        {
            // Trailers-Only: the status came in the only HEADERS frame.
            var status = ParseStatus(grpcStatus, FirstValue(response.Headers, GrpcProtocol.MessageHeader));
            Complete(status, headerMetadata);
            if (status.StatusCode != StatusCode.OK)
            {
                throw new RpcException(status, headerMetadata);
            }
            return false;
        }
        if (response.StatusCode != HttpStatusCode.OK)
        {
            var code = GrpcProtocol.StatusFromHttp((int)response.StatusCode);
            throw Settle(new Status(code, $"Bad gRPC response. HTTP status code: {(int)response.StatusCode}"), headerMetadata);
        }
        var contentType = response.Content.Headers.NonValidated.TryGetValues("content-type", out var types) ? types.ToString() : null;
        if (!GrpcProtocol.IsGrpcContentType(contentType))
        {
            throw Settle(new Status(StatusCode.Unknown, $"Bad gRPC response. Invalid content-type value: {contentType}"), headerMetadata);
        }
        var encoding = FirstValue(response.Headers, GrpcProtocol.EncodingHeader);
        if (!GrpcCompression.IsSupported(encoding))
        {
            throw Settle(new Status(StatusCode.Internal, $"The server answered with unsupported grpc-encoding '{encoding}'."), headerMetadata);
        }
        Committed = true;
        var stream = await response.Content.ReadAsStreamAsync(_cts.Token).ConfigureAwait(false);
        _reader = new MessageReader(PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true)),
            _channel.Options.MaxReceiveMessageSize, encoding, isServer: false);
        return true;
    }

    private async Task<TResponse> ReadSingleResponseAsync()
    {
        if (!await _started!.ConfigureAwait(false))
        {
            // statuscodes.md: a response cardinality violation is UNIMPLEMENTED.
            throw Settle(new Status(StatusCode.Unimplemented, "The server ended the call OK without a response message."), _trailers ?? Metadata.Empty, overwrite: true);
        }
        var (ok, message) = await _reader!.ReadAsync(_method.ResponseMarshaller.ContextualDeserializer, _cts.Token).ConfigureAwait(false);
        if (!ok)
        {
            var (status, trailers) = ReadTrailers();
            if (status.StatusCode == StatusCode.OK)
            {
                status = new Status(StatusCode.Unimplemented, "The server ended the call OK without a response message.");
            }
            throw Settle(status, trailers);
        }
        var (extra, _) = await _reader.ReadAsync(_method.ResponseMarshaller.ContextualDeserializer, _cts.Token).ConfigureAwait(false);
        if (extra)
        {
            throw Settle(new Status(StatusCode.Unimplemented, "The server sent more than one response message for a single-response method."), Metadata.Empty);
        }
        var (finalStatus, finalTrailers) = ReadTrailers();
        Complete(finalStatus, finalTrailers);
        if (finalStatus.StatusCode != StatusCode.OK)
        {
            throw new RpcException(finalStatus, finalTrailers);
        }
        return message;
    }

    private async Task<bool> MoveNextAsync(CancellationToken cancellationToken, StrongBox<TResponse?> current)
    {
        try
        {
            if (_status is { } done)
            {
                return done.StatusCode == StatusCode.OK ? false : throw new RpcException(done, _trailers ?? Metadata.Empty);
            }
            if (_started is null)
            {
                throw new InvalidOperationException("The call has not started.");
            }
            if (!await _started.ConfigureAwait(false))
            {
                return false;
            }
            using var linked = cancellationToken.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _cts.Token) : null;
            var (ok, message) = await _reader!.ReadAsync(_method.ResponseMarshaller.ContextualDeserializer, linked?.Token ?? _cts.Token).ConfigureAwait(false);
            if (ok)
            {
                current.Value = message;
                return true;
            }
            var (status, trailers) = ReadTrailers();
            Complete(status, trailers);
            return status.StatusCode == StatusCode.OK ? false : throw new RpcException(status, trailers);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested && !_cts.IsCancellationRequested)
        {
            // Only this read was cancelled; cancelling a read cancels the call, as in grpc-dotnet.
            CancelTransport();
            throw Settle(new Status(StatusCode.Cancelled, "Call canceled by the client."), Metadata.Empty);
        }
        catch (Exception ex)
        {
            throw Fail(ex);
        }
    }

    private async Task WriteAsync(TRequest message, ArrayBufferWriter<byte> buffer, MessageWriter writer, WriteOptions? writeOptions, CancellationToken cancellationToken)
    {
        if (_status is { } done)
        {
            throw done.StatusCode == StatusCode.OK
                ? new InvalidOperationException("Can't write the message because the call is complete.")
                : new RpcException(done, _trailers ?? Metadata.Empty);
        }
        var content = _requestContent ?? throw new InvalidOperationException("This call has no request stream.");
        using var linked = cancellationToken.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _cts.Token) : null;
        var token = linked?.Token ?? _cts.Token;
        buffer.ResetWrittenCount();
        var options = writeOptions ?? _options.WriteOptions;
        var encoding = _channel.Options.CompressionAlgorithm is { } algorithm && (options is null || (options.Flags & WriteFlags.NoCompress) == 0) ? algorithm : null;
        writer.Write(buffer, message, _method.RequestMarshaller.ContextualSerializer, encoding);
        try
        {
            var stream = await content.GetStreamAsync().WaitAsync(token).ConfigureAwait(false);
            await stream.WriteAsync(buffer.WrittenMemory, token).ConfigureAwait(false);
            if (options is null || (options.Flags & WriteFlags.BufferHint) == 0)
            {
                await stream.FlushAsync(token).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            if (_status is { } status)
            {
                throw new RpcException(status, _trailers ?? Metadata.Empty);
            }
            if (_deadlineExceeded || _cts.IsCancellationRequested)
            {
                throw Fail(ex);
            }
            // The server may have ended the call; its status arrives on the response side.
            throw new RpcException(new Status(StatusCode.Unavailable, "Error writing to the request stream; read the response for the call's status.", ex));
        }
    }

    private (Status Status, Metadata Trailers) ReadTrailers()
    {
        var trailing = _response!.TrailingHeaders;
        var trailers = ToMetadata(trailing);
        var grpcStatus = FirstValue(trailing, GrpcProtocol.StatusHeader);
        if (grpcStatus is null)
        {
            return (new Status(StatusCode.Unknown, "No grpc-status found on response."), trailers);
        }
        return (ParseStatus(grpcStatus, FirstValue(trailing, GrpcProtocol.MessageHeader)), trailers);
    }

    private static Status ParseStatus(string value, string? message)
    {
        var detail = message is null ? "" : GrpcProtocol.PercentDecode(message);
        return int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var code) && code is >= 0 and <= 16
            ? new Status((StatusCode)code, detail)
            : new Status(StatusCode.Unknown, $"Error parsing returned status '{value}'. {detail}".TrimEnd());
    }

    private static string? FirstValue(HttpHeaders headers, string name) =>
        headers.NonValidated.TryGetValues(name, out var values) && values.Count > 0 ? values.ToString() : null;

    private static Metadata ToMetadata(HttpHeaders headers)
    {
        var metadata = new Metadata();
        foreach (var header in headers.NonValidated)
        {
            var key = header.Key.ToLowerInvariant();
            if (GrpcProtocol.IsReservedHeader(key) || key is "date" or "server")
            {
                continue;
            }
            foreach (var value in header.Value)
            {
                GrpcProtocol.TryAddHeaderToMetadata(metadata, key, value);
            }
        }
        return metadata.Freeze();
    }

    /// <summary>Settles the call from an exception and returns what the caller should see.</summary>
    private RpcException Fail(Exception exception)
    {
        if (_status is { } settled)
        {
            return exception is RpcException same && same.Status == settled ? same : new RpcException(settled, _trailers ?? Metadata.Empty);
        }
        var status = MapException(exception);
        var trailers = exception is RpcException rpc ? rpc.Trailers : Metadata.Empty;
        Complete(status, trailers);
        CancelTransport();
        return new RpcException(status, trailers);
    }

    private Status MapException(Exception exception)
    {
        if (_deadlineExceeded)
        {
            return new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded", exception);
        }
        if (_options.CancellationToken.IsCancellationRequested || _parentToken.IsCancellationRequested || _disposed)
        {
            return new Status(StatusCode.Cancelled, "Call canceled by the client.", exception);
        }
        if (_channel.ShutdownToken.IsCancellationRequested)
        {
            return new Status(StatusCode.Unavailable, "The channel was shut down.", exception);
        }
        return exception switch
        {
            RpcException rpc => rpc.Status,
            HttpProtocolException protocol => FromHttp2ErrorCode(protocol.ErrorCode, protocol),
            HttpRequestException { InnerException: HttpProtocolException protocol } => FromHttp2ErrorCode(protocol.ErrorCode, protocol),
            HttpRequestException request => new Status(StatusCode.Unavailable, $"Error starting gRPC call. {request.GetType().Name}: {request.Message}", request),
            IOException { InnerException: HttpProtocolException protocol } => FromHttp2ErrorCode(protocol.ErrorCode, protocol),
            IOException io => new Status(StatusCode.Unavailable, $"Error reading the response. {io.GetType().Name}: {io.Message}", io),
            OperationCanceledException => new Status(StatusCode.Cancelled, "Call canceled.", exception),
            _ => new Status(StatusCode.Internal, $"Error in the gRPC call. {exception.GetType().Name}: {exception.Message}", exception),
        };
    }

    /// <summary>RST_STREAM and GOAWAY error codes to gRPC status (PROTOCOL-HTTP2.md "Errors").</summary>
    private static Status FromHttp2ErrorCode(long errorCode, Exception exception) => errorCode switch
    {
        0x7 => new Status(StatusCode.Unavailable, "The server refused the stream (REFUSED_STREAM).", exception),
        0x8 => new Status(StatusCode.Cancelled, "The server cancelled the stream (CANCEL).", exception),
        0xB => new Status(StatusCode.ResourceExhausted, "The server asked to slow down (ENHANCE_YOUR_CALM).", exception),
        0xC => new Status(StatusCode.PermissionDenied, "The connection's security is inadequate (INADEQUATE_SECURITY).", exception),
        // SocketsHttpHandler reports an unanswered keepalive PING as PROTOCOL_ERROR; the connection is dead, not the stream refused.
        0x1 when exception.Message.Contains("ping request", StringComparison.OrdinalIgnoreCase) => new Status(StatusCode.Unavailable, "The connection was lost: a keepalive PING went unanswered.", exception),
        _ => new Status(StatusCode.Internal, $"The HTTP/2 stream was reset with error code 0x{errorCode:X}.", exception),
    };

    private RpcException Settle(Status status, Metadata trailers, bool overwrite = false)
    {
        if (overwrite || _status is null)
        {
            _status = null;
            Complete(status, trailers);
        }
        if (status.StatusCode != StatusCode.OK)
        {
            CancelTransport();
        }
        return new RpcException(_status!.Value, _trailers ?? Metadata.Empty);
    }

    private void Complete(Status status, Metadata trailers)
    {
        if (_status is not null)
        {
            return;
        }
        _trailers = trailers;
        _status = status;
        GrpcTelemetry.StopClient(_activity, _method, status.StatusCode, _startTimestamp);
        if (!_headers.Task.IsCompleted)
        {
            if (status.StatusCode == StatusCode.OK)
            {
                _headers.TrySetResult(Metadata.Empty);
            }
            else
            {
                _headers.TrySetException(new RpcException(status, trailers));
                // Nobody may ever ask for the headers of a failed call.
                _ = _headers.Task.Exception;
            }
        }
        _requestContent?.Abort(new RpcException(status, trailers));
        Cleanup();
    }

    private void OnDeadline()
    {
        _deadlineExceeded = true;
        CancelTransport();
    }

    /// <summary>
    /// Stops the HTTP/2 stream: cancels what is pending, ends the request body and disposes the
    /// response, which resets the stream (RST_STREAM CANCEL) if the server has not finished it.
    /// </summary>
    private void CancelTransport()
    {
        try
        {
            _cts.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
        _requestContent?.Abort(new RpcException(_status ?? new Status(StatusCode.Cancelled, "Call canceled.")));
        _response?.Dispose();
    }

    private void Cleanup()
    {
        _userRegistration.Dispose();
        _parentRegistration.Dispose();
        _shutdownRegistration.Dispose();
        _deadlineCts?.Dispose();
        _response?.Dispose();
    }

    private sealed class ResponseStreamReader(GrpcCall<TRequest, TResponse> call) : IAsyncStreamReader<TResponse>
    {
        private readonly StrongBox<TResponse?> _current = new();

        public TResponse Current => _current.Value ?? throw new InvalidOperationException("No current message: call MoveNext first.");

        public Task<bool> MoveNext(CancellationToken cancellationToken) => call.MoveNextAsync(cancellationToken, _current);
    }

    private sealed class RequestStreamWriter(GrpcCall<TRequest, TResponse> call) : IClientStreamWriter<TRequest>
    {
        private readonly ArrayBufferWriter<byte> _buffer = new();
        private readonly MessageWriter _writer = new(call._channel.Options.MaxSendMessageSize, call._channel.Options.CompressionLevel ?? CompressionLevel.Fastest);
        private bool _completed;

        public WriteOptions? WriteOptions { get; set; }

        public Task WriteAsync(TRequest message) => WriteAsync(message, CancellationToken.None);

        public Task WriteAsync(TRequest message, CancellationToken cancellationToken)
        {
            ArgumentNullException.ThrowIfNull(message);
            if (_completed)
            {
                throw new InvalidOperationException("Can't write the message because the request stream is complete.");
            }
            return call.WriteAsync(message, _buffer, _writer, WriteOptions, cancellationToken);
        }

        public Task CompleteAsync()
        {
            _completed = true;
            call._requestContent?.Complete();
            return Task.CompletedTask;
        }
    }
}
