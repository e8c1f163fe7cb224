using System.Globalization;
using Grpc.Core;
using Grpc.Core.Internal;
using Grpc.Net.Client.Configuration;

namespace Grpc.Net.Client.Internal;

/// <summary>
/// A unary or server-streaming call under a retry policy (gRFC A6). Each attempt is a fresh
/// <see cref="GrpcCall{TRequest, TResponse}"/>; an attempt that fails with a retryable status before
/// the server committed to it (sent response headers) is repeated after a jittered, exponentially
/// growing backoff, within the call's deadline. The attempt count is sent as
/// <c>grpc-previous-rpc-attempts</c> and shown in the final trailers.
/// </summary>
internal sealed class RetryingCall<TRequest, TResponse> : IDisposable
    where TRequest : class
    where TResponse : class
{
    private readonly GrpcChannel _channel;
    private readonly Method<TRequest, TResponse> _method;
    private readonly string? _host;
    private readonly CallOptions _options;
    private readonly RetryPolicy _policy;
    private readonly int _maxAttempts;
    private readonly TaskCompletionSource<Metadata> _headers = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private GrpcCall<TRequest, TResponse>? _attempt;
    private TResponse? _current;
    private TRequest? _request;
    private bool _replayable;
    private bool _disposed;

    public RetryingCall(GrpcChannel channel, Method<TRequest, TResponse> method, string? host, CallOptions options, RetryPolicy policy)
    {
        policy.Validate();
        _channel = channel;
        _method = method;
        _host = host;
        _options = options;
        _policy = policy;
        _maxAttempts = Math.Min(policy.MaxAttempts, Math.Max(1, channel.Options.MaxRetryAttempts));
        ResponseStream = new Reader(this);
    }

    public IAsyncStreamReader<TResponse> ResponseStream { get; }

    public Task<Metadata> ResponseHeadersAsync => _headers.Task;

    public int Attempts { get; private set; }

    public Status GetStatus() => (_attempt ?? throw new InvalidOperationException("The call has not started.")).GetStatus();

    public Metadata GetTrailers()
    {
        var trailers = (_attempt ?? throw new InvalidOperationException("The call has not started.")).GetTrailers();
        return WithAttempts(trailers);
    }

    public void Dispose()
    {
        _disposed = true;
        _attempt?.Dispose();
    }

    public async Task<TResponse> RunUnaryAsync(TRequest request)
    {
        var replayable = IsReplayable(request);
        while (true)
        {
            var attempt = StartAttempt();
            try
            {
                var response = await attempt.RunUnaryAsync(request).ConfigureAwait(false);
                RelayHeaders(attempt);
                return response;
            }
            catch (RpcException ex)
            {
                if (!replayable || !await ShouldRetryAsync(attempt, ex).ConfigureAwait(false))
                {
                    RelayHeaders(attempt);
                    throw new RpcException(ex.Status, WithAttempts(ex.Trailers));
                }
            }
        }
    }

    public void StartServerStreaming(TRequest request)
    {
        _request = request;
        _replayable = IsReplayable(request);
        StartAttempt().StartServerStreaming(request);
    }

    private async Task<bool> MoveNextAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var attempt = _attempt!;
            try
            {
                var ok = await attempt.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false);
                RelayHeaders(attempt);
                _current = ok ? attempt.ResponseStream.Current : default;
                return ok;
            }
            catch (RpcException ex)
            {
                if (!_replayable || !await ShouldRetryAsync(attempt, ex).ConfigureAwait(false))
                {
                    RelayHeaders(attempt);
                    throw new RpcException(ex.Status, WithAttempts(ex.Trailers));
                }
                StartAttempt().StartServerStreaming(_request!);
            }
        }
    }

    private GrpcCall<TRequest, TResponse> StartAttempt()
    {
        _attempt?.Dispose();
        _attempt = new GrpcCall<TRequest, TResponse>(_channel, _method, _host, _options) { PreviousAttempts = Attempts };
        Attempts++;
        return _attempt;
    }

    private bool IsReplayable(TRequest request) =>
        request is not Google.Protobuf.IMessage message || message.CalculateSize() <= _channel.Options.MaxRetryBufferPerCallSize;

    private async Task<bool> ShouldRetryAsync(GrpcCall<TRequest, TResponse> attempt, RpcException failure)
    {
        if (_disposed || attempt.Committed || Attempts >= _maxAttempts || !_policy.RetryableStatusCodes.Contains(failure.StatusCode))
        {
            return false;
        }
        if (_options.CancellationToken.IsCancellationRequested)
        {
            return false;
        }
        // The server may ask for a specific delay, or for no retry at all (a negative or malformed value).
        TimeSpan delay;
        var pushback = failure.Trailers.GetValue(GrpcProtocol.RetryPushbackHeader);
        if (pushback is not null)
        {
            if (!int.TryParse(pushback, NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
            {
                return false;
            }
            delay = TimeSpan.FromMilliseconds(ms);
        }
        else
        {
            var bound = _policy.InitialBackoff.TotalMilliseconds * Math.Pow(_policy.BackoffMultiplier, Attempts - 1);
            delay = TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * Math.Min(bound, _policy.MaxBackoff.TotalMilliseconds));
        }
        if (_options.Deadline is { } deadline && DateTime.UtcNow + delay >= deadline.ToUniversalTime())
        {
            return false;
        }
        try
        {
            await Task.Delay(delay, _options.CancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        return !_disposed;
    }

    private void RelayHeaders(GrpcCall<TRequest, TResponse> attempt)
    {
        if (_headers.Task.IsCompleted)
        {
            return;
        }
        var headers = attempt.ResponseHeadersAsync;
        if (headers.IsCompletedSuccessfully)
        {
            _headers.TrySetResult(headers.Result);
        }
        else if (headers.IsFaulted)
        {
            _headers.TrySetException(headers.Exception!.InnerExceptions);
            _ = _headers.Task.Exception;
        }
    }

    private Metadata WithAttempts(Metadata trailers)
    {
        if (Attempts <= 1)
        {
            return trailers;
        }
        var copy = new Metadata();
        foreach (var entry in trailers)
        {
            copy.Add(entry);
        }
        copy.Add(GrpcProtocol.PreviousAttemptsHeader, (Attempts - 1).ToString(CultureInfo.InvariantCulture));
        return copy;
    }

    private sealed class Reader(RetryingCall<TRequest, TResponse> call) : IAsyncStreamReader<TResponse>
    {
        public TResponse Current => call._current ?? throw new InvalidOperationException("No current message: call MoveNext first.");

        public Task<bool> MoveNext(CancellationToken cancellationToken) => call.MoveNextAsync(cancellationToken);
    }
}
