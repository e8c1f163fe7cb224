using LabMesh.Security.Identity;
using LabMesh.Testing;

namespace LabMesh.AllInOne.Tests;

/// <summary>
/// The all-in-one host as its own process (the README's run command, <see cref="AllInOneProcess"/>), gRPC h2c on one
/// port and REST (HTTP/1.1) on <c>LabMesh:Rest:Url</c>, trusting TestCaller's key. One per test class; it fails the
/// class when the host logged an error.
/// </summary>
public sealed class RestHost : AllInOneProcess
{
    private readonly int _restPort = FreePort.Next();

    /// <summary>The h2c gRPC address.</summary>
    public string GrpcAddress => Address;

    /// <summary>The HTTP/1.1 REST address.</summary>
    public string RestAddress => $"http://127.0.0.1:{_restPort}";

    /// <summary>A token of TestCaller's key for team demo.</summary>
    public static string Token(CallerRole role, string? partner = null) =>
        TestCaller.Token("demo", role, partner is null ? "rest-user" : $"partner-{partner}", partner);

    public override async Task DisposeAsync()
    {
        var errors = Errors();
        await base.DisposeAsync();
        Assert.Empty(errors);
    }

    protected override IEnumerable<string> Arguments() => ["--LabMesh:Rest:Url", RestAddress];

    protected override IReadOnlyDictionary<string, string> Environment() => new Dictionary<string, string>
    {
        ["LabMesh__Security__SigningKeyId"] = TestCaller.KeyId,
        ["LabMesh__Security__SigningKeyPem"] = TestCaller.Key.ExportPrivateKeyPem(),
    };
}
