using System.Buffers.Text;
using System.Text.Json;
using Grpc.Core;
using Grpc.Core.Interceptors;
using LabMesh.Security.Identity;

namespace LabMesh.Cli.Mesh;

/// <summary>
/// Who the CLI calls as. Every call the CLI makes gets its identity here and nowhere else: a bearer token
/// (SECURITY.md), from <see cref="Credentials"/>.
/// </summary>
internal sealed record CallIdentity(string Team, string Subject, string Role, Credentials Credentials)
{
    public const string DefaultSubject = "labmesh-cli";

    /// <summary>The identity of the CLI itself for a team: a service of the ordering product.</summary>
    public static CallIdentity ForTeam(string team, Credentials credentials) => new(team, DefaultSubject, "service", credentials);

    /// <summary>The same team, acting as a clinician (who may acknowledge a critical result).</summary>
    public CallIdentity AsClinician(string subject) => this with { Role = "clinician", Subject = subject };

    /// <summary>An invoker whose every call carries this identity.</summary>
    public CallInvoker Apply(CallInvoker invoker) => invoker.Intercept(metadata =>
    {
        foreach (var (key, value) in Credentials.Headers(this))
        {
            metadata.Add(key, value);
        }

        return metadata;
    });
}

/// <summary>
/// Where the CLI's tokens come from: a token given with <c>--token</c> or <c>LABMESH_TOKEN</c>, sent as is
/// (a service token also names <c>--team</c> as the team it acts for); otherwise the all-in-one host's
/// development key (<c>LABMESH_DEV_KEY</c>, else found by <see cref="FindDevelopmentKey(string)"/>), with which the
/// CLI signs a short-lived token per identity; otherwise none, and the mesh answers UNAUTHENTICATED.
/// </summary>
internal sealed class Credentials
{
    public const string TokenVariable = "LABMESH_TOKEN";
    public const string DevelopmentKeyVariable = "LABMESH_DEV_KEY";
    public const string DevelopmentKeyPath = "data/dev-signing-key.json";

    /// <summary>
    /// Where the all-in-one host keeps its development key, seen from a directory: its own data directory,
    /// and, from a clone of the repository, the host project's (<c>dotnet run --project
    /// services/LabMesh.AllInOne</c> starts the host in its project directory).
    /// </summary>
    private static readonly string[] DevelopmentKeyPlaces = [DevelopmentKeyPath, "services/LabMesh.AllInOne/" + DevelopmentKeyPath];
    private static readonly TimeSpan Lifetime = TimeSpan.FromHours(1);

    private readonly string? _token;
    private readonly bool _serviceToken;
    private readonly DevelopmentKeyFile? _key;
    private readonly Dictionary<(string Team, string Subject, string Role), string> _minted = [];

    private Credentials(string? token, DevelopmentKeyFile? key)
    {
        _token = token;
        _serviceToken = token is not null && IsMeshServiceToken(token);
        _key = key;
    }

    /// <summary>Where the tokens come from, for messages: "--token", "the development key ...", or "none".</summary>
    public string Source => _token is not null ? "a given token" : _key is not null ? "the development key " + _key.Path : "none";

    /// <summary><paramref name="token"/> (the --token option), else LABMESH_TOKEN, else the development key file, else nothing.</summary>
    public static Credentials Find(string? token)
    {
        token = string.IsNullOrWhiteSpace(token) ? Environment.GetEnvironmentVariable(TokenVariable) : token;
        if (!string.IsNullOrWhiteSpace(token))
        {
            return new Credentials(token.Trim(), null);
        }

        return new Credentials(null, FindDevelopmentKey());
    }

    /// <summary>The development key <c>LABMESH_DEV_KEY</c> names, else the one <see cref="FindDevelopmentKey(string)"/> finds; null when none can be read.</summary>
    public static DevelopmentKeyFile? FindDevelopmentKey()
    {
        var path = Environment.GetEnvironmentVariable(DevelopmentKeyVariable);
        path = string.IsNullOrWhiteSpace(path) ? FindDevelopmentKey(Environment.CurrentDirectory) : path;
        return path is not null && File.Exists(path) ? DevelopmentKeyFile.Read(path) : null;
    }

