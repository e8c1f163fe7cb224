using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using LabMesh.Messaging.Storage;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace LabMesh.Security.Identity;

/// <summary>
/// This process's keys: the trusted public keys and its own signing key, from <see cref="SecurityOptions"/>;
/// or, with none configured, the development key (<see cref="DevelopmentKeyFile"/>), made only once the
/// server listens on loopback alone. Until then (and for ever, when the start is refused) every token is refused.
/// </summary>
/// <remarks>
/// The keys live as long as the process: IdentityModel caches a signature provider per public key
/// process-wide, so disposing a key would break a later host (a test's) that checks with the same key.
/// </remarks>
public sealed partial class SecurityKeys : IDisposable
{
    /// <summary>The development key's file name, under the data directory (<c>LabMesh:Storage:DataDirectory</c>).</summary>
    public const string DevelopmentKeyFileName = "dev-signing-key.json";

    private readonly SecurityOptions _options;
    private readonly string _dataDirectory;
    private readonly bool _developmentAllowed;
    private readonly ILogger<SecurityKeys> _logger;
    private readonly List<SigningKey> _configured = [];
    private readonly OidcAuthority? _authority;
    private volatile TokenValidator? _validator;

    public SecurityKeys(IOptions<SecurityOptions> options, IOptions<StorageOptions> storage, IHostEnvironment environment, ILogger<SecurityKeys> logger)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(environment);
        _options = options.Value;
        _dataDirectory = storage.Value.DataDirectory;
        _developmentAllowed = _options.DevelopmentKeys || environment.IsDevelopment();
        _logger = logger;

        for (var i = 0; i < _options.Keys.Count; i++)
        {
            var key = _options.Keys[i];
            _configured.Add(SigningKey.FromPem(key.Id, key.PublicKeyPem, $"{SecurityOptions.Section}:Keys:{i}"));
        }

        if (!string.IsNullOrWhiteSpace(_options.SigningKeyPem))
        {
            Signing = SigningKey.FromPem(_options.SigningKeyId ?? "", _options.SigningKeyPem, $"{SecurityOptions.Section}:SigningKeyPem (with SigningKeyId)");
            if (!Signing.HasPrivateKey)
            {
                throw new ArgumentException($"{SecurityOptions.Section}:SigningKeyPem must be a private key.");
            }

            _configured.Add(Signing);
        }

        if (!string.IsNullOrWhiteSpace(_options.Authority))
        {
            _authority = new OidcAuthority(_options, logger);
        }

        if (_configured.Count > 0)
        {
            _validator = NewValidator(_configured);
        }
    }

    public string Issuer => _options.Issuer;

    public string Audience => _options.Audience;

    /// <summary>The checker of bearer tokens; null until the keys are settled at start (every call is then UNAUTHENTICATED).</summary>
    public TokenValidator? Validator => _validator;

    /// <summary>The key this process signs its service tokens with: configured, or the development key; null when neither.</summary>
    public SigningKey? Signing { get; private set; }

    /// <summary>The development key's file when this process made or loaded one; null otherwise.</summary>
    public string? DevelopmentKeyFile { get; private set; }

    /// <summary>
    /// Called once the server listens: with no key configured, takes the development key when allowed and
    /// every address is loopback, and otherwise refuses the start with an error that says what to configure.
    /// </summary>
    public void Settle(IReadOnlyCollection<string> addresses)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        if (_authority is not null)
        {
            // The issuer's keys are read now rather than by the first token it signed (failures are logged).
            _ = _authority.KeysAsync().AsTask();
        }

        if (_validator is not null)
        {
            return;
        }

        var exposed = addresses.Where(a => !IsLoopback(a)).ToList();
        if (!_developmentAllowed || exposed.Count > 0 || addresses.Count == 0)
        {
            var where = exposed.Count > 0 ? $"it listens on {string.Join(", ", exposed)}, which is not loopback" : "this is not a development configuration";
            throw new InvalidOperationException(
                $"LabMesh refuses to start without token keys: {where}, and neither {SecurityOptions.Section}:Keys nor " +
                $"{SecurityOptions.Section}:SigningKeyPem is configured. Configure the keys (see SECURITY.md); a development key " +
                "is only made for a host that listens on loopback alone (the all-in-one host, or a service in the Development environment).");
        }

        var file = Path.GetFullPath(Path.Combine(_dataDirectory, DevelopmentKeyFileName));
        Signing = DevelopmentKey.LoadOrCreate(file, _options.Issuer, _options.Audience);
        DevelopmentKeyFile = file;
        _validator = NewValidator([Signing]);
        LogDevelopmentKey(_logger, file);
    }

    /// <summary>The OIDC issuer whose tokens are trusted too (<see cref="SecurityOptions.Authority"/>); null when none is configured.</summary>
    public OidcAuthority? Authority => _authority;

    public void Dispose() => _authority?.Dispose();

    private TokenValidator NewValidator(IEnumerable<SigningKey> keys) =>
        new(keys, _options.Issuer, _options.Audience, _options.ClockSkew, _authority, _options.Claims);

    /// <summary>True for an address whose host is <c>localhost</c> or a loopback IP (<c>http://127.0.0.1:5000</c>, <c>http://[::1]:5000</c>).</summary>
    public static bool IsLoopback(string address)
    {
        ArgumentNullException.ThrowIfNull(address);
        var rest = address.Contains("://", StringComparison.Ordinal) ? address[(address.IndexOf("://", StringComparison.Ordinal) + 3)..] : address;
        string host;
        if (rest.StartsWith('['))
        {
            var end = rest.IndexOf(']', StringComparison.Ordinal);
            host = end > 0 ? rest[1..end] : rest;
        }
        else
        {
            var end = rest.IndexOfAny([':', '/']);
            host = end >= 0 ? rest[..end] : rest;
        }

        return host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "No token keys are configured: using the development signing key {File} (loopback only; never in production).")]
    private static partial void LogDevelopmentKey(ILogger logger, string file);
}

