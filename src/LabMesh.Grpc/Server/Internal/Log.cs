using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Grpc.AspNetCore.Server.Internal;

internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Error, Message = "Handler for {Method} threw an exception.")]
    public static partial void HandlerThrew(ILogger logger, string method, Exception exception);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "Handler for {Method} ended with status {StatusCode}.")]
    public static partial void HandlerFailedWithStatus(ILogger logger, string method, StatusCode statusCode, Exception exception);

    [LoggerMessage(EventId = 3, Level = LogLevel.Debug, Message = "Deadline exceeded for {Method}; the call was answered with DEADLINE_EXCEEDED.")]
    public static partial void DeadlineExceeded(ILogger logger, string method);

    [LoggerMessage(EventId = 4, Level = LogLevel.Debug, Message = "Completing {Method} at its deadline failed (the client had probably gone).")]
    public static partial void DeadlineCompletionFailed(ILogger logger, string method, Exception exception);

    [LoggerMessage(EventId = 5, Level = LogLevel.Debug, Message = "Client cancelled or went away during {Method}.")]
    public static partial void ClientWentAway(ILogger logger, string method);

    [LoggerMessage(EventId = 6, Level = LogLevel.Debug, Message = "Ignored request header {Header}: not valid gRPC metadata.")]
    public static partial void BadRequestHeader(ILogger logger, string header);

    [LoggerMessage(EventId = 7, Level = LogLevel.Information, Message = "Call to unimplemented {Kind}: {Service}/{Method}.")]
    public static partial void Unimplemented(ILogger logger, string kind, string service, string method);

    [LoggerMessage(EventId = 8, Level = LogLevel.Information, Message = "Rejected call to {Method}: {StatusCode} {Detail}.")]
    public static partial void RejectedRequest(ILogger logger, string method, StatusCode statusCode, string detail);
}
