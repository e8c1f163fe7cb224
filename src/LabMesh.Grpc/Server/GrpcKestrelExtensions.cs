using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Microsoft.AspNetCore.Hosting;

/// <summary>Kestrel settings for gRPC servers.</summary>
public static class GrpcKestrelExtensions
{
    /// <summary>
    /// Makes Kestrel send an HTTP/2 PING on a connection that has received nothing for
    /// <paramref name="pingDelay"/> (default 60 s) and close it when the acknowledgement does not come
    /// within <paramref name="pingTimeout"/> (default 20 s). Kestrel pings no one by default, so a client
    /// that vanished without closing its connection (a killed pod, a dropped NAT entry) would hold its
    /// streams, such as a health Watch, until TCP gives up; with this, their handlers are cancelled.
    /// </summary>
    public static KestrelServerOptions ConfigureGrpcKeepAlive(this KestrelServerOptions options, TimeSpan? pingDelay = null, TimeSpan? pingTimeout = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Limits.Http2.KeepAlivePingDelay = pingDelay ?? TimeSpan.FromSeconds(60);
        options.Limits.Http2.KeepAlivePingTimeout = pingTimeout ?? TimeSpan.FromSeconds(20);
        return options;
    }
}
