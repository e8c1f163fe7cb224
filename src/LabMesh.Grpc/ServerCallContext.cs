namespace Grpc.Core;

/// <summary>What a server handler knows about the call it is handling.</summary>
public abstract class ServerCallContext
{
    private Dictionary<object, object>? _userState;

    /// <summary>The method's full name, <c>/service/method</c>.</summary>
    public string Method => MethodCore;

    /// <summary>The <c>:authority</c> the client called.</summary>
    public string Host => HostCore;

    /// <summary>The caller's address, e.g. <c>ipv4:127.0.0.1:50312</c>.</summary>
    public string Peer => PeerCore;

    /// <summary>The call's deadline in UTC; <see cref="DateTime.MaxValue"/> when none.</summary>
    public DateTime Deadline => DeadlineCore;

    /// <summary>The headers the client sent (protocol headers removed).</summary>
    public Metadata RequestHeaders => RequestHeadersCore;

    /// <summary>Cancelled when the client cancels, the deadline passes or the connection drops.</summary>
    public CancellationToken CancellationToken => CancellationTokenCore;

    /// <summary>Trailers to send with the status.</summary>
    public Metadata ResponseTrailers => ResponseTrailersCore;

    /// <summary>The status to end the call with when the handler returns normally.</summary>
    public Status Status
    {
        get => StatusCore;
        set => StatusCore = value;
    }

    /// <summary>Options for response writes.</summary>
    public WriteOptions? WriteOptions
    {
        get => WriteOptionsCore;
        set => WriteOptionsCore = value;
    }

    /// <summary>State that interceptors and handlers share for this call.</summary>
    public IDictionary<object, object> UserState => UserStateCore;

    /// <summary>Sends the response headers now, before the first message.</summary>
    public Task WriteResponseHeadersAsync(Metadata responseHeaders) => WriteResponseHeadersAsyncCore(responseHeaders);

    /// <summary>Creates a token that passes this call's deadline and cancellation on to calls made while handling it.</summary>
    public ContextPropagationToken CreatePropagationToken(ContextPropagationOptions? options = null) =>
        new(Deadline, CancellationToken, options ?? ContextPropagationOptions.Default);

    /// <summary>Implementation of <see cref="Method"/>.</summary>
    protected abstract string MethodCore { get; }

    /// <summary>Implementation of <see cref="Host"/>.</summary>
    protected abstract string HostCore { get; }

    /// <summary>Implementation of <see cref="Peer"/>.</summary>
    protected abstract string PeerCore { get; }

    /// <summary>Implementation of <see cref="Deadline"/>.</summary>
    protected abstract DateTime DeadlineCore { get; }

    /// <summary>Implementation of <see cref="RequestHeaders"/>.</summary>
    protected abstract Metadata RequestHeadersCore { get; }

    /// <summary>Implementation of <see cref="CancellationToken"/>.</summary>
    protected abstract CancellationToken CancellationTokenCore { get; }

    /// <summary>Implementation of <see cref="ResponseTrailers"/>.</summary>
    protected abstract Metadata ResponseTrailersCore { get; }

    /// <summary>Implementation of <see cref="Status"/>.</summary>
    protected abstract Status StatusCore { get; set; }

    /// <summary>Implementation of <see cref="WriteOptions"/>.</summary>
    protected abstract WriteOptions? WriteOptionsCore { get; set; }

    /// <summary>Implementation of <see cref="UserState"/>.</summary>
    protected virtual IDictionary<object, object> UserStateCore => _userState ??= [];

    /// <summary>Implementation of <see cref="WriteResponseHeadersAsync"/>.</summary>
    protected abstract Task WriteResponseHeadersAsyncCore(Metadata responseHeaders);
}

/// <summary>Carries a server call's deadline and cancellation to the calls it makes.</summary>
public sealed class ContextPropagationToken
{
    internal ContextPropagationToken(DateTime deadline, CancellationToken cancellationToken, ContextPropagationOptions options)
    {
        ParentDeadline = deadline;
        ParentCancellationToken = cancellationToken;
        Options = options;
    }

    /// <summary>The parent call's deadline.</summary>
    public DateTime ParentDeadline { get; }

    /// <summary>The parent call's cancellation.</summary>
    public CancellationToken ParentCancellationToken { get; }

    /// <summary>What to propagate.</summary>
    public ContextPropagationOptions Options { get; }
}

/// <summary>What a <see cref="ContextPropagationToken"/> propagates.</summary>
public sealed class ContextPropagationOptions
{
    /// <summary>Propagate both deadline and cancellation.</summary>
    public static readonly ContextPropagationOptions Default = new();

    /// <summary>Creates options.</summary>
    public ContextPropagationOptions(bool propagateDeadline = true, bool propagateCancellation = true)
    {
        IsPropagateDeadline = propagateDeadline;
        IsPropagateCancellation = propagateCancellation;
    }

    /// <summary>Whether the deadline is propagated.</summary>
    public bool IsPropagateDeadline { get; }

    /// <summary>Whether cancellation is propagated.</summary>
    public bool IsPropagateCancellation { get; }
}