    /// <summary>
    /// The first <see cref="DevelopmentKeyPlaces"/> that exists in <paramref name="directory"/> or a directory above it,
    /// up to the repository's root (the one holding LabMesh.sln) or the file system's; null when there is none.
    /// </summary>
    public static string? FindDevelopmentKey(string directory)
    {
        for (var current = new DirectoryInfo(directory); current is not null; current = current.Parent)
        {
            foreach (var place in DevelopmentKeyPlaces)
            {
                var candidate = Path.Combine(current.FullName, place);
                if (File.Exists(candidate))
                {
                    return candidate;
                }
            }

            if (File.Exists(Path.Combine(current.FullName, "LabMesh.sln")))
            {
                return null;
            }
        }

        return null;
    }

    /// <summary>The metadata of one call as <paramref name="identity"/>.</summary>
    public IEnumerable<(string Key, string Value)> Headers(CallIdentity identity)
    {
        if (_token is not null)
        {
            yield return ("authorization", "Bearer " + _token);
            if (_serviceToken)
            {
                yield return ("x-labmesh-for-team", identity.Team);
                yield return ("x-labmesh-for-actor", identity.Subject);
            }
        }
        else if (_key is not null)
        {
            string token;
            lock (_minted)
            {
                if (!_minted.TryGetValue((identity.Team, identity.Subject, identity.Role), out token!))
                {
                    token = _key.Mint(new TokenIdentity(identity.Team, TokenIdentity.ParseRole(identity.Role)!.Value, identity.Subject, null), Lifetime);
                    _minted[(identity.Team, identity.Subject, identity.Role)] = token;
                }
            }

            yield return ("authorization", "Bearer " + token);
        }
    }

    /// <summary>
    /// Whether a token, read without checking it (the mesh checks it), is a service token with no team claim:
    /// the only kind that acts for the team and actor it names. A team-bound one calls as itself.
    /// </summary>
    private static bool IsMeshServiceToken(string token)
    {
        var parts = token.Split('.');
        if (parts.Length != 3)
        {
            return false;
        }

        try
        {
            using var payload = JsonDocument.Parse(Base64Url.DecodeFromChars(parts[1]));
            var claims = payload.RootElement;
            return claims.ValueKind == JsonValueKind.Object
                && claims.TryGetProperty("role", out var role) && role.ValueKind == JsonValueKind.String && role.GetString() == "service"
                && !claims.TryGetProperty("team", out _);
        }
        catch (Exception e) when (e is FormatException or JsonException)
        {
            return false;
        }
    }
}

/// <summary>The all-in-one host's development key file (see SECURITY.md): the key, its kid, issuer and audience.</summary>
internal sealed class DevelopmentKeyFile
{
    private readonly SigningKey _key;

    private DevelopmentKeyFile(string path, SigningKey key, string issuer, string audience)
    {
        Path = path;
        _key = key;
        Issuer = issuer;
        Audience = audience;
    }

    public string Path { get; }

    public string Issuer { get; }

    public string Audience { get; }

    /// <summary>The key in <paramref name="path"/>; null when the file cannot be read or holds no usable private key.</summary>
    public static DevelopmentKeyFile? Read(string path)
    {
        try
        {
            var stored = DevelopmentKey.Read(path);
            var key = SigningKey.FromPem(stored.KeyId, stored.PrivateKeyPem, path);
            return key.HasPrivateKey ? new DevelopmentKeyFile(path, key, stored.Issuer, stored.Audience) : null;
        }
        catch (Exception e) when (e is IOException or JsonException or ArgumentException or InvalidOperationException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>A token for <paramref name="identity"/> signed with the key (ES256 for an EC key, RS256 for RSA), valid from now for <paramref name="lifetime"/>.</summary>
    public string Mint(TokenIdentity identity, TimeSpan lifetime) => _key.Mint(identity, Issuer, Audience, lifetime);
}
