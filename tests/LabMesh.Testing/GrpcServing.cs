using Grpc.Health.V1;
using Grpc.Net.Client;

namespace LabMesh.Testing;

/// <summary>Waiting for a gRPC endpoint to answer SERVING to the standard health check (grpc.health.v1 Check, the whole server).</summary>
public static class GrpcServing
{
    /// <summary>
    /// Polls Check every <paramref name="interval"/> over one HTTP/2 connection until it answers SERVING (true) or
    /// <paramref name="within"/> passes (false). Not listening yet, or not SERVING yet, is polled again.
    /// </summary>
    public static async Task<bool> WaitAsync(string address, TimeSpan within, TimeSpan interval, CancellationToken cancellationToken = default)
    {
        using var channel = GrpcChannel.ForAddress(address);
        var health = new Health.HealthClient(channel);
        var deadline = DateTime.UtcNow + within;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                var answer = await health.CheckAsync(new HealthCheckRequest(), deadline: DateTime.UtcNow.AddSeconds(1), cancellationToken: cancellationToken);
                if (answer.Status == HealthCheckResponse.Types.ServingStatus.Serving)
                {
                    return true;
                }
            }
            catch (Grpc.Core.RpcException) when (!cancellationToken.IsCancellationRequested)
            {
                // Not listening or not ready yet.
            }

            await Task.Delay(interval, cancellationToken);
        }

        return false;
    }
}
