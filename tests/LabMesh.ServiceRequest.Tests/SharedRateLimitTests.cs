using System.Diagnostics;
using Grpc.Core;
using LabMesh.Contracts.ServiceRequest.V1;
using LabMesh.Testing;

namespace LabMesh.ServiceRequest.Tests;

/// <summary>
/// Two replicas of the ServiceRequest service sharing one Redis: a caller gets one rate-limit budget in
/// total, not one per replica; with Redis down each replica falls back to its own bucket.
/// </summary>
public sealed class SharedRateLimitTests
{
    private const double PermitsPerSecond = 2;
    private const int Burst = 6;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly string _team = "team-" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task TwoReplicas_OneCaller_GetTheConfiguredRateInTotal_AndTheirOwnBucketsWhileRedisIsDown()
    {
        await using var redis = await RedisServer.StartNewAsync().WaitAsync(Timeout);
        ServiceHost[] replicas = [await StartAsync(redis), await StartAsync(redis)];
        try
        {
            var channels = replicas.Select(r => r.CreateChannel()).ToArray();
            var clients = channels.Select(c => ServiceRequestHostFixture.Client(c, _team)).ToArray();

            var elapsed = Stopwatch.StartNew();
            var (granted, refused) = await CallAsync(clients, 40);
            var allowed = Burst + (int)Math.Ceiling(PermitsPerSecond * elapsed.Elapsed.TotalSeconds) + 1;
            Assert.InRange(granted, Burst, allowed);
            Assert.Equal(40 - granted, refused);

            // Without Redis each replica has its own bucket. Full, when nothing took from it while Redis answered; but a Redis
            // call that timed out on a loaded machine falls back to it (as it should), so the test gives the buckets the
            // time they take to refill from empty before counting on them: Burst / PermitsPerSecond, 3 s.
            await redis.StopAsync().WaitAsync(Timeout);
            await Task.Delay(TimeSpan.FromSeconds(Burst / PermitsPerSecond));
            elapsed.Restart();
            (granted, _) = await CallAsync(clients, 40);
            Assert.InRange(granted, 2 * Burst, 2 * (Burst + (int)Math.Ceiling(PermitsPerSecond * elapsed.Elapsed.TotalSeconds) + 1));

            foreach (var channel in channels)
            {
                channel.Dispose();
            }
        }
        finally
        {
            foreach (var replica in replicas)
            {
                await replica.DisposeAsync();
            }
        }
    }

    private static async Task<ServiceHost> StartAsync(RedisServer redis)
    {
        var settings = await TestSettings.CreateAsync(Backend.Sqlite, redis.Configuration + ",syncTimeout=1000");
        settings["LabMesh:Limits:PermitsPerSecond"] = PermitsPerSecond.ToString(System.Globalization.CultureInfo.InvariantCulture);
        settings["LabMesh:Limits:Burst"] = Burst.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return await MeshHosts.StartServiceRequestsAsync(settings).WaitAsync(Timeout);
    }

    /// <summary>Calls the replicas in turn; every answer is OK or RESOURCE_EXHAUSTED.</summary>
    private static async Task<(int Granted, int Refused)> CallAsync(ServiceRequestService.ServiceRequestServiceClient[] clients, int calls)
    {
        var granted = 0;
        var refused = 0;
        for (var i = 0; i < calls; i++)
        {
            try
            {
                await clients[i % clients.Length].BatchGetStatusAsync(
                    new BatchGetStatusRequest { Ids = { "sr_missing" } }, deadline: DateTime.UtcNow + Timeout);
                granted++;
            }
            catch (RpcException ex) when (ex.StatusCode == StatusCode.ResourceExhausted)
            {
                refused++;
            }
        }

        return (granted, refused);
    }
}
