using Yarp.ReverseProxy.Forwarder;

namespace LabMesh.Gateway;

/// <summary>
/// YARP's HttpClient per cluster (its HttpClient configuration: multiple HTTP/2 connections, no proxy, no cookies)
/// with what that configuration has no key for: a connect timeout, so a replica that does not answer is given up on
/// (and the call moved, RefusedConnectionRetry) after 2 s, as nginx's grpc_connect_timeout did; and a connection
/// lifetime, so a name whose addresses change (compose's <c>--scale</c>, a restarted container) is resolved again.
/// </summary>
internal sealed class GatewayHttpClientFactory : ForwarderHttpClientFactory
{
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(2);

    public static readonly TimeSpan ConnectionLifetime = TimeSpan.FromMinutes(5);

    protected override void ConfigureHandler(ForwarderHttpClientContext context, SocketsHttpHandler handler)
    {
        base.ConfigureHandler(context, handler);
        handler.ConnectTimeout = ConnectTimeout;
        handler.PooledConnectionLifetime = ConnectionLifetime;
    }
}
