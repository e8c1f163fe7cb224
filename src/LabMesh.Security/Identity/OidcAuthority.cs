using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.Protocols;
using Microsoft.IdentityModel.Protocols.OpenIdConnect;
using Microsoft.IdentityModel.Tokens;

namespace LabMesh.Security.Identity;

/// <summary>
/// The signing keys of an OpenID Connect issuer (<see cref="SecurityOptions.Authority"/>): its discovery
/// document and JWKS, read by IdentityModel's <see cref="ConfigurationManager{T}"/> (the part of JwtBearer
/// that fetches and refreshes them) on a schedule (<see cref="SecurityOptions.KeyRefreshInterval"/>) and at
/// once when a token names a <c>kid</c> they lack, a rotation, at most once per
/// <see cref="SecurityOptions.KeyRefreshMinimumInterval"/>. While the issuer cannot be reached the keys read
/// last stay in use; before the first read succeeds, the issuer's tokens are refused.
/// </summary>
/// <remarks>
/// Only EC P-256 (ES256) and RSA of 2048 bits or more (RS256) signing keys are taken, each bound to its one
/// algorithm, as <see cref="SigningKey"/> binds LabMesh's own.
/// </remarks>
public sealed partial class OidcAuthority : IDisposable
{
    private static readonly TimeSpan FetchTimeout = TimeSpan.FromSeconds(10);
    private readonly ConfigurationManager<OpenIdConnectConfiguration> _manager;
    private readonly HttpClient _http;
    private readonly ILogger _logger;
    private readonly long _minimumIntervalMs;
    private readonly Lock _gate = new();
    private Task<bool>? _refresh;
    private long _lastRefreshMs = long.MinValue;
    private OpenIdConnectConfiguration? _adopted;
    private volatile IssuerKeys? _keys;
    private volatile bool _failing;
    private int _removals;

