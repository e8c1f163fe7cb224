using System.Security.Cryptography;
using Grpc.Core;
using Grpc.Net.Client;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Security.Identity;
using LabMesh.Testing;
using Microsoft.Extensions.Logging;

namespace LabMesh.Identity.Tests;

/// <summary>
/// Tokens from the operator's identity provider (<c>LabMesh:Security:Authority</c>): its discovery document
/// and JWKS served over HTTP by <see cref="IdentityProvider"/>, its claims under the names it uses (Entra-style
/// <c>roles</c> array, <c>tenant</c>, <c>lab</c>), a key rotation mid-run, beside LabMesh's own keys.
/// </summary>
public sealed class OidcIssuerTests(IssuerMesh mesh) : IClassFixture<IssuerMesh>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);
    private readonly IdentityProvider _provider = mesh.Provider;
    private readonly ECDsa _first = mesh.EcKey;
    private readonly RSA _rsa = mesh.RsaKey;

    [Fact]
    public async Task ClinicianOfTheIssuer_PlacesAnOrder_ForTheTeamItsTenantClaimNames()
    {
        var team = Team();
        var token = Sign("idp-ec-1", _first, _provider.Claims(c =>
        {
            c["roles"] = new[] { "offline_access", "clinician", "uma_authorization" };
            c["tenant"] = team;
        }));

        var created = await Requisitions(token).CreateRequisitionAsync(Mesh.Order("r-" + team), deadline: Deadline);

        Assert.Equal(team, created.Requisition.TeamId);
    }

    [Fact]
    public async Task PartnerOfTheIssuer_IsThePartnerItsLabClaimNames()
    {
        // A partner reads only what is assigned to its lab: lab-a's service requests, not lab-b's.
        var team = Team();
        var placed = await Requisitions(TestCaller.Token(team, CallerRole.Service))
            .CreateRequisitionAsync(Mesh.Order("r-" + team, partner: "lab-a", secondPartner: "lab-b"), deadline: Deadline);
        var token = Sign("idp-rsa-1", _rsa, _provider.Claims(c =>
        {
            c["roles"] = "partner";
            c["tenant"] = team;
            c["lab"] = "lab-a";
        }), rsa: true);

        var client = new Contracts.ServiceRequest.V1.ServiceRequestService.ServiceRequestServiceClient(Invoker(token));
        var listed = await Eventually.MatchAsync(
            async () => await client.ListServiceRequestsAsync(new Contracts.ServiceRequest.V1.ListServiceRequestsRequest(), deadline: Deadline),
            r => r.ServiceRequests.Count > 0, Timeout, "lab-a's service request");

        Assert.All(listed.ServiceRequests, s => Assert.Equal("lab-a", s.PartnerId));
        Assert.All(listed.ServiceRequests, s => Assert.Equal(placed.Requisition.Id, s.RequisitionId));
    }

    public static TheoryData<string> Refused() =>
    [
        "LabMesh's claim names, not the issuer's", "two LabMesh roles in the list", "no LabMesh role in the list", "tenant a number",
        "issuer's key, LabMesh's issuer", "LabMesh's key, the issuer's issuer", "another issuer", "wrong audience", "expired",
        "kid the issuer never published", "EC kid with RS256", "partner without lab",
    ];

    [Theory]
    [MemberData(nameof(Refused))]
    public async Task IssuerTokens_WithAnyFlaw_AreUnauthenticated_WithTheOneMessage(string kind)
    {
        var team = Team();
        void Clinician(Dictionary<string, object> c)
        {
            c["roles"] = new[] { "clinician" };
            c["tenant"] = team;
        }

        var token = kind switch
        {
            "LabMesh's claim names, not the issuer's" => Sign("idp-ec-1", _first, _provider.Claims(c =>
            {
                c["role"] = "clinician";
                c["team"] = team;
            })),
            "two LabMesh roles in the list" => Sign("idp-ec-1", _first, _provider.Claims(c =>
            {
                Clinician(c);
                c["roles"] = new[] { "clinician", "admin" };
            })),
            "no LabMesh role in the list" => Sign("idp-ec-1", _first, _provider.Claims(c =>
            {
                Clinician(c);
                c["roles"] = new[] { "offline_access" };
            })),
            "tenant a number" => Sign("idp-ec-1", _first, _provider.Claims(c =>
            {
                Clinician(c);
                c["tenant"] = 5;
            })),
            "issuer's key, LabMesh's issuer" => Sign("idp-ec-1", _first, Jws.Claims(team)),
            "LabMesh's key, the issuer's issuer" => Jws.SignWithTestKey(Jws.Header("ES256"), _provider.Claims(Clinician)),
            "another issuer" => Sign("idp-ec-1", _first, _provider.Claims(c =>
            {
                Clinician(c);
                c["iss"] = "http://127.0.0.1:1/realms/other";
            })),
            "wrong audience" => Sign("idp-ec-1", _first, _provider.Claims(c =>
            {
                Clinician(c);
                c["aud"] = "account";
            })),
            "expired" => Sign("idp-ec-1", _first, _provider.Claims(c =>
            {
                Clinician(c);
                c["exp"] = DateTimeOffset.UtcNow.AddMinutes(-5).ToUnixTimeSeconds();
            })),
            "kid the issuer never published" => Sign("idp-ec-unknown", _first, _provider.Claims(Clinician)),
            "EC kid with RS256" => Jws.SignRs256(Jws.Header("RS256", "idp-ec-1"), _provider.Claims(Clinician), _rsa),
            "partner without lab" => Sign("idp-ec-1", _first, _provider.Claims(c =>
            {
                c["roles"] = "partner";
                c["tenant"] = team;
            })),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };

        var error = await Assert.ThrowsAsync<RpcException>(() =>
            Requisitions(token).CreateRequisitionAsync(Mesh.Order("r-" + team), deadline: Deadline).ResponseAsync);

        Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        Assert.Equal(AuthorizationInterceptor.UnauthenticatedMessage, error.Status.Detail);
        var listed = await Requisitions(TestCaller.Token(team, CallerRole.Service)).ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline);
        Assert.Empty(listed.Requisitions);
    }

    [Fact]
    public async Task KeyRotation_TheNewKeyIsTaken_AndTheWithdrawnOneRefused_EvenForATokenCheckedBefore()
    {
        // Its own issuer and host: the rotation withdraws a key the other tests sign with.
        await using var provider = await IdentityProvider.StartAsync();
        using var first = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        provider.Publish("idp-ec-1", first);
        await using var host = await StartRequisitionsAsync(provider.Issuer, minimumInterval: "00:00:01");
        using var channel = host.CreateChannel();
        var team = Team();
        Dictionary<string, object> Clinician(Dictionary<string, object> c)
        {
            c["roles"] = "clinician";
            c["tenant"] = team;
            return c;
        }

        async Task<bool> Accepted(string token)
        {
            try
            {
                await new RequisitionService.RequisitionServiceClient(WithToken(channel, token)).ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline);
                return true;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unauthenticated)
            {
                return false;
            }
        }

        var before = Sign("idp-ec-1", first, provider.Claims(c => Clinician(c)));
        Assert.True(await Accepted(before));
        var reads = provider.KeyReads;

        // The issuer rotates: it publishes a new key, signs with it, and withdraws the old one.
        using var second = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        provider.Publish("idp-ec-2", second);
        provider.Withdraw("idp-ec-1");
        var after = Sign("idp-ec-2", second, provider.Claims(c => Clinician(c)));

        // The first token naming the new kid makes the keys be read again (once a second at most, so poll).
        await Eventually.MatchAsync(() => Accepted(after), accepted => accepted, Timeout, "a token signed with the issuer's new key to be accepted");
        Assert.True(provider.KeyReads > reads);

        // The withdrawn key: a token it signs is refused, and so is the one accepted (and cached) before.
        var late = Sign("idp-ec-1", first, provider.Claims(c => c["sub"] = Clinician(c)["sub"] + "-late"));
        Assert.False(await Accepted(late));
        Assert.False(await Accepted(before));
        // LabMesh's own keys are untouched by the issuer's rotation.
        Assert.True(await Accepted(TestCaller.Token(team, CallerRole.Clinician)));
        Assert.Empty(host.Logs.Errors);
    }

    [Fact]
    public async Task UnknownKids_ReadTheIssuersKeys_AtMostOncePerInterval()
    {
        await using var provider = await IdentityProvider.StartAsync();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        provider.Publish("only", key);
        await using var host = await StartRequisitionsAsync(provider.Issuer, minimumInterval: "01:00:00");
        using var channel = host.CreateChannel();
        await Eventually.HoldsAsync(() => provider.KeyReads == 1, Timeout, "the keys read once at start");
        var team = Team();

        for (var i = 0; i < 20; i++)
        {
            var token = Sign("forged-" + i, key, provider.Claims(c =>
            {
                c["roles"] = "clinician";
                c["tenant"] = team;
            }));
            var error = await Assert.ThrowsAsync<RpcException>(() => new RequisitionService.RequisitionServiceClient(WithToken(channel, token))
                .ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline).ResponseAsync);
            Assert.Equal(StatusCode.Unauthenticated, error.StatusCode);
        }

        // The one published key still works, and twenty forged kids read the keys no more than the start did.
        var good = Sign("only", key, provider.Claims(c =>
        {
            c["roles"] = "clinician";
            c["tenant"] = team;
        }));
        await new RequisitionService.RequisitionServiceClient(WithToken(channel, good)).ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline);
        Assert.Equal(1, provider.KeyReads);
    }

    [Fact]
    public async Task IssuerUnreachable_TheHostStarts_LabMeshTokensWork_AndOneWarningSaysWhy()
    {
        await using var host = await StartRequisitionsAsync($"http://127.0.0.1:{FreePort.Next()}/realms/gone", minimumInterval: "00:00:01");
        using var channel = host.CreateChannel();
        var team = Team();

        await new RequisitionService.RequisitionServiceClient(WithToken(channel, TestCaller.Token(team, CallerRole.Clinician)))
            .ListRequisitionsAsync(new ListRequisitionsRequest(), deadline: Deadline);
        var warning = await Eventually.MatchAsync(
            () => Task.FromResult(host.Logs.Records.Where(r => r.Message.Contains("Cannot read the OIDC issuer's keys", StringComparison.Ordinal)).ToList()),
            found => found.Count > 0, Timeout, "a warning that the issuer's keys cannot be read");
        Assert.Equal(LogLevel.Warning, warning[0].Level);
        Assert.Contains("/realms/gone/.well-known/openid-configuration", warning[0].Message, StringComparison.Ordinal);
        Assert.Empty(host.Logs.Errors);
    }

    /// <summary>The settings that trust <paramref name="authority"/> (over http, as a development issuer) with Entra/Keycloak-style claim names.</summary>
    internal static async Task<Dictionary<string, string?>> IssuerSettings(string authority, string minimumInterval)
    {
        var settings = await TestSettings.CreateAsync(Backend.Sqlite);
        settings[$"{SecurityOptions.Section}:Authority"] = authority;
        settings[$"{SecurityOptions.Section}:RequireHttpsMetadata"] = "false";
        settings[$"{SecurityOptions.Section}:KeyRefreshMinimumInterval"] = minimumInterval;
        settings[$"{SecurityOptions.Section}:Claims:Role"] = "roles";
        settings[$"{SecurityOptions.Section}:Claims:Team"] = "tenant";
        settings[$"{SecurityOptions.Section}:Claims:PartnerId"] = "lab";
        return settings;
    }

    private static async Task<ServiceHost> StartRequisitionsAsync(string authority, string minimumInterval) =>
        await MeshHosts.StartRequisitionsAsync(await IssuerSettings(authority, minimumInterval));

    private static DateTime Deadline => DateTime.UtcNow + Timeout;

    private static string Team() => "idp-" + Guid.NewGuid().ToString("N")[..8];

    private static string Sign(string kid, AsymmetricAlgorithm key, string claims, bool rsa = false) => key switch
    {
        ECDsa ec when !rsa => Jws.SignEs256(Jws.Header("ES256", kid), claims, ec),
        RSA r => Jws.SignRs256(Jws.Header("RS256", kid), claims, r),
        _ => throw new ArgumentException("EC or RSA.", nameof(key)),
    };

    private RequisitionService.RequisitionServiceClient Requisitions(string token) => new(Invoker(token));

    private CallInvoker Invoker(string token) => WithToken(mesh.Channel, token);

    private static CallInvoker WithToken(GrpcChannel channel, string token) =>
        TestCaller.InvokerWithHeaders(channel, new Metadata { { "authorization", "Bearer " + token } });
}

