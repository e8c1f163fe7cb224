using Grpc.Core;
using Grpc.Core.Internal;

namespace Grpc.AspNetCore.Server.Internal;

/// <summary>The request stream of a client- or duplex-streaming handler.</summary>
internal sealed class ServerStreamReader<TRequest>(HttpServerCallContext call, MessageReader reader, Marshaller<TRequest> marshaller) : IAsyncStreamReader<TRequest>
{
    private TRequest? _current;
    private bool _ended;

    public TRequest Current => _current ?? throw new InvalidOperationException("No current message: call MoveNext first.");

    public async Task<bool> MoveNext(CancellationToken cancellationToken)
    {
        if (_ended)
        {
            return false;
        }
        var callToken = call.CancellationToken;
        using var linked = cancellationToken.CanBeCanceled && callToken.CanBeCanceled
            ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, callToken)
            : null;
        var token = linked?.Token ?? (cancellationToken.CanBeCanceled ? cancellationToken : callToken);
        try
        {
            var (ok, message) = await reader.ReadAsync(marshaller.ContextualDeserializer, token).ConfigureAwait(false);
            if (!ok)
            {
                _ended = true;
                _current = default;
                return false;
            }
            _current = message;
            return true;
        }
        catch (OperationCanceledException) when (call.DeadlineExceeded)
        {
            throw new RpcException(new Status(StatusCode.DeadlineExceeded, "Deadline Exceeded"));
        }
        catch (Exception ex) when (ex is IOException || (ex is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            throw ClientGone.Exception(ex);
        }
    }
}

/// <summary>What a failed request-body read means on a server: the client went away.</summary>
internal static class ClientGone
{
    // Kestrel may fail the body read ("The client reset the request stream.") before RequestAborted fires,
    // so the read failure itself is the signal.
    public static RpcException Exception(Exception ex) =>
        new(new Status(StatusCode.Cancelled, "The client cancelled the call or went away.", ex));
}

/// <summary>The response stream of a server- or duplex-streaming handler.</summary>
internal sealed class ServerStreamWriter<TResponse>(HttpServerCallContext call, MessageWriter writer, Marshaller<TResponse> marshaller) : IServerStreamWriter<TResponse>
{
    public WriteOptions? WriteOptions
    {
        get => call.WriteOptions;
        set => call.WriteOptions = value;
    }

    public Task WriteAsync(TResponse message) => WriteAsync(message, CancellationToken.None);

    public Task WriteAsync(TResponse message, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(message);
        return call.WriteMessageAsync(message, marshaller, writer, flush: true, cancellationToken).AsTask();
    }
}
