using System.Diagnostics.CodeAnalysis;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Grpc.Net.Client;
using LabMesh.ServiceDefaults.Telemetry;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LabMesh.ServiceDefaults.Peers;

/// <summary>The generated stubs a service uses to call its peers: one per peer service, on a <see cref="MeshChannels"/> channel.</summary>
/// <remarks>
/// Not Grpc.Net.ClientFactory: of what it gives (a channel per client built from options, HttpClientFactory's handler
/// pipeline and rotation, interceptors, call-context propagation) LabMesh used the channel and one interceptor, and
/// turned the rotation off. Its client activator compiles an expression tree per client type, which loaded
/// System.Linq.Expressions (2.5 MB mapped, and its JIT'd code) into every replica for one constructor call; HttpClientFactory
/// added Microsoft.Extensions.Http and its logging handlers, which log nothing at the services' levels
/// (bench/README.md, "Idle memory: the runtime's settings and the assemblies a replica loads").
/// </remarks>
public static class PeerClients
{
    private static readonly RpcClientTelemetryInterceptor ClientTelemetry = new();

    /// <summary>
    /// Registers <typeparamref name="TClient"/> (a generated <c>XxxClient</c>) as a singleton on its own channel
    /// (<see cref="MeshChannels.Create"/>) to the address <paramref name="address"/> picks from
    /// <see cref="PeerOptions"/>, retrying UNAVAILABLE for every method of <paramref name="grpcService"/> (so only for
    /// peers whose methods used are idempotent), with <c>rpc.client.call.duration</c> recorded. The channel is made on
    /// first use and disposed with the service provider. A second registration of the same client (two services in
    /// one host) is a no-op.
    /// </summary>
    public static IServiceCollection AddPeerClient<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicConstructors)] TClient>(
        this IServiceCollection services, Func<PeerOptions, string> address, string grpcService)
        where TClient : ClientBase<TClient>
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(address);
        if (services.Any(d => d.ServiceType == typeof(TClient)))
        {
            return services;
        }

        services.AddSingleton(provider => new PeerChannel<TClient>(MeshChannels.Create(
            address(provider.GetRequiredService<IOptions<PeerOptions>>().Value),
            MeshChannels.RetryIdempotent(grpcService),
            loggerFactory: provider.GetRequiredService<ILoggerFactory>())));
        // A generated client is a thin, thread-safe wrapper of its call invoker: one serves every caller. Its
        // constructor (CallInvoker) is called by reflection once; ActivatorUtilities would compile an expression.
        services.AddSingleton(provider => (TClient)Activator.CreateInstance(
            typeof(TClient), provider.GetRequiredService<PeerChannel<TClient>>().Channel.Intercept(ClientTelemetry))!);
        return services;
    }

    /// <summary>The channel under one peer client, owned (and disposed) by the service provider.</summary>
    private sealed class PeerChannel<TClient>(GrpcChannel channel) : IDisposable
    {
        public GrpcChannel Channel { get; } = channel;

        public void Dispose() => Channel.Dispose();
    }
}
