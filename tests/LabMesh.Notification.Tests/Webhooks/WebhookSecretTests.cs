using LabMesh.Notification.Webhooks;

namespace LabMesh.Notification.Tests.Webhooks;

public class WebhookSecretTests
{
    // The Standard Webhooks test vector's secret: 24 bytes, the shortest accepted.
    private const string SpecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    [Fact]
    public void Generate_IsPrefixAndBase64Of32RandomBytes()
    {
        var first = WebhookSecret.Generate();
        var second = WebhookSecret.Generate();

        Assert.StartsWith("whsec_", first, StringComparison.Ordinal);
        Assert.Equal(50, first.Length);
        Assert.Equal(32, Convert.FromBase64String(first["whsec_".Length..]).Length);
        Assert.True(WebhookSecret.TryParse(first, out var key));
        Assert.Equal(32, key.Length);
        Assert.NotEqual(first, second);
    }

    [Fact]
    public void TryParse_SpecSecret_IsTheDecodedBytesAfterThePrefix()
    {
        Assert.True(WebhookSecret.TryParse(SpecSecret, out var key));

        Assert.Equal(Convert.FromBase64String("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), key);
    }

    // (secret, valid, error)
    public static TheoryData<string?, bool, string> Secrets() => new()
    {
        { SpecSecret, true, "" },
        { "whsec_" + Convert.ToBase64String(new byte[32]), true, "" },
        { "whsec_" + Convert.ToBase64String(new byte[64]), true, "" },
        { null, false, "the webhook secret is empty." },
        { "", false, "the webhook secret is empty." },
        { "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", false, "a webhook secret starts with 'whsec_'." },
        { "WHSEC_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", false, "a webhook secret starts with 'whsec_'." },
        { "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", false, "a webhook secret starts with 'whsec_'." },
        { "whsec_", false, "a webhook secret's key is at least 24 bytes (this one has 0)." },
        { "whsec_" + Convert.ToBase64String(new byte[23]), false, "a webhook secret's key is at least 24 bytes (this one has 23)." },
        { "whsec_" + Convert.ToBase64String(new byte[65]), false, "a webhook secret's key is at most 64 bytes." },
        { "whsec_" + Convert.ToBase64String(new byte[66]), false, "a webhook secret's key is at most 64 bytes." },
        { "whsec_" + Convert.ToBase64String(new byte[90]), false, "a webhook secret's key is at most 64 bytes." },
        { "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", false, "the part after 'whsec_' is not standard base64 (A-Z, a-z, 0-9, +, /, padded with =)." },
        { "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-w", false, "the part after 'whsec_' is not standard base64 (A-Z, a-z, 0-9, +, /, padded with =)." },
        { "whsec_MfKQ9r8GKYqrTwjUPD8I LPZIo2LaLaSw", false, "the part after 'whsec_' is not standard base64 (A-Z, a-z, 0-9, +, /, padded with =)." },
        { SpecSecret + "\n", false, "the part after 'whsec_' is not standard base64 (A-Z, a-z, 0-9, +, /, padded with =)." },
        { " " + SpecSecret, false, "a webhook secret starts with 'whsec_'." },
    };

    [Theory]
    [MemberData(nameof(Secrets))]
    public void IsValid_SaysWhyWithoutQuotingTheSecret(string? secret, bool valid, string error)
    {
        Assert.Equal(valid, WebhookSecret.IsValid(secret, out var actual));
        Assert.Equal(valid, WebhookSecret.TryParse(secret, out var key));

        Assert.Equal(valid ? null : error, actual);
        Assert.Equal(valid, key is not null);
        if (secret is { Length: > 12 } && actual is not null)
        {
            Assert.DoesNotContain(secret.Trim()["whsec_".Length..], actual, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Sign_InvalidSecret_NamesItsIndexNotItsText()
    {
        var bad = "whsec_" + Convert.ToBase64String(new byte[23]);

        var error = Assert.Throws<ArgumentException>(() =>
            WebhookSigner.Sign("msg_1", DateTimeOffset.UnixEpoch, [], [SpecSecret, bad]));

        Assert.Equal("secrets[1]: a webhook secret's key is at least 24 bytes (this one has 23). (Parameter 'secrets[1]')", error.Message);
        Assert.DoesNotContain(bad["whsec_".Length..], error.Message, StringComparison.Ordinal);
    }
}