/// <summary>The development signing key's file: the key and the issuer and audience it is used with (the CLI reads it).</summary>
public sealed class DevelopmentKey
{
    [JsonPropertyName("kid")]
    public string KeyId { get; set; } = "";

    [JsonPropertyName("issuer")]
    public string Issuer { get; set; } = "";

    [JsonPropertyName("audience")]
    public string Audience { get; set; } = "";

    [JsonPropertyName("private_key_pem")]
    public string PrivateKeyPem { get; set; } = "";

    /// <summary>
    /// The key in <paramref name="file"/>, or a new EC P-256 key written there (owner read/write only), so a
    /// restart keeps the tokens it printed valid. The issuer and audience in the file follow the configuration.
    /// </summary>
    public static SigningKey LoadOrCreate(string file, string issuer, string audience)
    {
        ArgumentNullException.ThrowIfNull(file);
        if (File.Exists(file))
        {
            var stored = JsonSerializer.Deserialize(File.ReadAllText(file), DevelopmentKeyJson.Default.DevelopmentKey)
                ?? throw new InvalidOperationException($"{file} is empty: delete it to make a new development key.");
            var key = SigningKey.FromPem(stored.KeyId, stored.PrivateKeyPem, file);
            if (stored.Issuer != issuer || stored.Audience != audience)
            {
                Write(file, key, issuer, audience);
            }

            return key;
        }

        var created = SigningKey.Generate("dev-" + Guid.NewGuid().ToString("N")[..12]);
        // The data directory, owner-only as the stores beside the key make it (a directory that exists keeps its mode).
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        }
        else
        {
            Directory.CreateDirectory(Path.GetDirectoryName(file)!, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        Write(file, created, issuer, audience);
        return created;
    }

    /// <summary>Reads a development key file (the CLI, tests).</summary>
    public static DevelopmentKey Read(string file) =>
        JsonSerializer.Deserialize(File.ReadAllText(file), DevelopmentKeyJson.Default.DevelopmentKey) ?? throw new InvalidOperationException($"{file} is empty.");

    private static void Write(string file, SigningKey key, string issuer, string audience)
    {
        var json = JsonSerializer.Serialize(
            new DevelopmentKey { KeyId = key.KeyId, Issuer = issuer, Audience = audience, PrivateKeyPem = key.ExportPrivateKeyPem() },
            DevelopmentKeyJson.Default.DevelopmentKey);
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using var stream = new FileStream(file, options);
        using var writer = new StreamWriter(stream);
        writer.Write(json);
    }
}

/// <summary>The development key file's JSON, by generated code (no reflection: the Native AOT executable reads it too).</summary>
[JsonSerializable(typeof(DevelopmentKey))]
internal sealed partial class DevelopmentKeyJson : JsonSerializerContext;

/// <summary>Settles <see cref="SecurityKeys"/> once the server listens (its addresses are known only then).</summary>
internal sealed class SecurityKeysStartup(SecurityKeys keys, IServer server) : IHostedLifecycleService
{
    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken)
    {
        var addresses = server.Features.Get<IServerAddressesFeature>()?.Addresses.ToList() ?? [];
        keys.Settle(addresses);
        return Task.CompletedTask;
    }

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
