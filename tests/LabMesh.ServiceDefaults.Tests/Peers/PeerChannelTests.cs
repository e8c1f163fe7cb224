using System.Net;
using Grpc.Core;
using Grpc.Health.V1;
using LabMesh.Security.Identity;
using LabMesh.ServiceDefaults.Peers;
using LabMesh.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LabMesh.ServiceDefaults.Tests.Peers;

/// <summary>
/// What a peer sees of a call one LabMesh service makes for its caller (PeerChannel.Options over a
/// MeshChannels channel): the earlier of the caller's deadline and the service's own timeout, as the
/// peer's deadline, the service's token and the team it acts for.
/// </summary>
public sealed class PeerChannelTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task PeerCall_CarriesTheEarlierOfTheCallersDeadlineAndItsOwnTimeout_AndTheTeam()
    {
        await using var host = await MeshHosts.StartServiceRequestsAsync(await TestSettings.CreateAsync(Backend.Sqlite));
        var tokens = host.Services.GetRequiredService<ServiceTokens>();
        await using var probe = await DeadlineProbe.StartAsync();
        using var channel = MeshChannels.Create(probe.Address);
        var client = new Health.HealthClient(channel);
        var caller = new Caller("team-peer", "user-1", CallerRole.Clinician, null);

        // The caller's deadline is the earlier: the peer gets it, give or take the second of grpc-dotnet's
        // server clock (it reads the time from a clock that ticks once a second). The deadline travels as a
        // timeout, so the peer's copy is later by the time the headers took to arrive: at most the call's length.
        var callers = DateTime.UtcNow.AddSeconds(3);
        var call = System.Diagnostics.Stopwatch.StartNew();
        await client.CheckAsync(new HealthCheckRequest(), PeerChannel.Options(caller, tokens, "requisition", callers, Timeout, CancellationToken.None));
        Assert.InRange(probe.LastDeadline, callers.AddSeconds(-1.2), callers.AddSeconds(1.2) + call.Elapsed);

        // The service's own timeout is the earlier: the peer gets that.
        var start = DateTime.UtcNow;
        call.Restart();
        await client.CheckAsync(new HealthCheckRequest(), PeerChannel.Options(caller, tokens, "requisition", DateTime.UtcNow.AddMinutes(5), TimeSpan.FromSeconds(2), CancellationToken.None));
        Assert.InRange(probe.LastDeadline, start.AddSeconds(0.8), start.AddSeconds(3.2) + call.Elapsed);

        Assert.Equal("team-peer", probe.LastHeaders.GetValue(Caller.ForTeamHeader));
        Assert.Equal("user-1", probe.LastHeaders.GetValue(Caller.ForActorHeader));
        Assert.StartsWith("Bearer ", probe.LastHeaders.GetValue(AuthorizationInterceptor.AuthorizationHeader), StringComparison.Ordinal);
    }

    /// <summary>A bare grpc-dotnet server whose health Check records the deadline and headers it was called with.</summary>
    private sealed class DeadlineProbe : Health.HealthBase, IAsyncDisposable
    {
        private WebApplication? _app;

        public string Address { get; private set; } = "";

        public DateTime LastDeadline { get; private set; }

        public Metadata LastHeaders { get; private set; } = [];

        public static async Task<DeadlineProbe> StartAsync()
        {
            var probe = new DeadlineProbe();
            var builder = WebApplication.CreateBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.Protocols = HttpProtocols.Http2));
            builder.Services.AddGrpc();
            builder.Services.AddSingleton(probe);
            probe._app = builder.Build();
            probe._app.MapGrpcService<DeadlineProbe>();
            await probe._app.StartAsync().WaitAsync(Timeout);
            probe.Address = probe._app.Urls.Single();
            return probe;
        }

        public override Task<HealthCheckResponse> Check(HealthCheckRequest request, ServerCallContext context)
        {
            LastDeadline = context.Deadline;
            LastHeaders = context.RequestHeaders;
            return Task.FromResult(new HealthCheckResponse { Status = HealthCheckResponse.Types.ServingStatus.Serving });
        }

        public async ValueTask DisposeAsync()
        {
            if (_app is not null)
            {
                await _app.StopAsync().WaitAsync(Timeout);
                await _app.DisposeAsync();
            }
        }
    }
}
