using Grpc.Core;

namespace Grpc.Net.Client.Configuration;

/// <summary>Per-method call settings for a channel, after gRPC's service config (service_config.proto).</summary>
public sealed class ServiceConfig
{
    /// <summary>Method configurations; the most specific name wins (service and method, then service, then default).</summary>
    public IList<MethodConfig> MethodConfigs { get; } = [];

    internal MethodConfig? Find(IMethod method)
    {
        MethodConfig? service = null;
        MethodConfig? fallback = null;
        foreach (var config in MethodConfigs)
        {
            foreach (var name in config.Names)
            {
                if (string.IsNullOrEmpty(name.Service))
                {
                    fallback ??= config;
                }
                else if (name.Service == method.ServiceName)
                {
                    if (string.IsNullOrEmpty(name.Method))
                    {
                        service ??= config;
                    }
                    else if (name.Method == method.Name)
                    {
                        return config;
                    }
                }
            }
        }
        return service ?? fallback;
    }
}

/// <summary>Settings for the methods it names.</summary>
public sealed class MethodConfig
{
    /// <summary>The methods this applies to.</summary>
    public IList<MethodName> Names { get; } = [];

    /// <summary>How failed calls are retried; null for no retries.</summary>
    public RetryPolicy? RetryPolicy { get; set; }
}

/// <summary>A method, a whole service (no method) or every method (<see cref="Default"/>).</summary>
public sealed class MethodName
{
    /// <summary>Matches every method of every service.</summary>
    public static MethodName Default { get; } = new();

    /// <summary>The fully qualified service name; null or empty for every service.</summary>
    public string? Service { get; init; }

    /// <summary>The method name; null or empty for every method of the service.</summary>
    public string? Method { get; init; }
}

/// <summary>
/// Retries for calls that are safe to repeat (gRFC A6): a call is retried when it fails with a
/// retryable status before any response headers arrived, with exponential, jittered backoff.
/// </summary>
public sealed class RetryPolicy
{
    /// <summary>Attempts in all, the first included (2 or more; capped by the channel's MaxRetryAttempts).</summary>
    public int MaxAttempts { get; set; } = 3;

    /// <summary>The first backoff's upper bound.</summary>
    public TimeSpan InitialBackoff { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>No backoff's upper bound exceeds this.</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How the bound grows per attempt.</summary>
    public double BackoffMultiplier { get; set; } = 2;

    /// <summary>Statuses worth another attempt (UNAVAILABLE is the usual one).</summary>
    public IList<StatusCode> RetryableStatusCodes { get; } = [];

    internal void Validate()
    {
        if (MaxAttempts < 2)
        {
            throw new InvalidOperationException("RetryPolicy.MaxAttempts must be at least 2.");
        }
        if (InitialBackoff <= TimeSpan.Zero || MaxBackoff <= TimeSpan.Zero || BackoffMultiplier <= 0)
        {
            throw new InvalidOperationException("RetryPolicy backoffs and multiplier must be positive.");
        }
        if (RetryableStatusCodes.Count == 0)
        {
            throw new InvalidOperationException("RetryPolicy.RetryableStatusCodes must name at least one status.");
        }
    }
}