    public OidcAuthority(SecurityOptions options, ILogger logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        _logger = logger;
        var authority = options.Authority?.Trim() ?? "";
        var metadata = string.IsNullOrWhiteSpace(options.MetadataAddress)
            ? authority.TrimEnd('/') + "/.well-known/openid-configuration"
            : options.MetadataAddress.Trim();
        if (!Uri.TryCreate(metadata, UriKind.Absolute, out var address) || (address.Scheme != Uri.UriSchemeHttps && address.Scheme != Uri.UriSchemeHttp))
        {
            throw new ArgumentException($"{SecurityOptions.Section}:Authority (or MetadataAddress) must be an absolute https:// address; it is '{metadata}'.");
        }

        if (options.RequireHttpsMetadata && address.Scheme != Uri.UriSchemeHttps)
        {
            throw new ArgumentException(
                $"{SecurityOptions.Section}:Authority (or MetadataAddress) must use https:// ({metadata}); " +
                $"set {SecurityOptions.Section}:RequireHttpsMetadata=false only for a development issuer.");
        }

        MetadataAddress = address.AbsoluteUri;
        _minimumIntervalMs = (long)Math.Max(options.KeyRefreshMinimumInterval.TotalMilliseconds, 1000);
        _http = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = FetchTimeout };
        _manager = new ConfigurationManager<OpenIdConnectConfiguration>(
            MetadataAddress, new OpenIdConnectConfigurationRetriever(), new HttpDocumentRetriever(_http) { RequireHttps = options.RequireHttpsMetadata })
        {
            AutomaticRefreshInterval = options.KeyRefreshInterval < BaseConfigurationManager.MinimumAutomaticRefreshInterval
                ? BaseConfigurationManager.MinimumAutomaticRefreshInterval
                : options.KeyRefreshInterval,
            RefreshInterval = TimeSpan.FromMilliseconds(_minimumIntervalMs),
        };
    }

    /// <summary>The discovery document's address.</summary>
    public string MetadataAddress { get; }

    /// <summary>The keys as last read; null until the first read succeeds.</summary>
    public IssuerKeys? Current => _keys;

    /// <summary>
    /// How many reads so far dropped a key. A token already checked with a dropped key must be checked again
    /// (<see cref="TokenValidator"/> empties its cache when this changes).
    /// </summary>
    public int Removals => Volatile.Read(ref _removals);

    /// <summary>The keys, read first when they are due (never read yet, or the schedule says so); null while never read.</summary>
    public async ValueTask<IssuerKeys?> KeysAsync()
    {
        try
        {
            Adopt(await _manager.GetConfigurationAsync(CancellationToken.None));
            if (_failing)
            {
                _failing = false;
                LogReachable(_logger, MetadataAddress);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or HttpRequestException or IOException or ArgumentException or TaskCanceledException)
        {
            // Once per outage, not per token: IdentityModel keeps retrying with its own backoff.
            if (!_failing)
            {
                _failing = true;
                if (_keys is null)
                {
                    LogNeverRead(_logger, MetadataAddress, ex.GetBaseException().Message);
                }
                else
                {
                    LogUnreachable(_logger, MetadataAddress, ex.GetBaseException().Message);
                }
            }
        }

        return _keys;
    }

    /// <summary>
    /// A token names a <c>kid</c> the keys lack: read them again now, unless they were read less than the minimum
    /// interval ago. Callers at the same moment share one read. True when the keys changed.
    /// </summary>
    public Task<bool> RefreshForUnknownKeyAsync()
    {
        lock (_gate)
        {
            if (_refresh is { IsCompleted: false } running)
            {
                return running;
            }

            var now = Environment.TickCount64;
            if (_lastRefreshMs != long.MinValue && now - _lastRefreshMs < _minimumIntervalMs)
            {
                return Task.FromResult(false);
            }

            _lastRefreshMs = now;
            return _refresh = RefreshAsync();
        }
    }

    private async Task<bool> RefreshAsync()
    {
        var before = _keys;
        _manager.RequestRefresh();
        await KeysAsync();
        return !ReferenceEquals(before, _keys);
    }

    private void Adopt(OpenIdConnectConfiguration configuration)
    {
        lock (_gate)
        {
            if (ReferenceEquals(configuration, _adopted))
            {
                return;
            }

            _adopted = configuration;
            _lastRefreshMs = Environment.TickCount64;
            var keys = new Dictionary<string, IssuerKey>(StringComparer.Ordinal);
            foreach (var key in configuration.JsonWebKeySet?.Keys ?? [])
            {
                if (Algorithm(key) is { } algorithm && !string.IsNullOrEmpty(key.Kid))
                {
                    keys.TryAdd(key.Kid, new IssuerKey(key, algorithm));
                }
            }

            var previous = _keys;
            var removed = previous?.Keys.Keys.Count(kid => !keys.ContainsKey(kid)) ?? 0;
            var added = keys.Keys.Count(kid => previous?.Keys.ContainsKey(kid) != true);
            if (previous is not null && removed == 0 && added == 0 && previous.Issuer == configuration.Issuer)
            {
                return;
            }

            _keys = new IssuerKeys(configuration.Issuer ?? "", keys);
            if (removed > 0)
            {
                Interlocked.Increment(ref _removals);
            }

            LogKeysRead(_logger, configuration.Issuer ?? "", keys.Count, added, removed);
        }
    }

    /// <summary>The one algorithm a JWK may check: ES256 for EC P-256, RS256 for RSA of 2048 bits or more; null for any other, or an encryption key.</summary>
    private static string? Algorithm(JsonWebKey key)
    {
        if (key.Use is { Length: > 0 } use && use != JsonWebKeyUseNames.Sig)
        {
            return null;
        }

        var algorithm = key.Kty switch
        {
            JsonWebAlgorithmsKeyTypes.EllipticCurve when key.Crv == JsonWebKeyECTypes.P256 => SecurityAlgorithms.EcdsaSha256,
            JsonWebAlgorithmsKeyTypes.RSA when key.KeySize >= 2048 => SecurityAlgorithms.RsaSha256,
            _ => null,
        };
        return algorithm is not null && (string.IsNullOrEmpty(key.Alg) || key.Alg == algorithm) ? algorithm : null;
    }

    public void Dispose() => _http.Dispose();

    [LoggerMessage(Level = LogLevel.Information, Message = "Read the signing keys of OIDC issuer {Issuer}: {Count} keys, {Added} new, {Removed} gone.")]
    private static partial void LogKeysRead(ILogger logger, string issuer, int count, int added, int removed);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot read the OIDC issuer's keys from {Address}: tokens it signed are refused until they are read ({Failure}).")]
    private static partial void LogNeverRead(ILogger logger, string address, string failure);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cannot read the OIDC issuer's keys from {Address}: the keys read before stay in use ({Failure}).")]
    private static partial void LogUnreachable(ILogger logger, string address, string failure);

    [LoggerMessage(Level = LogLevel.Information, Message = "The OIDC issuer's keys at {Address} can be read again.")]
    private static partial void LogReachable(ILogger logger, string address);
}

/// <summary>An issuer's signing keys by <c>kid</c>, as read at one moment.</summary>
public sealed record IssuerKeys(string Issuer, IReadOnlyDictionary<string, IssuerKey> Keys);

/// <summary>One of an issuer's signing keys and the one algorithm it may check.</summary>
public sealed record IssuerKey(SecurityKey Key, string Algorithm);
