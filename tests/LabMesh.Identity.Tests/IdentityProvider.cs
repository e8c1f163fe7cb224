using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.Json;
using LabMesh.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace LabMesh.Identity.Tests;

/// <summary>
/// An OpenID Connect issuer as LabMesh sees one: a discovery document and a JWKS over HTTP on a loopback
/// port, whose published keys the test changes mid-run (a rotation), counting how often each is read.
/// </summary>
internal sealed class IdentityProvider : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Lock _gate = new();
    private readonly Dictionary<string, AsymmetricAlgorithm> _published = new(StringComparer.Ordinal);
    private int _discoveryReads;
    private int _keyReads;

    private IdentityProvider(WebApplication app, int port)
    {
        _app = app;
        Issuer = $"http://127.0.0.1:{port}/realms/lab";
    }

    /// <summary>The issuer (<c>iss</c>) its discovery document names, and LabMesh's Authority.</summary>
    public string Issuer { get; }

    public int DiscoveryReads => Volatile.Read(ref _discoveryReads);

    /// <summary>How many times its JWKS was read.</summary>
    public int KeyReads => Volatile.Read(ref _keyReads);

    public static async Task<IdentityProvider> StartAsync()
    {
        var port = FreePort.Next();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var provider = new IdentityProvider(app, port);
        app.MapGet("/realms/lab/.well-known/openid-configuration", (HttpContext context) =>
        {
            Interlocked.Increment(ref provider._discoveryReads);
            return Results.Json(new Dictionary<string, object>
            {
                ["issuer"] = provider.Issuer,
                ["jwks_uri"] = provider.Issuer + "/protocol/openid-connect/certs",
                ["authorization_endpoint"] = provider.Issuer + "/protocol/openid-connect/auth",
                ["token_endpoint"] = provider.Issuer + "/protocol/openid-connect/token",
                ["id_token_signing_alg_values_supported"] = new[] { "ES256", "RS256" },
                ["response_types_supported"] = new[] { "code" },
                ["subject_types_supported"] = new[] { "public" },
            });
        });
        app.MapGet("/realms/lab/protocol/openid-connect/certs", () =>
        {
            Interlocked.Increment(ref provider._keyReads);
            return Results.Json(new Dictionary<string, object> { ["keys"] = provider.Jwks() });
        });
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(30));
        return provider;
    }

    /// <summary>Publishes <paramref name="key"/> (EC P-256 or RSA) under <paramref name="kid"/>.</summary>
    public void Publish(string kid, AsymmetricAlgorithm key)
    {
        lock (_gate)
        {
            _published[kid] = key;
        }
    }

    /// <summary>Stops publishing the key <paramref name="kid"/>.</summary>
    public void Withdraw(string kid)
    {
        lock (_gate)
        {
            _published.Remove(kid);
        }
    }

    /// <summary>Claims as this issuer writes them for LabMesh (audience <c>labmesh</c>), from now for an hour; <paramref name="change"/> edits them.</summary>
    public string Claims(Action<Dictionary<string, object>> change)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var claims = new Dictionary<string, object>
        {
            ["iss"] = Issuer,
            ["aud"] = "labmesh",
            ["sub"] = "7f3c2a9e-user",
            ["iat"] = now,
            ["nbf"] = now - 5,
            ["exp"] = now + 3600,
        };
        change(claims);
        return Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(claims));
    }

    private List<Dictionary<string, string>> Jwks()
    {
        lock (_gate)
        {
            return [.. _published.Select(entry => entry.Value switch
            {
                ECDsa ec => Ec(entry.Key, ec.ExportParameters(includePrivateParameters: false)),
                RSA rsa => Rsa(entry.Key, rsa.ExportParameters(includePrivateParameters: false)),
                _ => throw new InvalidOperationException("EC or RSA keys only."),
            })];
        }
    }

    private static Dictionary<string, string> Ec(string kid, ECParameters key) => new()
    {
        ["kty"] = "EC", ["crv"] = "P-256", ["use"] = "sig", ["alg"] = "ES256", ["kid"] = kid,
        ["x"] = Base64Url.EncodeToString(key.Q.X), ["y"] = Base64Url.EncodeToString(key.Q.Y),
    };

    private static Dictionary<string, string> Rsa(string kid, RSAParameters key) => new()
    {
        ["kty"] = "RSA", ["use"] = "sig", ["alg"] = "RS256", ["kid"] = kid,
        ["n"] = Base64Url.EncodeToString(key.Modulus), ["e"] = Base64Url.EncodeToString(key.Exponent),
    };

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
