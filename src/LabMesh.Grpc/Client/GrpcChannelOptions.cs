using System.IO.Compression;
using Microsoft.Extensions.Logging;

namespace Grpc.Net.Client;

/// <summary>Options for a <see cref="GrpcChannel"/>.</summary>
public sealed class GrpcChannelOptions
{
    /// <summary>The largest message the channel sends; null for no limit.</summary>
    public int? MaxSendMessageSize { get; set; }

    /// <summary>The largest message the channel accepts (default 4 MiB); null for no limit.</summary>
    public int? MaxReceiveMessageSize { get; set; } = 4 * 1024 * 1024;

    /// <summary>
    /// The handler calls are sent through. When null the channel creates a <see cref="SocketsHttpHandler"/>
    /// that opens more HTTP/2 connections when one connection's streams are used up.
    /// </summary>
    public HttpMessageHandler? HttpHandler { get; set; }

    /// <summary>Whether the channel disposes <see cref="HttpHandler"/> when it is disposed.</summary>
    public bool DisposeHttpHandler { get; set; }

    /// <summary>The encoding requests are compressed with (e.g. <c>gzip</c>); null for none.</summary>
    public string? CompressionAlgorithm { get; set; }

    /// <summary>The compression level for requests.</summary>
    public CompressionLevel? CompressionLevel { get; set; }

    /// <summary>Whether errors thrown while sending include the local exception.</summary>
    public bool ThrowOperationCanceledOnCancellation { get; set; }

    /// <summary>Logger factory for the channel's diagnostics.</summary>
    public ILoggerFactory? LoggerFactory { get; set; }
}
