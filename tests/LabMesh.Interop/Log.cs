using Microsoft.Extensions.Logging;

namespace LabMesh.Interop;

/// <summary>The interop programs' log messages.</summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Interop server listening on {Scheme}://127.0.0.1:{Port}")]
    public static partial void Listening(ILogger logger, string scheme, int port);
}
