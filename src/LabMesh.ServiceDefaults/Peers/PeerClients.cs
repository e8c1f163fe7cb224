using LabMesh.ServiceDefaults.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LabMesh.ServiceDefaults.Peers;

/// <summary>The generated stubs a service uses to call its peers, registered with Grpc.Net.ClientFactory.</summary>
public static class PeerClients
{
    private static readonly RpcClientTelemetryInterceptor ClientTelemetry = new();

    /// <summary>
    /// Registers <typeparamref name="TClient"/> (a generated <c>XxxClient</c>) with <c>AddGrpcClient</c>, to the
    /// address <paramref name="address"/> picks from <see cref="PeerOptions"/>, on a channel configured as
    /// <see cref="MeshChannels"/> configures every channel, retrying UNAVAILABLE for every method of
    /// <paramref name="grpcService"/> (so only for peers whose methods used are idempotent). A second registration
    /// of the same client (two services in one host) is a no-op.
    /// </summary>
    public static IServiceCollection AddPeerClient<TClient>(this IServiceCollection services, Func<PeerOptions, string> address, string grpcService)
        where TClient : class
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(address);
        if (services.Any(d => d.ServiceType == typeof(TClient)))
        {
            return services;
        }

        static string AddressOf(IServiceProvider provider, Func<PeerOptions, string> pick) =>
            pick(provider.GetRequiredService<IOptions<PeerOptions>>().Value);

        services.AddGrpcClient<TClient>((provider, options) => options.Address = new Uri(AddressOf(provider, address)))
            .ConfigurePrimaryHttpMessageHandler(MeshChannels.CreateHandler)
            .ConfigureChannel((provider, options) => MeshChannels.Configure(
                options, AddressOf(provider, address), MeshChannels.RetryIdempotent(grpcService), provider.GetRequiredService<ILoggerFactory>()))
            // The channel balances over its own connections and keeps their state (reconnect backoff, round-robin
            // position); HttpClientFactory's default two-minute handler rotation would throw that away and reconnect.
            .SetHandlerLifetime(Timeout.InfiniteTimeSpan)
            // rpc.client.call.duration; a no-op when nobody listens (LabMeshTelemetry).
            .AddInterceptor(() => ClientTelemetry);
        return services;
    }
}
