using System.Globalization;
using System.IO.Compression;
using System.Net;
using Grpc.Core;
using Grpc.Core.Internal;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.Extensions.Logging;

namespace Grpc.AspNetCore.Server.Internal;

/// <summary>
/// One server call on Kestrel. It owns the response: headers go out with the first message (or
/// never, for a Trailers-Only answer), the status always goes out exactly once, and after the
/// deadline has answered the call nothing else is written.
/// </summary>
internal sealed class HttpServerCallContext : ServerCallContext, IDisposable
{
    private readonly HttpContext _http;
    private readonly IMethod _method;
    private readonly ServerOptionsSnapshot _options;
    private readonly ILogger _logger;
    private Metadata? _requestHeaders;
    private Metadata? _responseTrailers;
    private Status _status = Status.DefaultSuccess;
    private WriteOptions? _writeOptions;
    private DateTime _deadline = DateTime.MaxValue;
    private CancellationTokenSource? _deadlineCts;
    private CancellationTokenSource? _linkedCts;
    private CancellationTokenRegistration _deadlineRegistration;
    private SemaphoreSlim? _writeLock;
    private bool _headersSent;
    private bool _completed;
    private bool _deadlineExceeded;

    public HttpServerCallContext(HttpContext http, IMethod method, ServerOptionsSnapshot options, ILogger logger)
    {
        _http = http;
        _method = method;
        _options = options;
        _logger = logger;
    }

    public HttpContext HttpContext => _http;

    /// <summary>The encoding of incoming messages (null for identity).</summary>
    public string? RequestEncoding { get; private set; }

    /// <summary>The encoding responses are compressed with (null for none).</summary>
    public string? ResponseEncoding { get; private set; }

    public ServerOptionsSnapshot Options => _options;

    public bool DeadlineExceeded => _deadlineExceeded;

    /// <summary>The status code that went on the wire (UNKNOWN until one did).</summary>
    public StatusCode SentStatusCode { get; private set; } = StatusCode.Unknown;

    protected override string MethodCore => _method.FullName;

    protected override string HostCore => _http.Request.Host.Value ?? "";

    protected override string PeerCore => FormatPeer(_http.Connection.RemoteIpAddress, _http.Connection.RemotePort);

    protected override DateTime DeadlineCore => _deadline;

    protected override Metadata RequestHeadersCore => _requestHeaders ??= ReadRequestHeaders();

    protected override CancellationToken CancellationTokenCore => _linkedCts?.Token ?? _http.RequestAborted;

    protected override Metadata ResponseTrailersCore => _responseTrailers ??= [];

    protected override Status StatusCore
    {
        get => _status;
        set => _status = value;
    }

    protected override WriteOptions? WriteOptionsCore
    {
        get => _writeOptions;
        set => _writeOptions = value;
    }

