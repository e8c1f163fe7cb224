using LabMesh.Security.Identity;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.Tokens;

namespace LabMesh.Bench.Servers;

/// <summary>
/// For <c>--oidc</c>: an OpenID Connect issuer in the bench process (a discovery document and a JWKS of one
/// EC key over HTTP on loopback), so the all-in-one host checks the bench's token against keys it read
/// from an issuer (<c>LabMesh:Security:Authority</c>) instead of its configured key. Read once at start.
/// </summary>
internal sealed class OidcIssuer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private OidcIssuer(WebApplication app, string issuer, SigningKey key)
    {
        _app = app;
        Issuer = issuer;
        Key = key;
    }

    /// <summary>The <c>iss</c> its discovery document names (the host's Authority).</summary>
    public string Issuer { get; }

    /// <summary>The key it publishes, to sign the bench's token with.</summary>
    public SigningKey Key { get; }

    public static async Task<OidcIssuer> StartAsync(SigningKey key)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var issuer = "";
        var jwk = JsonWebKeyConverter.ConvertFromSecurityKey(key.SecurityKey);
        var published = new Dictionary<string, string>
        {
            ["kty"] = jwk.Kty, ["crv"] = jwk.Crv, ["x"] = jwk.X, ["y"] = jwk.Y, ["kid"] = key.KeyId, ["alg"] = key.Algorithm, ["use"] = "sig",
        };
        // Mapped before the start (endpoints added later are not served); the issuer names the port bound at start.
        app.MapGet("/oidc/.well-known/openid-configuration", () => Results.Json(new Dictionary<string, object>
        {
            ["issuer"] = issuer,
            ["jwks_uri"] = issuer + "/jwks",
            ["id_token_signing_alg_values_supported"] = new[] { key.Algorithm },
        }));
        app.MapGet("/oidc/jwks", () => Results.Json(new Dictionary<string, object> { ["keys"] = new[] { published } }));
        await app.StartAsync();
        issuer = app.Urls.Single() + "/oidc";
        return new OidcIssuer(app, issuer, key);
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
