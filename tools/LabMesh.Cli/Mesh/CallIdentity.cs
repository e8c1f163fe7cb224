using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using Grpc.Core.Interceptors;

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
/// development key (<c>LABMESH_DEV_KEY</c>, else found by <see cref="FindDevelopmentKey"/>), with which the
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

        var path = Environment.GetEnvironmentVariable(DevelopmentKeyVariable);
        path = string.IsNullOrWhiteSpace(path) ? FindDevelopmentKey(Environment.CurrentDirectory) : path;
        return new Credentials(null, path is not null && File.Exists(path) ? DevelopmentKeyFile.Read(path) : null);
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
                    token = _key.Mint(identity.Team, identity.Subject, identity.Role, Lifetime);
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
    private DevelopmentKeyFile(string path, string keyId, string issuer, string audience, string privateKeyPem)
    {
        Path = path;
        KeyId = keyId;
        Issuer = issuer;
        Audience = audience;
        PrivateKeyPem = privateKeyPem;
    }

    public string Path { get; }

    public string KeyId { get; }

    public string Issuer { get; }

    public string Audience { get; }

    private string PrivateKeyPem { get; }

    public static DevelopmentKeyFile? Read(string path)
    {
        try
        {
            using var json = JsonDocument.Parse(File.ReadAllText(path));
            var root = json.RootElement;
            return new DevelopmentKeyFile(path, root.GetProperty("kid").GetString()!, root.GetProperty("issuer").GetString()!,
                root.GetProperty("audience").GetString()!, root.GetProperty("private_key_pem").GetString()!);
        }
        catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException or InvalidOperationException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>A compact JWS signed with the key: ES256 for an EC key, RS256 for an RSA key.</summary>
    public string Mint(string team, string subject, string role, TimeSpan lifetime)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        using var ec = ECDsa.Create();
        using var rsa = RSA.Create();
        var isEc = TryImport(ec);
        if (!isEc)
        {
            rsa.ImportFromPem(PrivateKeyPem);
        }

        var header = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, string> { ["alg"] = isEc ? "ES256" : "RS256", ["typ"] = "JWT", ["kid"] = KeyId });
        var payload = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["iss"] = Issuer,
            ["aud"] = Audience,
            ["sub"] = subject,
            ["team"] = team,
            ["role"] = role,
            ["iat"] = now,
            ["nbf"] = now - 5,
            ["exp"] = now + (long)lifetime.TotalSeconds,
        });
        var signingInput = Base64Url.EncodeToString(header) + "." + Base64Url.EncodeToString(payload);
        var data = Encoding.ASCII.GetBytes(signingInput);
        var signature = isEc
            ? ec.SignData(data, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation)
            : rsa.SignData(data, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return signingInput + "." + Base64Url.EncodeToString(signature);
    }

    private bool TryImport(ECDsa ec)
    {
        try
        {
            ec.ImportFromPem(PrivateKeyPem);
            return true;
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            return false;
        }
    }
}
