namespace Grpc.Core;

/// <summary>Options for one client call: headers, deadline, cancellation, write options, propagation.</summary>
public readonly struct CallOptions
{
    /// <summary>Creates call options.</summary>
    public CallOptions(
        Metadata? headers = null,
        DateTime? deadline = null,
        CancellationToken cancellationToken = default,
        WriteOptions? writeOptions = null,
        ContextPropagationToken? propagationToken = null)
    {
        Headers = headers;
        Deadline = deadline;
        CancellationToken = cancellationToken;
        WriteOptions = writeOptions;
        PropagationToken = propagationToken;
    }

    /// <summary>Headers to send.</summary>
    public Metadata? Headers { get; }

    /// <summary>The deadline (UTC); null for none.</summary>
    public DateTime? Deadline { get; }

    /// <summary>Cancels the call.</summary>
    public CancellationToken CancellationToken { get; }

    /// <summary>Options for request writes.</summary>
    public WriteOptions? WriteOptions { get; }

    /// <summary>A parent server call's deadline and cancellation to inherit.</summary>
    public ContextPropagationToken? PropagationToken { get; }

    /// <summary>Returns a copy with other headers.</summary>
    public CallOptions WithHeaders(Metadata headers) => new(headers, Deadline, CancellationToken, WriteOptions, PropagationToken);

    /// <summary>Returns a copy with another deadline.</summary>
    public CallOptions WithDeadline(DateTime deadline) => new(Headers, deadline, CancellationToken, WriteOptions, PropagationToken);

    /// <summary>Returns a copy with another cancellation token.</summary>
    public CallOptions WithCancellationToken(CancellationToken cancellationToken) => new(Headers, Deadline, cancellationToken, WriteOptions, PropagationToken);

    /// <summary>Returns a copy with other write options.</summary>
    public CallOptions WithWriteOptions(WriteOptions writeOptions) => new(Headers, Deadline, CancellationToken, writeOptions, PropagationToken);

    /// <summary>Returns a copy with a propagation token.</summary>
    public CallOptions WithPropagationToken(ContextPropagationToken propagationToken) => new(Headers, Deadline, CancellationToken, WriteOptions, propagationToken);
}
