using System.IO.Compression;
using Grpc.Core.Interceptors;

namespace Grpc.AspNetCore.Server;

/// <summary>Server-wide options for gRPC services hosted on Kestrel.</summary>
public sealed class GrpcServiceOptions
{
    /// <summary>The largest message a handler may send; null for no limit.</summary>
    public int? MaxSendMessageSize { get; set; }

    /// <summary>The largest message the server accepts (default 4 MiB); null for no limit.</summary>
    public int? MaxReceiveMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>Whether a handler's exception message is sent to the client (development only).</summary>
    public bool EnableDetailedErrors { get; set; }

    /// <summary>The encoding responses are compressed with when the client accepts it (e.g. <c>gzip</c>); null for none.</summary>
    public string? ResponseCompressionAlgorithm { get; set; }

    /// <summary>The compression level for responses.</summary>
    public CompressionLevel? ResponseCompressionLevel { get; set; }

    /// <summary>Server interceptors, outermost first, applied to every service.</summary>
    public InterceptorCollection Interceptors { get; } = [];
}
