using System.IO.Compression;

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


    /// <summary>Per-method settings, such as retry policies.</summary>
    public Configuration.ServiceConfig? ServiceConfig { get; set; }

    /// <summary>A cap on any retry policy's attempts (default 5).</summary>
    public int MaxRetryAttempts { get; set; } = 5;

    /// <summary>
    /// The largest request a call keeps for replay (default 1 MiB); a larger request is sent once, never retried.
    /// </summary>
    public int MaxRetryBufferPerCallSize { get; set; } = 1024 * 1024;


    /// <summary>
    /// Plaintext or TLS. Required for a <c>dns:</c>, <c>ipv4:</c> or <c>ipv6:</c> target (<see cref="Grpc.Core.ChannelCredentials.Insecure"/> or
    /// <see cref="Grpc.Core.ChannelCredentials.SecureSsl"/>); for an <c>http://</c> or <c>https://</c> address it may be
    /// left null, and must agree with the scheme when set.
    /// </summary>
    public Grpc.Core.ChannelCredentials? Credentials { get; set; }

    /// <summary>
    /// How long a connection may go without receiving a frame before the client sends an HTTP/2 PING
    /// (default 60 s; <see cref="Timeout.InfiniteTimeSpan"/> turns pings off; at least 1 s). Applies to
    /// the channel's own handler only: with <see cref="HttpHandler"/>, set it on that handler.
    /// </summary>
    public TimeSpan KeepAlivePingDelay { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long the client waits for the PING's acknowledgement before it closes the connection as dead
    /// (default 20 s). Calls in flight on it fail UNAVAILABLE; the next call opens a new connection.
    /// </summary>
    public TimeSpan KeepAlivePingTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>
    /// Whether idle connections (no calls in flight) are pinged too. Default
    /// <see cref="HttpKeepAlivePingPolicy.Always"/>: a pooled connection whose peer vanished is found and
    /// dropped before a call is sent on it, and NAT and load-balancer entries stay alive. Use
    /// <see cref="HttpKeepAlivePingPolicy.WithActiveRequests"/> (gRPC's default) towards servers that
    /// punish pings without calls (grpc-go, C-core) — see the README.
    /// </summary>
    public HttpKeepAlivePingPolicy KeepAlivePingPolicy { get; set; } = HttpKeepAlivePingPolicy.Always;

    /// <summary>
    /// Resolves a <c>dns:</c> target's host to all its addresses; null for
    /// <see cref="System.Net.Dns.GetHostAddressesAsync(string, CancellationToken)"/>. Tests and custom discovery set it.
    /// </summary>
    public Func<string, CancellationToken, Task<System.Net.IPAddress[]>>? DnsResolver { get; set; }

    /// <summary>
    /// How often a <c>dns:</c> target is resolved again while the channel is in use (default 30 s). It is also
    /// resolved again, at most once a second, when a connection to one of its addresses fails.
    /// </summary>
    public TimeSpan DnsRefreshInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long an address of a <c>dns:</c> target that refused a connection is skipped before it is tried
    /// again (default 1 s); each further failure multiplies the wait by 1.6 with ±20 % jitter.
    /// </summary>
    public TimeSpan InitialReconnectBackoff { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>The longest an unreachable address is skipped between two attempts (default 120 s).</summary>
    public TimeSpan MaxReconnectBackoff { get; set; } = TimeSpan.FromSeconds(120);
}