    /// <summary>
    /// Validates the request's protocol headers and arms the deadline. On a bad request it answers
    /// the call itself and returns false.
    /// </summary>
    public bool TryStart()
    {
        var request = _http.Request;
        if (!GrpcProtocol.IsGrpcContentType(request.ContentType))
        {
            // PROTOCOL-HTTP2.md: a server SHOULD answer a non-gRPC content-type with HTTP 415, so that
            // non-gRPC clients do not read the answer as a gRPC status.
            _http.Response.StatusCode = StatusCodes.Status415UnsupportedMediaType;
            WriteTrailersOnly(new Status(StatusCode.Unimplemented,
                $"Content-Type '{request.ContentType}' is not supported; gRPC calls use '{GrpcProtocol.ContentType}'."));
            return false;
        }
        if (request.Protocol != "HTTP/2" && request.Protocol != "HTTP/3")
        {
            _http.Response.StatusCode = StatusCodes.Status426UpgradeRequired;
            _http.Response.Headers.Connection = "Upgrade";
            _http.Response.Headers.Upgrade = "HTTP/2";
            WriteTrailersOnly(new Status(StatusCode.Internal, $"Request protocol '{request.Protocol}' is not supported; gRPC needs HTTP/2."));
            return false;
        }

        var encoding = request.Headers[GrpcProtocol.EncodingHeader].ToString();
        if (encoding.Length > 0 && encoding != GrpcProtocol.IdentityEncoding)
        {
            if (!GrpcCompression.IsSupported(encoding))
            {
                WriteTrailersOnly(new Status(StatusCode.Unimplemented,
                    $"Unsupported grpc-encoding value '{encoding}'. Supported encodings: {GrpcCompression.AcceptEncoding}"),
                    acceptEncoding: true);
                return false;
            }
            RequestEncoding = encoding;
        }

        var accept = request.Headers[GrpcProtocol.AcceptEncodingHeader].ToString();
        if (_options.ResponseCompressionAlgorithm is { } algorithm && GrpcCompression.Accepts(accept, algorithm))
        {
            ResponseEncoding = algorithm;
        }

        var timeoutHeader = request.Headers[GrpcProtocol.TimeoutHeader];
        if (timeoutHeader.Count > 0)
        {
            if (!GrpcProtocol.TryParseTimeout(timeoutHeader.ToString(), out var timeout))
            {
                WriteTrailersOnly(new Status(StatusCode.InvalidArgument,
                    $"Malformed grpc-timeout header '{timeoutHeader}': expected 1 to 8 digits and a unit of H, M, S, m, u or n."));
                return false;
            }
            ArmDeadline(timeout);
        }

        if (_http.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } bodySize)
        {
            // Message size is bounded per message (MaxReceiveMessageSize), not per stream.
            bodySize.MaxRequestBodySize = null;
        }
        return true;
    }

    /// <summary>Turns off Kestrel's minimum body data rate: a streaming call may be idle for long.</summary>
    public void DisableMinimumDataRate()
    {
        if (_http.Features.Get<IHttpMinRequestBodyDataRateFeature>() is { } rate)
        {
            rate.MinDataRate = null;
        }
    }

    private void ArmDeadline(TimeSpan timeout)
    {
        // CancellationTokenSource accepts at most about 49 days; a longer deadline is no deadline in practice.
        var max = TimeSpan.FromMilliseconds(uint.MaxValue - 1);
        if (timeout >= max)
        {
            return;
        }
        _deadline = DateTime.UtcNow + timeout;
        _writeLock = new SemaphoreSlim(1, 1);
        _deadlineCts = new CancellationTokenSource();
        _linkedCts = CancellationTokenSource.CreateLinkedTokenSource(_http.RequestAborted, _deadlineCts.Token);
        _deadlineRegistration = _deadlineCts.Token.UnsafeRegister(static state => _ = ((HttpServerCallContext)state!).OnDeadlineAsync(), this);
        _deadlineCts.CancelAfter(timeout);
    }

    private async Task OnDeadlineAsync()
    {
        await _writeLock!.WaitAsync().ConfigureAwait(false);
        try
        {
            if (_completed)
            {
                return;
            }
            _deadlineExceeded = true;
            Log.DeadlineExceeded(_logger, _method.FullName);
            WriteStatus(new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded"));
            _completed = true;
            await _http.Response.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception ex)
        {
            Log.DeadlineCompletionFailed(_logger, _method.FullName, ex);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    protected override async Task WriteResponseHeadersAsyncCore(Metadata responseHeaders)
    {
        ArgumentNullException.ThrowIfNull(responseHeaders);
        await EnterWriteAsync().ConfigureAwait(false);
        try
        {
            if (_headersSent)
            {
                throw new InvalidOperationException("Response headers have already been sent.");
            }
            foreach (var entry in responseHeaders)
            {
                if (GrpcProtocol.IsReservedHeader(entry.Key))
                {
                    continue;
                }
                AppendHeader(_http.Response.Headers, entry);
            }
            SendHeaders();
            await _http.Response.BodyWriter.FlushAsync(CancellationTokenCore).ConfigureAwait(false);
        }
        finally
        {
            ExitWrite();
        }
    }

    /// <summary>Writes one response message; flushes unless <paramref name="flush"/> is false or the write options ask to buffer.</summary>
    public async ValueTask WriteMessageAsync<T>(T message, Marshaller<T> marshaller, MessageWriter writer, bool flush, CancellationToken cancellationToken)
    {
        await EnterWriteAsync().ConfigureAwait(false);
        try
        {
            if (_http.RequestAborted.IsCancellationRequested)
            {
                throw new RpcException(new Status(StatusCode.Cancelled, "The client cancelled the call or went away."));
            }
            if (!_headersSent)
            {
                SendHeaders();
            }
            var options = _writeOptions ?? WriteOptions.Default;
            var encoding = ResponseEncoding is not null && (options.Flags & WriteFlags.NoCompress) == 0 ? ResponseEncoding : null;
            writer.Write(_http.Response.BodyWriter, message, marshaller.ContextualSerializer, encoding);
            if (flush && (options.Flags & WriteFlags.BufferHint) == 0)
            {
                var result = await _http.Response.BodyWriter.FlushAsync(cancellationToken).ConfigureAwait(false);
                if (result.IsCanceled || result.IsCompleted)
                {
                    throw new RpcException(new Status(StatusCode.Cancelled, "The client cancelled the call or went away."));
                }
            }
        }
        finally
        {
            ExitWrite();
        }
    }

    /// <summary>Ends the call with its status, unless the deadline already did.</summary>
    public async ValueTask CompleteAsync()
    {
        await EnterWriteAsync(allowCompleted: true).ConfigureAwait(false);
        try
        {
            if (_completed)
            {
                return;
            }
            _completed = true;
            WriteStatus(_status);
        }
        finally
        {
            ExitWrite();
        }
    }

    /// <summary>Sets the status (and trailers) a failed handler ends with.</summary>
    public void SetError(Exception exception)
    {
        switch (exception)
        {
            case RpcException rpc:
                _status = rpc.Status;
                foreach (var entry in rpc.Trailers)
                {
                    ResponseTrailersCore.Add(entry);
                }
                if (rpc.StatusCode is StatusCode.Unknown or StatusCode.Internal or StatusCode.DataLoss)
                {
                    Log.HandlerFailedWithStatus(_logger, _method.FullName, rpc.StatusCode, rpc);
                }
                break;
            case OperationCanceledException when _deadlineExceeded:
                _status = new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded");
                break;
            case Exception when _http.RequestAborted.IsCancellationRequested:
                _status = new Status(StatusCode.Cancelled, "The call was cancelled by the client.");
                Log.ClientWentAway(_logger, _method.FullName);
                break;
            default:
                Log.HandlerThrew(_logger, _method.FullName, exception);
                _status = new Status(StatusCode.Unknown,
                    _options.EnableDetailedErrors ? $"Exception was thrown by handler. {exception.GetType().Name}: {exception.Message}" : "Exception was thrown by handler.",
                    exception);
                break;
        }
    }

    public void Dispose()
    {
        _deadlineRegistration.Dispose();
        _linkedCts?.Dispose();
        _deadlineCts?.Dispose();
        _writeLock?.Dispose();
    }

    private ValueTask EnterWriteAsync(bool allowCompleted = false)
    {
        if (_writeLock is null)
        {
            CheckNotCompleted(allowCompleted);
            return ValueTask.CompletedTask;
        }
        return EnterLockedAsync(allowCompleted);
    }

    private async ValueTask EnterLockedAsync(bool allowCompleted)
    {
        await _writeLock!.WaitAsync().ConfigureAwait(false);
        try
        {
            CheckNotCompleted(allowCompleted);
        }
        catch
        {
            _writeLock.Release();
            throw;
        }
    }

    private void CheckNotCompleted(bool allowCompleted)
    {
        if (_completed && !allowCompleted)
        {
            throw _deadlineExceeded
                ? new RpcException(new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded"))
                : new InvalidOperationException("The call is already complete; nothing more can be written.");
        }
    }

    private void ExitWrite() => _writeLock?.Release();

    private void SendHeaders()
    {
        var response = _http.Response;
        response.ContentType = GrpcProtocol.ContentType;
        if (ResponseEncoding is not null)
        {
            response.Headers[GrpcProtocol.EncodingHeader] = ResponseEncoding;
        }
        response.Headers[GrpcProtocol.AcceptEncodingHeader] = GrpcCompression.AcceptEncoding;
        _headersSent = true;
    }

    private void WriteStatus(Status status)
    {
        SentStatusCode = status.StatusCode;
        if (!_headersSent)
        {
            WriteTrailersOnly(status);
            return;
        }
        var response = _http.Response;
        response.AppendTrailer(GrpcProtocol.StatusHeader, ((int)status.StatusCode).ToString(CultureInfo.InvariantCulture));
        if (status.Detail.Length > 0)
        {
            response.AppendTrailer(GrpcProtocol.MessageHeader, GrpcProtocol.PercentEncode(status.Detail));
        }
        if (_responseTrailers is not null)
        {
            foreach (var entry in _responseTrailers)
            {
                if (GrpcProtocol.IsReservedHeader(entry.Key))
                {
                    continue;
                }
                response.AppendTrailer(entry.Key, entry.IsBinary ? GrpcProtocol.EncodeBinaryHeader(entry.ValueBytes) : entry.Value);
            }
        }
    }

    /// <summary>A Trailers-Only answer: the status in the one HEADERS frame, no body.</summary>
    private void WriteTrailersOnly(Status status, bool acceptEncoding = false)
    {
        SentStatusCode = status.StatusCode;
        var headers = _http.Response.Headers;
        if (_http.Response.StatusCode == StatusCodes.Status200OK)
        {
            _http.Response.ContentType = GrpcProtocol.ContentType;
        }
        headers[GrpcProtocol.StatusHeader] = ((int)status.StatusCode).ToString(CultureInfo.InvariantCulture);
        if (status.Detail.Length > 0)
        {
            headers[GrpcProtocol.MessageHeader] = GrpcProtocol.PercentEncode(status.Detail);
        }
        if (acceptEncoding)
        {
            headers[GrpcProtocol.AcceptEncodingHeader] = GrpcCompression.AcceptEncoding;
        }
        if (_responseTrailers is not null)
        {
            foreach (var entry in _responseTrailers)
            {
                if (!GrpcProtocol.IsReservedHeader(entry.Key))
                {
                    AppendHeader(headers, entry);
                }
            }
        }
        _headersSent = true;
        _completed = true;
    }

    private static void AppendHeader(IHeaderDictionary headers, Metadata.Entry entry) =>
        headers.Append(entry.Key, entry.IsBinary ? GrpcProtocol.EncodeBinaryHeader(entry.ValueBytes) : entry.Value);

    private Metadata ReadRequestHeaders()
    {
        var metadata = new Metadata();
        foreach (var header in _http.Request.Headers)
        {
            // Kestrel names known headers in canonical case ("Content-Type"); metadata keys are lower-case.
            var key = header.Key.ToLowerInvariant();
            if (GrpcProtocol.IsReservedHeader(key))
            {
                continue;
            }
            foreach (var value in header.Value)
            {
                if (value is not null && !GrpcProtocol.TryAddHeaderToMetadata(metadata, key, value))
                {
                    Log.BadRequestHeader(_logger, key);
                }
            }
        }
        return metadata;
    }

    private static string FormatPeer(IPAddress? address, int port) => address switch
    {
        null => "unknown",
        { AddressFamily: System.Net.Sockets.AddressFamily.InterNetworkV6 } => $"ipv6:[{address}]:{port}",
        _ => $"ipv4:{address}:{port}",
    };
}

/// <summary>The server options a call reads, resolved once per service.</summary>
internal sealed record ServerOptionsSnapshot(
    int? MaxReceiveMessageSize,
    int? MaxSendMessageSize,
    bool EnableDetailedErrors,
    string? ResponseCompressionAlgorithm,
    CompressionLevel ResponseCompressionLevel);
