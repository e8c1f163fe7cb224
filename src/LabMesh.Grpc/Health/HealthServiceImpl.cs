using System.Threading.Channels;
using Grpc.Core;
using Grpc.Health.V1;
using ServingStatus = Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus;

namespace Grpc.HealthCheck;

/// <summary>
/// The standard <c>grpc.health.v1.Health</c> service: a table of serving statuses, one per service
/// name (the empty name stands for the whole server), answered by <c>Check</c> and streamed by <c>Watch</c>.
/// </summary>
/// <remarks>
/// Thread-safe. When hosted with <c>AddGrpcHealthChecks()</c> every mapped service and the server itself
/// turn <see cref="ServingStatus.Serving"/> once the application has started and
/// <see cref="ServingStatus.NotServing"/> as soon as it begins shutting down.
/// </remarks>
public class HealthServiceImpl : Health.V1.Health.HealthBase
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, ServingStatus> _statuses = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<ChannelWriter<ServingStatus>>> _watchers = new(StringComparer.Ordinal);
    private bool _watchesEnded;

    /// <summary>Sets a service's status and tells every watcher of that service.</summary>
    /// <param name="service">The service name; <c>""</c> for the whole server.</param>
    /// <param name="status">The new status.</param>
    public void SetStatus(string service, ServingStatus status)
    {
        ArgumentNullException.ThrowIfNull(service);
        lock (_gate)
        {
            _statuses[service] = status;
            NotifyLocked(service, status);
        }
    }

    /// <summary>Forgets a service: <c>Check</c> answers NOT_FOUND and watchers see SERVICE_UNKNOWN.</summary>
    /// <param name="service">The service name; <c>""</c> for the whole server.</param>
    public void ClearStatus(string service)
    {
        ArgumentNullException.ThrowIfNull(service);
        lock (_gate)
        {
            if (_statuses.Remove(service))
            {
                NotifyLocked(service, ServingStatus.ServiceUnknown);
            }
        }
    }

    /// <summary>Forgets every service, as <see cref="ClearStatus"/> does for one.</summary>
    public void ClearAll()
    {
        lock (_gate)
        {
            foreach (var service in _statuses.Keys)
            {
                NotifyLocked(service, ServingStatus.ServiceUnknown);
            }
            _statuses.Clear();
        }
    }

    /// <summary>Answers the service's current status, or fails with NOT_FOUND for a service with no status.</summary>
    public override Task<HealthCheckResponse> Check(HealthCheckRequest request, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        lock (_gate)
        {
            if (_statuses.TryGetValue(request.Service, out var status))
            {
                return Task.FromResult(new HealthCheckResponse { Status = status });
            }
        }
        return Task.FromException<HealthCheckResponse>(
            new RpcException(new Status(StatusCode.NotFound, $"Unknown service '{request.Service}'.")));
    }

    /// <summary>
    /// Streams the service's status: the current one at once (SERVICE_UNKNOWN when it has none), then every
    /// change, until the client cancels or the server shuts down.
    /// </summary>
    public override async Task Watch(HealthCheckRequest request, IServerStreamWriter<HealthCheckResponse> responseStream, ServerCallContext context)
    {
        ArgumentNullException.ThrowIfNull(request);
        ArgumentNullException.ThrowIfNull(responseStream);
        ArgumentNullException.ThrowIfNull(context);

        var service = request.Service;
        // One slot, newest wins: a slow watcher skips intermediate statuses but always ends up with the
        // latest, and a stalled client cannot make the server buffer without bound.
        var updates = Channel.CreateBounded<ServingStatus>(new BoundedChannelOptions(1)
        {
            FullMode = BoundedChannelFullMode.DropOldest,
            SingleReader = true,
        });

        ServingStatus current;
        lock (_gate)
        {
            // Read the status and subscribe under the same lock as SetStatus, so no change falls in between.
            current = _statuses.TryGetValue(service, out var status) ? status : ServingStatus.ServiceUnknown;
            if (_watchesEnded)
            {
                updates.Writer.TryComplete();
            }
            else
            {
                if (!_watchers.TryGetValue(service, out var list))
                {
                    _watchers[service] = list = [];
                }
                list.Add(updates.Writer);
            }
        }

        try
        {
            await responseStream.WriteAsync(new HealthCheckResponse { Status = current });
            var sent = current;
            while (await updates.Reader.WaitToReadAsync(context.CancellationToken))
            {
                while (updates.Reader.TryRead(out var next))
                {
                    if (next != sent)
                    {
                        await responseStream.WriteAsync(new HealthCheckResponse { Status = next });
                        sent = next;
                    }
                }
            }
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            // The client stopped watching: nothing left to do.
        }
        finally
        {
            lock (_gate)
            {
                if (_watchers.TryGetValue(service, out var list) && list.Remove(updates.Writer) && list.Count == 0)
                {
                    _watchers.Remove(service);
                }
            }
        }
    }

    /// <summary>How many Watch calls are subscribed right now (for diagnostics and tests).</summary>
    internal int WatchCount
    {
        get
        {
            lock (_gate)
            {
                return _watchers.Values.Sum(list => list.Count);
            }
        }
    }

    /// <summary>Sets a status only if the service has none yet (an explicit status always wins over a default).</summary>
    internal void SetDefaultStatus(string service, ServingStatus status)
    {
        lock (_gate)
        {
            if (_statuses.TryAdd(service, status))
            {
                NotifyLocked(service, status);
            }
        }
    }

    /// <summary>Turns every known status (and the server's own) NOT_SERVING; returns how many changed.</summary>
    internal int SetAllNotServing()
    {
        lock (_gate)
        {
            _statuses.TryAdd("", ServingStatus.NotServing);
            var serving = _statuses.Where(entry => entry.Value != ServingStatus.NotServing).Select(entry => entry.Key).ToList();
            foreach (var service in serving)
            {
                _statuses[service] = ServingStatus.NotServing;
                NotifyLocked(service, ServingStatus.NotServing);
            }
            return serving.Count;
        }
    }

    /// <summary>
    /// Ends every Watch stream once it has sent the latest status, and makes later Watch calls end after their
    /// first message, so open watches do not hold up the server's graceful shutdown.
    /// </summary>
    internal void EndWatches()
    {
        lock (_gate)
        {
            _watchesEnded = true;
            foreach (var writer in _watchers.Values.SelectMany(list => list))
            {
                writer.TryComplete();
            }
        }
    }

    private void NotifyLocked(string service, ServingStatus status)
    {
        if (_watchers.TryGetValue(service, out var list))
        {
            foreach (var writer in list)
            {
                writer.TryWrite(status);
            }
        }
    }
}
