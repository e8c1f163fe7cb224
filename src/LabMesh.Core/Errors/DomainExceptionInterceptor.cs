using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Grpc.Core.Interceptors;
using GrpcStatus = Grpc.Core.Status;
using RpcStatus = Google.Rpc.Status;

namespace LabMesh.Core.Errors;

/// <summary>
/// The one server interceptor that turns a <see cref="DomainException"/> thrown by a handler (of any
/// of the four call kinds) into its gRPC status, with a <c>google.rpc.Status</c> in the
/// <c>grpc-status-details-bin</c> trailer:
/// <code>
/// NotFoundException           NOT_FOUND            ResourceInfo
/// InvalidArgumentException    INVALID_ARGUMENT     BadRequest (one field violation per bad field, at most
///                                                  MaxFieldViolations and a last one counting the rest)
/// IllegalTransitionException  FAILED_PRECONDITION  PreconditionFailure (one STATE_TRANSITION violation
///                                                  whose description lists the allowed moves)
///                                                  + ErrorInfo ILLEGAL_TRANSITION {from, to, allowed}
/// StaleEtagException          ABORTED              ErrorInfo STALE_ETAG {resource_type, resource_name}
/// AlreadyExistsException      ALREADY_EXISTS       ResourceInfo
/// any other DomainException   FAILED_PRECONDITION  (none)
/// BackendUnavailableException, UNAVAILABLE          RetryInfo (1 s): a backing store is down for now,
/// a transient NpgsqlException                       so the caller retries rather than gives up
/// a peer's UNAVAILABLE         UNAVAILABLE          trailer grpc-retry-pushback-ms: -1 (retried already)
/// </code>
/// Any other exception passes through untouched (and is UNKNOWN to the caller). Nothing is logged: domain errors are the caller's
/// mistakes, and their messages may carry request data.
/// </summary>
public sealed class DomainExceptionInterceptor : Interceptor
{
    /// <summary>The trailer that carries the serialized <c>google.rpc.Status</c>.</summary>
    public const string StatusDetailsTrailer = "grpc-status-details-bin";

    /// <summary>The <c>google.rpc.ErrorInfo</c> domain of LabMesh's errors.</summary>
    public const string ErrorDomain = "labmesh.dev";

