using Yarp.ReverseProxy.Forwarder;

namespace LabMesh.Gateway;

/// <summary>
/// A call whose replica could not be connected to is sent to another replica of the cluster, once: the request had
/// not left the gateway (no connection, so no byte of it was sent), so no call runs twice. This is nginx's
/// <c>grpc_next_upstream error</c> with two tries; YARP does not retry by itself, and its pipeline may call the
/// forwarder again when nothing of the response was sent (dotnet/yarp#56). Passive health (appsettings.json) then
/// keeps new calls off the failed replica for a while. Any other failure (a replica that dies with the call in
/// flight, a stream cut) is answered as it happened, never retried.
/// </summary>
internal sealed class RefusedConnectionRetry(RequestDelegate next)
{
    private const int Tries = 2;

    public async Task InvokeAsync(HttpContext context)
    {
        var proxy = context.GetReverseProxyFeature();
        // Load balancing narrows AvailableDestinations to the one it picked: the others are taken from before.
        var candidates = proxy.AvailableDestinations;
        for (var attempt = 1; ; attempt++)
        {
            proxy.AvailableDestinations = candidates;
            await next(context);
            var error = context.GetForwarderErrorFeature();
            if (error is null || attempt == Tries || context.Response.HasStarted || !NotSent(error))
            {
                return;
            }

            var failed = proxy.ProxiedDestination;
            candidates = [.. candidates.Where(d => !ReferenceEquals(d, failed))];
            if (candidates.Count == 0)
            {
                return;
            }

            context.Features.Set<IForwarderErrorFeature>(null);
            context.Response.Clear();
            context.Response.StatusCode = StatusCodes.Status200OK;
        }
    }

    /// <summary>No connection to the destination: the request was not sent.</summary>
    private static bool NotSent(IForwarderErrorFeature error) =>
        error.Error == ForwarderError.Request && error.Exception is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError };
}