/// <summary>An identity provider publishing an EC and an RSA key, and the all-in-one host trusting it beside LabMesh's keys.</summary>
public sealed class IssuerMesh : IAsyncLifetime
{
    public ECDsa EcKey { get; } = ECDsa.Create(ECCurve.NamedCurves.nistP256);

    public RSA RsaKey { get; } = RSA.Create(2048);

    internal IdentityProvider Provider { get; private set; } = null!;

    public GrpcChannel Channel { get; private set; } = null!;

    private ServiceHost _host = null!;

    public async Task InitializeAsync()
    {
        Provider = await IdentityProvider.StartAsync();
        Provider.Publish("idp-ec-1", EcKey);
        Provider.Publish("idp-rsa-1", RsaKey);
        var settings = await OidcIssuerTests.IssuerSettings(Provider.Issuer, minimumInterval: "00:00:01");
        _host = await MeshHosts.StartAllInOneAsync(settings, FreePort.Next()).WaitAsync(TimeSpan.FromSeconds(120));
        Channel = _host.CreateChannel();
    }

    public async Task DisposeAsync()
    {
        Channel.Dispose();
        var logs = _host.Logs;
        await _host.DisposeAsync();
        await Provider.DisposeAsync();
        EcKey.Dispose();
        RsaKey.Dispose();
        logs.AssertNoErrors();
    }
}