    /// <inheritdoc />
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(
        TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context);
        }
        catch (DomainException ex)
        {
            throw ToRpcException(ex);
        }
        catch (Exception ex) when (ToUnavailable(ex) is { } unavailable)
        {
            throw unavailable;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
        {
            throw NotToBeRetried(ex);
        }
    }

    /// <inheritdoc />
    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(requestStream, context);
        }
        catch (DomainException ex)
        {
            throw ToRpcException(ex);
        }
        catch (Exception ex) when (ToUnavailable(ex) is { } unavailable)
        {
            throw unavailable;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
        {
            throw NotToBeRetried(ex);
        }
    }

    /// <inheritdoc />
    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(
        TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(request, responseStream, context);
        }
        catch (DomainException ex)
        {
            throw ToRpcException(ex);
        }
        catch (Exception ex) when (ToUnavailable(ex) is { } unavailable)
        {
            throw unavailable;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
        {
            throw NotToBeRetried(ex);
        }
    }

    /// <inheritdoc />
    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(
        IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            await continuation(requestStream, responseStream, context);
        }
        catch (DomainException ex)
        {
            throw ToRpcException(ex);
        }
        catch (Exception ex) when (ToUnavailable(ex) is { } unavailable)
        {
            throw unavailable;
        }
        catch (RpcException ex) when (ex.StatusCode == StatusCode.Unavailable)
        {
            throw NotToBeRetried(ex);
        }
    }

    /// <summary>
    /// The <see cref="RpcException"/> a domain exception becomes: its code, the exception's message as
    /// <c>grpc-message</c>, and the details in the <c>grpc-status-details-bin</c> trailer.
    /// The domain exception is kept as the status's debug exception (never sent).
    /// </summary>
    public static RpcException ToRpcException(DomainException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        var (code, details) = Describe(exception);
        var message = Clip(exception.Message, MaxMessageLength);
        var rpcStatus = new RpcStatus { Code = (int)code, Message = message };
        foreach (var detail in details)
        {
            rpcStatus.Details.Add(Any.Pack(detail));
        }
        var trailers = new Metadata { { StatusDetailsTrailer, rpcStatus.ToByteArray() } };
        return new RpcException(new GrpcStatus(code, message, exception), trailers);
    }

    /// <summary>
    /// The most field violations sent with one error. Trailers travel in an HTTP/2 header block that
    /// clients cap (64 KiB by default in .NET): a request with 100,000 bad entries must still get its
    /// INVALID_ARGUMENT, not a reset stream.
    /// </summary>
    public const int MaxFieldViolations = 50;

    /// <summary>
    /// The longest <c>grpc-message</c> sent, and the longest resource name repeated in details: a name is
    /// whatever the caller sent (a 3 MiB id must still get its NOT_FOUND, not a reset stream).
    /// </summary>
    public const int MaxMessageLength = 2048;

    private const int MaxNameLength = 256;

    private static string Clip(string text, int max) => text.Length <= max ? text : text[..max] + "...";

    private static BadRequest BadRequestOf(IReadOnlyList<FieldViolation> violations)
    {
        var request = new BadRequest();
        request.FieldViolations.Add(violations.Take(MaxFieldViolations)
            .Select(v => new BadRequest.Types.FieldViolation { Field = Clip(v.Field, MaxNameLength), Description = Clip(v.Description, MaxMessageLength) }));
        if (violations.Count > MaxFieldViolations)
        {
            request.FieldViolations.Add(new BadRequest.Types.FieldViolation
            {
                Field = violations[MaxFieldViolations].Field,
                Description = $"and {violations.Count - MaxFieldViolations} more violations, not listed: fix these and send again.",
            });
        }

        return request;
    }

    /// <summary>
    /// A peer's UNAVAILABLE relayed to this call's caller, marked <c>grpc-retry-pushback-ms: -1</c> (gRFC A6:
    /// do not retry). The call to the peer was retried already (MeshChannels.RetryIdempotent); a caller that
    /// retried too would multiply the attempts at every hop (five here times five there) and run past its
    /// deadline, so it would see DEADLINE_EXCEEDED instead of the UNAVAILABLE that says what happened.
    /// </summary>
    public static RpcException NotToBeRetried(RpcException exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        return new RpcException(exception.Status, new Metadata { { RetryPushbackTrailer, "-1" } });
    }

    /// <summary>The trailer by which a server tells a gRPC client's retry policy when to retry, or (negative) not to.</summary>
    public const string RetryPushbackTrailer = "grpc-retry-pushback-ms";

    /// <summary>
    /// UNAVAILABLE with a <c>RetryInfo</c> when <paramref name="exception"/> says a backing store cannot be
    /// reached right now (Redis down or restarting, PostgreSQL unreachable); null for any other exception.
    /// The store's own message stays on the server: it names hosts and ports.
    /// </summary>
    public static RpcException? ToUnavailable(Exception exception)
    {
        var store = exception switch
        {
            BackendUnavailableException e => e.Backend,
            Npgsql.NpgsqlException { IsTransient: true } => "PostgreSQL",
            _ => null,
        };
        if (store is null)
        {
            return null;
        }
        var message = $"{store} cannot be reached right now; retry shortly.";
        var rpcStatus = new RpcStatus
        {
            Code = (int)StatusCode.Unavailable,
            Message = message,
            Details = { Any.Pack(new RetryInfo { RetryDelay = Duration.FromTimeSpan(TimeSpan.FromSeconds(1)) }) },
        };
        var trailers = new Metadata { { StatusDetailsTrailer, rpcStatus.ToByteArray() } };
        return new RpcException(new GrpcStatus(StatusCode.Unavailable, message, exception), trailers);
    }

    private static (StatusCode Code, IMessage[] Details) Describe(DomainException exception) => exception switch
    {
        NotFoundException e => (StatusCode.NotFound,
        [
            new ResourceInfo { ResourceType = e.ResourceType, ResourceName = Clip(e.ResourceName, MaxNameLength), Description = Clip(e.Message, MaxMessageLength) },
        ]),
        InvalidArgumentException e => (StatusCode.InvalidArgument, [BadRequestOf(e.Violations)]),
        IllegalTransitionException e => (StatusCode.FailedPrecondition,
        [
            new PreconditionFailure
            {
                Violations =
                {
                    new PreconditionFailure.Types.Violation
                    {
                        Type = "STATE_TRANSITION",
                        Subject = e.Subject,
                        Description = e.Allowed.Count == 0
                            ? $"{e.From} is terminal: no move is allowed."
                            : $"Allowed from {e.From}: {string.Join(", ", e.Allowed)}.",
                    },
                },
            },
            new ErrorInfo
            {
                Reason = "ILLEGAL_TRANSITION",
                Domain = ErrorDomain,
                Metadata =
                {
                    ["from"] = e.From,
                    ["to"] = e.To,
                    ["allowed"] = string.Join(",", e.Allowed),
                },
            },
        ]),
        StaleEtagException e => (StatusCode.Aborted,
        [
            new ErrorInfo
            {
                Reason = "STALE_ETAG",
                Domain = ErrorDomain,
                Metadata = { ["resource_type"] = e.ResourceType, ["resource_name"] = Clip(e.ResourceName, MaxNameLength) },
            },
        ]),
        AlreadyExistsException e => (StatusCode.AlreadyExists,
        [
            new ResourceInfo { ResourceType = e.ResourceType, ResourceName = Clip(e.ResourceName, MaxNameLength), Description = Clip(e.Message, MaxMessageLength) },
        ]),
        OutOfRangeException e => (StatusCode.OutOfRange,
        [
            BadRequestOf([new FieldViolation(e.Field, e.Message)]),
            new ErrorInfo { Reason = e.Reason, Domain = ErrorDomain },
        ]),
        ResourceExhaustedException e => (StatusCode.ResourceExhausted,
        [
            new ErrorInfo { Reason = e.Reason, Domain = ErrorDomain, Metadata = { e.Metadata.ToDictionary() } },
        ]),
        // A kind added later without a mapping is still the caller's mistake, never UNKNOWN.
        _ => (StatusCode.FailedPrecondition, []),
    };
}
