using System.Collections.Concurrent;
using System.Net;
using Grpc.Core;
using Grpc.Net.Client.Internal;

namespace Grpc.Net.Client;

/// <summary>
/// A channel to one gRPC server address over HTTP/2: h2c with prior knowledge for <c>http://</c>,
/// TLS with ALPN for <c>https://</c>. Create one per address and share it; it is thread-safe and
/// pools its connections.
/// </summary>
public sealed class GrpcChannel : ChannelBase, IDisposable
{
    private readonly ConcurrentDictionary<string, Uri> _methodUris = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _shutdown = new();
    private readonly bool _disposeHandler;
    private readonly ChannelCallInvoker _callInvoker;

    private GrpcChannel(Uri address, GrpcChannelOptions options)
        : base(address.Authority)
    {
        if (address.Scheme != Uri.UriSchemeHttp && address.Scheme != Uri.UriSchemeHttps)
        {
            throw new ArgumentException($"Address '{address}' must use http:// (h2c) or https:// (TLS).", nameof(address));
        }
        Address = address;
        Options = options;
        if (options.HttpHandler is { } handler)
        {
            HttpInvoker = new HttpMessageInvoker(handler, options.DisposeHttpHandler);
            _disposeHandler = true;
        }
        else
        {
            HttpInvoker = new HttpMessageInvoker(CreateDefaultHandler(), disposeHandler: true);
            _disposeHandler = true;
        }
        _callInvoker = new ChannelCallInvoker(this);
    }

    /// <summary>The server's base address.</summary>
    public Uri Address { get; }

    internal GrpcChannelOptions Options { get; }

    internal HttpMessageInvoker HttpInvoker { get; }

    internal CancellationToken ShutdownToken => _shutdown.Token;

    /// <summary>Creates a channel for an address such as <c>http://127.0.0.1:5000</c>.</summary>
    public static GrpcChannel ForAddress(string address, GrpcChannelOptions? options = null) =>
        ForAddress(new Uri(address, UriKind.Absolute), options);

    /// <summary>Creates a channel for an address.</summary>
    public static GrpcChannel ForAddress(Uri address, GrpcChannelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(address);
        return new GrpcChannel(address, options ?? new GrpcChannelOptions());
    }

    /// <inheritdoc />
    public override CallInvoker CreateCallInvoker() => _callInvoker;

    internal Uri GetMethodUri(IMethod method) =>
        _methodUris.GetOrAdd(method.FullName, static (path, baseAddress) => new Uri(baseAddress, path), Address);

    /// <inheritdoc />
    protected override Task ShutdownAsyncCore()
    {
        Dispose();
        return Task.CompletedTask;
    }

    /// <summary>Cancels calls in flight and closes the channel's connections.</summary>
    public void Dispose()
    {
        if (_shutdown.IsCancellationRequested)
        {
            return;
        }
        _shutdown.Cancel();
        if (_disposeHandler)
        {
            HttpInvoker.Dispose();
        }
        _shutdown.Dispose();
    }

    private static SocketsHttpHandler CreateDefaultHandler() => new()
    {
        // When one connection's MAX_CONCURRENT_STREAMS is used up, open another instead of queueing.
        EnableMultipleHttp2Connections = true,
        PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        AutomaticDecompression = DecompressionMethods.None,
        UseCookies = false,
        UseProxy = false,
        AllowAutoRedirect = false,
        ConnectTimeout = TimeSpan.FromSeconds(20),
    };
}
