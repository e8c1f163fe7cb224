using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Runtime;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Yarp.ReverseProxy;

namespace LabMesh.Gateway;

/// <summary>
/// Warms the gateway before it says it is ready. A freshly started gateway runs its forwarding path (Kestrel's HTTP/2
/// server, routing, the cap, YARP, SocketsHttpHandler's HTTP/2 client) as tier-0 JIT code and has no connection to any
/// replica: met by full traffic at once it shed calls even at 2,000/s and took seconds to recover from an overload
/// (bench/README.md, "Issue 22 on a quiet machine at the end of session 11"). So once its listeners are open it sends
/// real calls through its own gRPC listener, <c>grpc.health.v1.Health/Check</c> to each gRPC cluster that has
/// destinations (the <c>health-*</c> routes, by their <c>x-labmesh-service</c> header), in a closed loop, until the
/// JIT has settled (a second in which it compiled almost nothing new) or <see cref="Options.Timeout"/> has passed.
/// Published as Native AOT (deploy/local, compose) there is no JIT: the warm-up then ends once
/// <see cref="Options.MinimumCalls"/> calls have been answered, so readiness still means the replicas answer through the
/// gateway, on connections it has opened (about a second after start; bench/README.md, "The gateway as Native AOT").
/// Until then its readiness (<c>GET /healthz/ready</c>, ASP.NET Core's health checks) answers 503; after it, 200.
/// A cluster whose call is not answered by a replica (none listening, none answering within
/// <see cref="Options.CallTimeout"/>) is left out of the rest of the warm-up, so absent replicas never hold start
/// beyond the bound: the gateway is then ready as it was before the warm-up existed (listening, routes loaded), and
/// calls find the replicas when they come.
/// </summary>
internal sealed partial class GatewayWarmUp(
    IOptions<GatewayWarmUp.Options> options,
    IProxyStateLookup proxy,
    IConfiguration configuration,
    IHostApplicationLifetime lifetime,
    ILogger<GatewayWarmUp> logger) : BackgroundService, IHealthCheck
{
    public const string ReadinessPath = "/healthz/ready";

    private const string HealthPath = "/grpc.health.v1.Health/Check";

    private const string ServiceHeader = "x-labmesh-service";

    // An empty HealthCheckRequest (service ""), length-prefixed as gRPC frames a message: not compressed, length 0.
    private static readonly byte[] EmptyHealthCheckRequest = new byte[5];

    private static readonly TimeSpan Window = TimeSpan.FromMilliseconds(250);

    /// <summary>False when published as Native AOT: no code is compiled at run time, so there is nothing to settle.</summary>
    private static readonly bool Jitted = RuntimeFeature.IsDynamicCodeCompiled;

    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private long _forwarded;

    private string _outcome = "warming up";

    public sealed class Options
    {
        /// <summary>Off: ready as soon as the listeners are open (as before the warm-up).</summary>
        public bool Enabled { get; set; } = true;

        /// <summary>The bound: ready after this long whatever the warm-up has done.</summary>
        public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(15);

        /// <summary>Calls answered before the JIT's settling is even looked at; without a JIT (Native AOT), the whole warm-up.</summary>
        public int MinimumCalls { get; set; } = 2000;

        /// <summary>Calls in flight at once (a closed loop).</summary>
        public int Concurrency { get; set; } = 16;

        /// <summary>A quiet window: fewer methods than this compiled by the JIT in 250 ms of calls.</summary>
        public int SettledMethodsPerWindow { get; set; } = 3;

        /// <summary>Settled: this many quiet windows in a row.</summary>
        public int SettledWindows { get; set; } = 4;

        /// <summary>A call not answered within this is a replica not answering: its cluster is left out.</summary>
        public TimeSpan CallTimeout { get; set; } = TimeSpan.FromSeconds(2);
    }

    /// <summary>Finished (warm, or given up at the bound or for want of replicas).</summary>
    public Task Done => _done.Task;

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(_done.Task.IsCompleted
            ? HealthCheckResult.Healthy(_outcome)
            : HealthCheckResult.Unhealthy($"warming up: {Interlocked.Read(ref _forwarded)} calls forwarded"));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            var settings = options.Value;
            if (!settings.Enabled)
            {
                _outcome = "no warm-up (LabMesh:Gateway:WarmUp:Enabled false)";
                return;
            }

            await StartedAsync(stoppingToken);
            await WarmAsync(settings, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping before the warm-up ended: nothing to report.
        }
        catch (Exception e)
        {
            // The warm-up is an optimisation: whatever fails in it, the gateway serves as it would have without it.
            _outcome = "warm-up failed: " + e.GetType().Name;
            LogFailed(logger, e);
        }
        finally
        {
            _done.TrySetResult();
        }
    }

    /// <summary>Until the listeners are open (hosted services start before the server does).</summary>
    private async Task StartedAsync(CancellationToken stoppingToken)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var onStarted = lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        using var onStopping = stoppingToken.Register(() => started.TrySetCanceled(stoppingToken));
        await started.Task;
    }

    private async Task WarmAsync(Options settings, CancellationToken stoppingToken)
    {
        var target = OwnGrpcAddress(configuration["Kestrel:Endpoints:Grpc:Url"]);
        var services = HealthTargets();
        if (target is null || services.Count == 0)
        {
            _outcome = target is null ? "no warm-up: no gRPC listener to call" : "no warm-up: no gRPC cluster has a destination";
            LogSkipped(logger, _outcome);
            return;
        }

        using var bound = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        bound.CancelAfter(settings.Timeout);
        using var handler = new SocketsHttpHandler { EnableMultipleHttp2Connections = true, UseProxy = false, ConnectTimeout = settings.CallTimeout };
        using var client = new HttpClient(handler) { BaseAddress = target, Timeout = System.Threading.Timeout.InfiniteTimeSpan };

        var clock = Stopwatch.StartNew();
        var jitBefore = JitInfo.GetCompiledMethodCount();
        var left = new List<string>(services);
        var dropped = new List<string>();
        var next = 0;
        using var settled = CancellationTokenSource.CreateLinkedTokenSource(bound.Token);

        async Task WorkerAsync()
        {
            while (!settled.IsCancellationRequested)
            {
                string service;
                lock (left)
                {
                    if (left.Count == 0)
                    {
                        settled.Cancel();
                        return;
                    }

                    service = left[next++ % left.Count];
                }

                // A call started is let finish when the JIT settles (a cancelled call is a reset stream for the replica);
                // only the bound cuts it short.
                if (await CallAsync(client, service, settings.CallTimeout, bound.Token) is not { } failure)
                {
                    if (Interlocked.Increment(ref _forwarded) >= settings.MinimumCalls && !Jitted)
                    {
                        settled.Cancel();
                    }
                }
                else if (!bound.IsCancellationRequested)
                {
                    lock (left)
                    {
                        if (left.Remove(service))
                        {
                            dropped.Add($"{service} ({failure})");
                        }
                    }
                }
            }
        }

        async Task WatchAsync()
        {
            var last = JitInfo.GetCompiledMethodCount();
            var quiet = 0;
            while (!settled.IsCancellationRequested)
            {
                await Task.Delay(Window, settled.Token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                var now = JitInfo.GetCompiledMethodCount();
                var forwarded = Interlocked.Read(ref _forwarded);
                LogWindow(logger, forwarded, now - last);
                // Tiered compilation promotes methods in batches with quiet windows between them: settled is a run of them.
                quiet = now - last < settings.SettledMethodsPerWindow ? quiet + 1 : 0;
                if (forwarded >= settings.MinimumCalls && quiet >= settings.SettledWindows)
                {
                    settled.Cancel();
                }

                last = now;
            }
        }

        await Task.WhenAll([WatchAsync(), .. Enumerable.Range(0, settings.Concurrency).Select(_ => WorkerAsync())]);
        stoppingToken.ThrowIfCancellationRequested();
        var forwarded = Interlocked.Read(ref _forwarded);
        var jitted = Jitted ? $"{JitInfo.GetCompiledMethodCount() - jitBefore} methods compiled" : "no JIT (Native AOT)";
        var why = left.Count == 0 ? "no replica answered"
            : bound.IsCancellationRequested ? $"the bound of {settings.Timeout.TotalSeconds:0.#} s"
            : Jitted ? "the JIT settled" : $"{settings.MinimumCalls} calls answered";
        _outcome = $"warm-up: {forwarded} calls forwarded in {clock.Elapsed.TotalMilliseconds:0} ms, {jitted}, ended by {why}"
            + (dropped.Count > 0 ? $"; no replica answered for {string.Join(", ", dropped)}" : "");
        LogWarm(logger, _outcome);
    }

    /// <summary>The value each <c>health-*</c> route matches in <c>x-labmesh-service</c>, where its cluster has a destination.</summary>
    private List<string> HealthTargets() =>
    [
        .. proxy.GetRoutes()
            .Where(r => r.Config.Match.Path == "/grpc.health.v1.Health/{method}" && r.Config.Match.Headers is { Count: > 0 })
            .Where(r => r.Config.ClusterId is { } id && proxy.TryGetCluster(id, out var cluster) && !cluster.Destinations.IsEmpty)
            .SelectMany(r => r.Config.Match.Headers!.Where(h => h.Name == ServiceHeader).SelectMany(h => h.Values ?? []))
            .Distinct(StringComparer.Ordinal)
            .Order(StringComparer.Ordinal),
    ];

    /// <summary>The gRPC listener as this process can call it: a wildcard host is the loopback.</summary>
    internal static Uri? OwnGrpcAddress(string? url)
    {
        if (string.IsNullOrEmpty(url))
        {
            return null;
        }

        var wildcard = url.Replace("://+:", "://127.0.0.1:", StringComparison.Ordinal)
            .Replace("://*:", "://127.0.0.1:", StringComparison.Ordinal)
            .Replace("://0.0.0.0:", "://127.0.0.1:", StringComparison.Ordinal)
            .Replace("://[::]:", "://127.0.0.1:", StringComparison.Ordinal);
        return Uri.TryCreate(wildcard, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttp ? uri : null;
    }

    /// <summary>One health check through the gateway: null when a replica answered it (gRPC status OK), else why not.</summary>
    private static async Task<string?> CallAsync(HttpClient client, string service, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var call = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        call.CancelAfter(timeout);
        using var request = new HttpRequestMessage(HttpMethod.Post, HealthPath)
        {
            Content = new ByteArrayContent(EmptyHealthCheckRequest),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        request.Headers.TryAddWithoutValidation(ServiceHeader, service);
        try
        {
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseContentRead, call.Token);
            var status = response.TrailingHeaders.TryGetValues("grpc-status", out var trailer) ? trailer.FirstOrDefault()
                : response.Headers.TryGetValues("grpc-status", out var header) ? header.FirstOrDefault() : null;
            return response.StatusCode == HttpStatusCode.OK && status == "0" ? null : $"HTTP {(int)response.StatusCode}, grpc-status {status ?? "none"}";
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
        {
            return call.IsCancellationRequested && !cancellationToken.IsCancellationRequested
                ? $"no answer within {timeout.TotalSeconds:0.#} s"
                : e.GetType().Name + ": " + e.Message;
        }
    }

    /// <summary>The readiness answer: the status and what the warm-up did (or is doing), as plain text.</summary>
    public static Task WriteReadinessAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "text/plain; charset=utf-8";
        var detail = string.Join("; ", report.Entries.Values.Select(e => e.Description).OfType<string>());
        var body = System.Text.Encoding.UTF8.GetBytes($"{report.Status}: {detail}\n");
        context.Response.ContentLength = body.Length;
        return context.Response.Body.WriteAsync(body).AsTask();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Outcome}")]
    private static partial void LogWarm(ILogger logger, string outcome);

    [LoggerMessage(Level = LogLevel.Debug, Message = "warm-up: {Forwarded} calls forwarded, {Compiled} methods compiled in the last 250 ms")]
    private static partial void LogWindow(ILogger logger, long forwarded, long compiled);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Outcome}")]
    private static partial void LogSkipped(ILogger logger, string outcome);

    [LoggerMessage(Level = LogLevel.Warning, Message = "The warm-up failed; the gateway serves without it")]
    private static partial void LogFailed(ILogger logger, Exception exception);
}
