using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace Grpc.Net.Client.Internal.Balancing;

/// <summary>
/// Keeps the addresses of a <c>dns:</c>, <c>ipv4:</c> or <c>ipv6:</c> target and hands them out round-robin, skipping the ones
/// that refused a connection. A refused address is probed with a plain TCP connect after a backoff
/// (gRPC's connection-backoff: ×1.6, ±20 % jitter, capped) and returns to the rotation when the probe
/// connects, so calls never wait on an address known to be down. The name is resolved again on a timer,
/// after a connection failure (at most once a second), and while no address is known.
/// </summary>
internal sealed class RoundRobinBalancer : IDisposable
{
    private static readonly TimeSpan MinFailureResolveGap = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan ResolveTimeout = TimeSpan.FromSeconds(20);
    // gRPC's MIN_CONNECT_TIMEOUT: a probe of a black-holed address gives up after this.
    private static readonly TimeSpan ProbeConnectTimeout = TimeSpan.FromSeconds(20);

    private readonly string _name;
    private readonly string _scheme;
    private readonly Func<CancellationToken, Task<IPEndPoint[]>> _resolve;
    private readonly TimeSpan _refreshInterval;
    private readonly TimeSpan _initialBackoff;
    private readonly TimeSpan _maxBackoff;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _disposed = new();
    private readonly Lock _lock = new();
    private BalancerAddress[] _addresses = [];
    private volatile BalancerAddress[] _ready = [];
    private uint _next = uint.MaxValue;
    private Task? _resolving;
    private long _lastResolveStart;
    private bool _resolveStarted;
    private bool _resolveDeferred;
    private Exception? _lastResolveError;
    private Timer? _refreshTimer;

    public RoundRobinBalancer(
        BalancedTarget target,
        string scheme,
        Func<string, CancellationToken, Task<IPAddress[]>>? resolver,
        TimeSpan refreshInterval,
        TimeSpan initialBackoff,
        TimeSpan maxBackoff,
        ILogger logger)
    {
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(refreshInterval, TimeSpan.Zero, nameof(GrpcChannelOptions.DnsRefreshInterval));
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(initialBackoff, TimeSpan.Zero, nameof(GrpcChannelOptions.InitialReconnectBackoff));
        ArgumentOutOfRangeException.ThrowIfLessThan(maxBackoff, initialBackoff, nameof(GrpcChannelOptions.MaxReconnectBackoff));
        _name = target.Name;
        _scheme = scheme;
        if (target.FixedEndPoints is { } fixedEndPoints)
        {
            IPEndPoint[] endPoints = [.. fixedEndPoints];
            _resolve = _ => Task.FromResult(endPoints);
        }
        else
        {
            var resolveHost = resolver ?? Dns.GetHostAddressesAsync;
            _resolve = async cancellationToken =>
                [.. (await resolveHost(target.Host, cancellationToken).ConfigureAwait(false)).Select(ip => new IPEndPoint(ip, target.Port))];
        }
        _refreshInterval = refreshInterval;
        _initialBackoff = initialBackoff;
        _maxBackoff = maxBackoff;
        _logger = logger;
    }

    /// <summary>Addresses currently in the rotation (for diagnostics and tests).</summary>
    public IReadOnlyList<IPEndPoint> ReadyEndPoints => [.. _ready.Select(a => a.EndPoint)];

