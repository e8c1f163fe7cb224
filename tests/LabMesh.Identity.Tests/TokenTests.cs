using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Security.Identity;
using LabMesh.Testing;

namespace LabMesh.Identity.Tests;

/// <summary>
/// Every way a token can be wrong is UNAUTHENTICATED with the one terse message, and what the call
/// asked (a requisition) is not written. Each case tries to place an order for its own team; a
/// service then lists that team: nothing.
/// </summary>
[Collection(MeshCollection.Name)]
public sealed class TokenTests(Mesh mesh)
{
    public static TheoryData<string> Cases() =>
    [
        "no token", "empty bearer", "basic scheme", "garbage", "two parts", "bad signature", "claims changed after signing",
        "alg none", "alg none with signature", "HS256 with the public key", "RS256 with the EC key's kid", "expired", "not yet valid",
        "no expiry", "wrong issuer", "wrong audience", "unknown kid", "no kid", "right kid other key", "no role", "unknown role",
        "no team", "no subject", "partner without partner id", "oversize", "team with control characters", "team not ascii",
    ];

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task BadToken_IsUnauthenticated_AndWritesNothing(string kind)
    {
        var team = "tamper-" + Guid.NewGuid().ToString("N")[..8];
        var invoker = kind switch
        {
            "no token" => mesh.WithHeaders(),
            "empty bearer" => mesh.WithHeaders(("authorization", "Bearer ")),
            "basic scheme" => mesh.WithHeaders(("authorization", "Basic " + Convert.ToBase64String(Encoding.ASCII.GetBytes("admin:admin")))),
            _ => mesh.WithToken(Forge(kind, team)),
        };

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            new RequisitionService.RequisitionServiceClient(invoker).CreateRequisitionAsync(Mesh.Order("r-" + team), deadline: Mesh.Deadline).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Equal(AuthorizationInterceptor.UnauthenticatedMessage, error.Status.Detail);
        var listed = await new RequisitionService.RequisitionServiceClient(mesh.As(team, CallerRole.Service))
            .ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Mesh.Deadline);
        Assert.Empty(listed.Requisitions);
    }

    [Fact]
    public async Task TheForger_WithEveryPartRight_IsLetIn()
    {
        // The control: the same hand-made token, untampered, is accepted, so each case above fails for its one flaw.
        var team = "tamper-" + Guid.NewGuid().ToString("N")[..8];
        var token = Jws.SignWithTestKey(Jws.Header("ES256"), Jws.Claims(team));

        var created = await new RequisitionService.RequisitionServiceClient(mesh.WithToken(token))
            .CreateRequisitionAsync(Mesh.Order("r-" + team), deadline: Mesh.Deadline);

        Assert.Equal(team, created.Requisition.TeamId);
    }

    [Fact]
    public async Task ClockSkew_ToleratesAFewSeconds()
    {
        var team = "tamper-" + Guid.NewGuid().ToString("N")[..8];
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var token = Jws.SignWithTestKey(Jws.Header("ES256"), Jws.Claims(team, c =>
        {
            c["nbf"] = now + 10;
            c["iat"] = now + 10;
        }));

        var listed = await new RequisitionService.RequisitionServiceClient(mesh.WithToken(token))
            .ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Mesh.Deadline);

        Assert.Empty(listed.Requisitions);
    }

    private static string Forge(string kind, string team)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = Jws.Header("ES256");
        string Claims(Action<Dictionary<string, object>> change) => Jws.Claims(team, change);
        string Signed(string claims) => Jws.SignWithTestKey(header, claims);
        var valid = Signed(Jws.Claims(team));
        switch (kind)
        {
            case "garbage":
                return "not-a-jwt";
            case "two parts":
                return string.Join('.', valid.Split('.')[..2]);
            case "bad signature":
                var parts = valid.Split('.');
                var signature = parts[2].ToCharArray();
                signature[10] = signature[10] == 'A' ? 'B' : 'A';
                return $"{parts[0]}.{parts[1]}.{new string(signature)}";
            case "claims changed after signing":
                var signedParts = Signed(Jws.Claims("another-team")).Split('.');
                return $"{signedParts[0]}.{Jws.Claims(team)}.{signedParts[2]}";
            case "alg none":
                return $"{Jws.Header("none")}.{Jws.Claims(team)}.";
            case "alg none with signature":
                return $"{Jws.Header("none")}.{Jws.Claims(team)}.{valid.Split('.')[2]}";
            case "HS256 with the public key":
                // The classic confusion: HMAC keyed with the bytes of the public key the server trusts.
                var publicPem = Encoding.ASCII.GetBytes(TestCaller.Key.ExportPublicKeyPem());
                return Jws.SignHs256(Jws.Header("HS256"), Jws.Claims(team), publicPem);
            case "RS256 with the EC key's kid":
                using (var rsa = RSA.Create(2048))
                {
                    return Jws.SignRs256(Jws.Header("RS256"), Jws.Claims(team), rsa);
                }

            case "expired":
                return Signed(Claims(c =>
                {
                    c["iat"] = now - 7200;
                    c["nbf"] = now - 7200;
                    c["exp"] = now - 600;
                }));
            case "not yet valid":
                return Signed(Claims(c => c["nbf"] = now + 600));
            case "no expiry":
                return Signed(Claims(c => c.Remove("exp")));
            case "wrong issuer":
                return Signed(Claims(c => c["iss"] = "someone-else"));
            case "wrong audience":
                return Signed(Claims(c => c["aud"] = "another-system"));
            case "unknown kid":
                using (var other = ECDsa.Create(ECCurve.NamedCurves.nistP256))
                {
                    return Jws.SignEs256(Jws.Header("ES256", "kid-nobody-knows"), Jws.Claims(team), other);
                }

            case "no kid":
                return Jws.SignWithTestKey(Jws.Header("ES256", kid: null), Jws.Claims(team));
            case "right kid other key":
                using (var other = ECDsa.Create(ECCurve.NamedCurves.nistP256))
                {
                    return Jws.SignEs256(header, Jws.Claims(team), other);
                }

            case "no role":
                return Signed(Claims(c => c.Remove("role")));
            case "unknown role":
                return Signed(Claims(c => c["role"] = "superuser"));
            case "no team":
                return Signed(Claims(c => c.Remove("team")));
            case "no subject":
                return Signed(Claims(c => c.Remove("sub")));
            case "partner without partner id":
                return Signed(Claims(c => c["role"] = "partner"));
            case "oversize":
                return Signed(Claims(c => c["padding"] = new string('x', 10_000)));
            case "team not ascii":
                return Signed(Claims(c => c["team"] = team + "\u00e9"));
            case "team with control characters":
                return Signed(Claims(c => c["team"] = team + "\u0001"));
            default:
                throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
    }
}
