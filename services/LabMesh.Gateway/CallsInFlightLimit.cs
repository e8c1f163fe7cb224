using System.Globalization;
using System.Threading.RateLimiting;
using Yarp.ReverseProxy.Model;

namespace LabMesh.Gateway;

/// <summary>
/// A cap on the gRPC calls in flight through the gateway to each cluster (routes with <c>RateLimiterPolicy</c>
/// <see cref="PolicyName"/> in appsettings.json), so an overload is shed at the gateway instead of piling up on the
/// replicas' HTTP/2 connections. Without it, a backlog let the gateway open a new connection to the replicas for every
/// 100 streams in flight, with no bound, and once one overload run ended with the gateway at 0 calls/s while the
/// callers' deadlines reset their streams (Kestrel's stream-reset limit is the suspect; its logs at Debug did not
/// confirm it in the runs since: bench/README.md, "The gateway under overload"). A call over the cap is answered at once, trailers only, <c>RESOURCE_EXHAUSTED</c> with a retry
/// hint (<c>grpc-retry-pushback-ms</c>, gRPC's retry design A6), never queued. ASP.NET Core's rate limiting
/// (ConcurrencyLimiter, one per cluster) does the counting; this class only names the partition and the answer.
/// </summary>
internal static class CallsInFlightLimit
{
    public const string PolicyName = "grpc-calls-in-flight";

    public const int ResourceExhausted = 8;

    /// <summary>How long a shed caller is told to wait before trying again.</summary>
    public static readonly TimeSpan RetryAfter = TimeSpan.FromMilliseconds(100);

    public sealed class Options
    {
        /// <summary>gRPC calls in flight per cluster (every replica together); calls past it are shed.</summary>
        public int PerCluster { get; set; } = 128;
    }

    public static IServiceCollection AddCallsInFlightLimit(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.Get<Options>() ?? new Options();
        if (options.PerCluster < 1)
        {
            throw new InvalidOperationException("LabMesh:Gateway:CallsInFlight:PerCluster must be at least 1.");
        }

        return services.AddRateLimiter(limiter =>
        {
            limiter.AddPolicy(PolicyName, context => RateLimitPartition.GetConcurrencyLimiter(
                context.GetEndpoint()?.Metadata.GetMetadata<RouteModel>()?.Config.ClusterId ?? "",
                _ => new ConcurrencyLimiterOptions { PermitLimit = options.PerCluster, QueueLimit = 0 }));
            limiter.OnRejected = (rejected, _) => AnswerShedAsync(rejected.HttpContext, options.PerCluster);
        });
    }

    private static ValueTask AnswerShedAsync(HttpContext context, int perCluster)
    {
        var response = context.Response;
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/grpc";
        response.Headers["grpc-status"] = ResourceExhausted.ToString(CultureInfo.InvariantCulture);
        response.Headers["grpc-message"] = Uri.EscapeDataString(
            $"The gateway has {perCluster} calls in flight to this service: try again in {RetryAfter.TotalMilliseconds:0} ms.");
        response.Headers["grpc-retry-pushback-ms"] = RetryAfter.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture);
        return ValueTask.CompletedTask;
    }
}
