using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Grpc.Core;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Security.Identity;
using LabMesh.Testing;

namespace LabMesh.Identity.Tests;

/// <summary>The four services in one host on a loopback port, as the all-in-one runs them, trusting TestCaller's key.</summary>
public sealed class Mesh : AllInOneHost
{
    public static new readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    /// <summary>An invoker whose every call has <paramref name="role"/> in <paramref name="team"/>.</summary>
    public CallInvoker As(string team, CallerRole role, string subject = "test-user", string? partner = null) =>
        TestCaller.InvokerAs(Channel(), team, role, subject, role == CallerRole.Partner ? partner ?? "lab-a" : partner);

    /// <summary>An invoker that sends exactly <paramref name="headers"/>.</summary>
    public CallInvoker WithHeaders(params (string Key, string Value)[] headers)
    {
        var metadata = new Metadata();
        foreach (var (key, value) in headers)
        {
            metadata.Add(key, value);
        }

        return TestCaller.InvokerWithHeaders(Channel(), metadata);
    }

    public CallInvoker WithToken(string token) => WithHeaders(("authorization", "Bearer " + token));

    public static DateTime Deadline => DateTime.UtcNow + Timeout;

    /// <summary>A placed requisition of two tests, both for partner lab-a unless told.</summary>
    public static CreateRequisitionRequest Order(string requestId, string partner = "lab-a", string secondPartner = "lab-a") => new()
    {
        RequestId = requestId,
        Patient = new Patient { Id = "p-" + requestId },
        Modality = TestModality.WalkInTest,
        Place = true,
        Tests = { new OrderedTest { Code = "CBC", PartnerId = partner }, new OrderedTest { Code = "LIPID_PANEL", PartnerId = secondPartner } },
    };

    public async Task<Contracts.Requisition.V1.Requisition> PlaceAsync(string team, string requestId, string partner = "lab-a", string secondPartner = "lab-a")
    {
        var client = new RequisitionService.RequisitionServiceClient(As(team, CallerRole.Service));
        return (await client.CreateRequisitionAsync(Order(requestId, partner, secondPartner), deadline: Deadline)).Requisition;
    }
}

[CollectionDefinition(Name)]
public sealed class MeshCollection : ICollectionFixture<Mesh>
{
    public const string Name = "mesh";
}

/// <summary>Hand-made tokens, to tamper with every part: header, claims, signature.</summary>
internal static class Jws
{
    public static string Header(string alg, string? kid = TestCaller.KeyId) =>
        Encode(kid is null ? new Dictionary<string, object> { ["alg"] = alg, ["typ"] = "JWT" } : new Dictionary<string, object> { ["alg"] = alg, ["typ"] = "JWT", ["kid"] = kid });

    /// <summary>Valid claims for a clinician of <paramref name="team"/>, from now for an hour; <paramref name="change"/> edits them.</summary>
    public static string Claims(string team, Action<Dictionary<string, object>>? change = null)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var claims = new Dictionary<string, object>
        {
            ["iss"] = "labmesh",
            ["aud"] = "labmesh",
            ["sub"] = "forger",
            ["team"] = team,
            ["role"] = "clinician",
            ["iat"] = now,
            ["nbf"] = now - 5,
            ["exp"] = now + 3600,
        };
        change?.Invoke(claims);
        return Encode(claims);
    }

    /// <summary>header.claims signed ES256 with <paramref name="key"/>.</summary>
    public static string SignEs256(string header, string claims, ECDsa key)
    {
        var input = header + "." + claims;
        return input + "." + Base64Url.EncodeToString(key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation));
    }

    /// <summary>header.claims signed with the test key (the one the host trusts).</summary>
    public static string SignWithTestKey(string header, string claims)
    {
        using var key = ECDsa.Create();
        key.ImportFromPem(TestCaller.Key.ExportPrivateKeyPem());
        return SignEs256(header, claims, key);
    }

    public static string SignHs256(string header, string claims, byte[] secret)
    {
        var input = header + "." + claims;
        return input + "." + Base64Url.EncodeToString(HMACSHA256.HashData(secret, Encoding.ASCII.GetBytes(input)));
    }

    public static string SignRs256(string header, string claims, RSA key)
    {
        var input = header + "." + claims;
        return input + "." + Base64Url.EncodeToString(key.SignData(Encoding.ASCII.GetBytes(input), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1));
    }

    private static string Encode(Dictionary<string, object> json) => Base64Url.EncodeToString(JsonSerializer.SerializeToUtf8Bytes(json));
}
