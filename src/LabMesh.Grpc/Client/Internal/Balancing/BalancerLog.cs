using System.Net;
using Microsoft.Extensions.Logging;

namespace Grpc.Net.Client.Internal.Balancing;

internal static partial class BalancerLog
{
    [LoggerMessage(EventId = 101, Level = LogLevel.Debug, Message = "Resolved {Host} to {Addresses}.")]
    public static partial void Resolved(ILogger logger, string host, IPEndPoint[] addresses);

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "Resolving {Host} failed; keeping the {Count} addresses known so far.")]
    public static partial void ResolveFailed(ILogger logger, string host, int count, Exception exception);

    [LoggerMessage(EventId = 103, Level = LogLevel.Warning, Message = "Connecting to {Address} for {Host} failed; the address is skipped for {Backoff}.")]
    public static partial void AddressFailed(ILogger logger, IPEndPoint address, string host, TimeSpan backoff, Exception exception);

    [LoggerMessage(EventId = 104, Level = LogLevel.Debug, Message = "Probe of {Address} for {Host} failed; next attempt in {Backoff}.")]
    public static partial void ProbeFailed(ILogger logger, IPEndPoint address, string host, TimeSpan backoff);

    [LoggerMessage(EventId = 105, Level = LogLevel.Information, Message = "{Address} for {Host} accepts connections again.")]
    public static partial void AddressRecovered(ILogger logger, IPEndPoint address, string host);
}