    /// <summary>
    /// The next healthy address not in <paramref name="exclude"/>; null when there is none. Waits for the
    /// first resolution; throws <see cref="HttpRequestException"/> when the name resolves to nothing.
    /// </summary>
    public async ValueTask<BalancerAddress?> PickAsync(List<BalancerAddress>? exclude, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _addresses).Length == 0)
        {
            if (RequestResolve(MinFailureResolveGap) is { } resolving)
            {
                await resolving.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            if (Volatile.Read(ref _addresses).Length == 0)
            {
                var error = _lastResolveError;
                throw new HttpRequestException(HttpRequestError.NameResolutionError,
                    $"Resolving '{_name}' gave no address{(error is null ? "." : $": {error.Message}")}", error);
            }
        }
        var ready = _ready;
        var start = Interlocked.Increment(ref _next);
        for (var i = 0; i < ready.Length; i++)
        {
            var address = ready[(int)((start + (uint)i) % (uint)ready.Length)];
            if (exclude is null || !exclude.Contains(address))
            {
                return address;
            }
        }
        if (ready.Length == 0)
        {
            // Every address is failing: perhaps the set changed (pods replaced), so look again.
            _ = RequestResolve(MinFailureResolveGap);
        }
        return null;
    }

    /// <summary>Why no address is usable, for the error a call fails with.</summary>
    public string DescribeFailure()
    {
        var addresses = Volatile.Read(ref _addresses);
        var last = addresses.LastOrDefault(a => a.LastError is not null)?.LastError;
        return $"No reachable address for '{_name}': all {addresses.Length} resolved addresses are failing{(last is null ? "." : $" (last error: {last})")}";
    }

    /// <summary>A connection to the address could not be made: skip it until a probe connects.</summary>
    public void ReportConnectFailure(BalancerAddress address, Exception exception)
    {
        TimeSpan backoff;
        lock (_lock)
        {
            if (address.IsRemoved || !address.IsHealthy)
            {
                return;
            }
            address.IsHealthy = false;
            address.LastError = exception.Message;
            backoff = NextBackoff(++address.Failures);
            RebuildReady();
        }
        BalancerLog.AddressFailed(_logger, address.EndPoint, _name, backoff, exception);
        _ = ProbeAsync(address, backoff);
        _ = RequestResolve(MinFailureResolveGap);
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed.IsCancellationRequested)
            {
                return;
            }
            _disposed.Cancel();
            _refreshTimer?.Dispose();
        }
    }

    /// <summary>Starts a resolution unless one is running or one started less than <paramref name="minGap"/> ago.</summary>
    private Task? RequestResolve(TimeSpan minGap)
    {
        lock (_lock)
        {
            if (_disposed.IsCancellationRequested)
            {
                return null;
            }
            if (_resolving is { IsCompleted: false } running)
            {
                return running;
            }
            var now = Environment.TickCount64;
            var wait = _resolveStarted ? _lastResolveStart + (long)minGap.TotalMilliseconds - now : 0;
            if (wait > 0)
            {
                // Too soon after the last lookup: do it when the gap has passed rather than not at all.
                if (!_resolveDeferred)
                {
                    _resolveDeferred = true;
                    _ = ResolveLaterAsync(TimeSpan.FromMilliseconds(wait));
                }
                return null;
            }
            _resolveStarted = true;
            _lastResolveStart = now;
            _resolving = Task.Run(ResolveAsync);
            // The timer holds the balancer weakly, so an undisposed channel can still be collected.
            _refreshTimer ??= new Timer(
                static state =>
                {
                    if (((WeakReference<RoundRobinBalancer>)state!).TryGetTarget(out var balancer))
                    {
                        _ = balancer.RequestResolve(TimeSpan.Zero);
                    }
                },
                new WeakReference<RoundRobinBalancer>(this), _refreshInterval, _refreshInterval);
            return _resolving;
        }
    }

    private async Task ResolveLaterAsync(TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _disposed.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        lock (_lock)
        {
            _resolveDeferred = false;
        }
        _ = RequestResolve(TimeSpan.Zero);
    }

    private async Task ResolveAsync()
    {
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_disposed.Token);
            timeout.CancelAfter(ResolveTimeout);
            var resolved = await _resolve(timeout.Token).ConfigureAwait(false);
            if (resolved is not { Length: > 0 })
            {
                throw new SocketException((int)SocketError.HostNotFound, $"'{_name}' resolved to no address.");
            }
            Apply(resolved);
            _lastResolveError = null;
        }
        catch (Exception ex)
        {
            if (_disposed.IsCancellationRequested)
            {
                return;
            }
            // Keep what is known: a DNS hiccup must not take every address away.
            _lastResolveError = ex;
            BalancerLog.ResolveFailed(_logger, _name, Volatile.Read(ref _addresses).Length, ex);
        }
    }

    private void Apply(IPEndPoint[] resolved)
    {
        bool changed;
        lock (_lock)
        {
            var known = _addresses.ToDictionary(a => a.EndPoint);
            var next = new List<BalancerAddress>(resolved.Length);
            foreach (var endPoint in resolved.Distinct())
            {
                next.Add(known.Remove(endPoint, out var existing) ? existing : new BalancerAddress(endPoint, _scheme));
            }
            foreach (var gone in known.Values)
            {
                gone.IsRemoved = true;
            }
            changed = known.Count > 0 || next.Count != _addresses.Length;

            // The rotation first, then the set: PickAsync takes a non-empty set as "resolved" and reads
            // the rotation next, so the other order let a call see the first addresses with an empty
            // rotation and fail as if every address were down.
            _ready = [.. next.Where(a => a.IsHealthy)];
            Volatile.Write(ref _addresses, [.. next]);
        }
        if (changed)
        {
            BalancerLog.Resolved(_logger, _name, resolved);
        }
    }

    private void RebuildReady() => _ready = [.. _addresses.Where(a => a.IsHealthy)];

    private async Task ProbeAsync(BalancerAddress address, TimeSpan backoff)
    {
        try
        {
            while (true)
            {
                await Task.Delay(backoff, _disposed.Token).ConfigureAwait(false);
                if (address.IsRemoved)
                {
                    return;
                }
                if (await CanConnectAsync(address.EndPoint).ConfigureAwait(false))
                {
                    lock (_lock)
                    {
                        if (address.IsRemoved)
                        {
                            return;
                        }
                        address.IsHealthy = true;
                        RebuildReady();
                    }
                    BalancerLog.AddressRecovered(_logger, address.EndPoint, _name);
                    return;
                }
                backoff = NextBackoff(Interlocked.Increment(ref address.Failures));
                BalancerLog.ProbeFailed(_logger, address.EndPoint, _name, backoff);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task<bool> CanConnectAsync(IPEndPoint endPoint)
    {
        using var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_disposed.Token);
        timeout.CancelAfter(ProbeConnectTimeout);
        try
        {
            await socket.ConnectAsync(endPoint, timeout.Token).ConfigureAwait(false);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
        catch (OperationCanceledException) when (!_disposed.IsCancellationRequested)
        {
            return false;
        }
    }

    private TimeSpan NextBackoff(int failures)
    {
        var seconds = _initialBackoff.TotalSeconds * Math.Pow(1.6, Math.Min(failures - 1, 64));
        seconds = Math.Min(seconds, _maxBackoff.TotalSeconds);
#pragma warning disable CA5394 // Jitter only spreads reconnects out; it needs no secure randomness.
        seconds *= 0.8 + (Random.Shared.NextDouble() * 0.4);
#pragma warning restore CA5394
        return TimeSpan.FromSeconds(seconds);
    }
}
