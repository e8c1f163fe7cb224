using System.Text;
using LabMesh.Notification.Webhooks;
using Microsoft.AspNetCore.Http;

namespace LabMesh.Notification.Tests.Webhooks;

public class WebhookSignerTests
{
    // The Standard Webhooks specification's test vector (its reference libraries' tests).
    private const string SpecSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    private const string SpecId = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    private const long SpecTimestamp = 1614265330;
    private const string SpecBody = "{\"test\": 2432232314}";
    private const string SpecSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    // A second secret (the bytes 0..31); signatures under it computed with Python's hmac and hashlib.
    private const string NewSecret = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    private const string SpecSignatureUnderNewSecret = "v1,O4Gjv1HqPqsMrjmczoggs/sWA8gZD0VyHG+fLh4+ktI=";

    private static readonly DateTimeOffset SpecTime = DateTimeOffset.FromUnixTimeSeconds(SpecTimestamp);
    private static readonly byte[] SpecBodyBytes = Encoding.UTF8.GetBytes(SpecBody);

    [Fact]
    public void Sign_SpecTestVector_MatchesTheSpec()
    {
        var signature = WebhookSigner.Sign(SpecId, SpecTime, SpecBodyBytes, [SpecSecret]);

        Assert.Equal(SpecSignature, signature);
    }

    [Fact]
    public void Sign_SubSecondTimestamp_SignsWholeSeconds()
    {
        var signature = WebhookSigner.Sign(SpecId, SpecTime.AddMilliseconds(999), SpecBodyBytes, [SpecSecret]);

        Assert.Equal(SpecSignature, signature);
    }

    // (id, unix seconds, body, signature) computed with Python's hmac and hashlib under NewSecret.
    public static TheoryData<string, long, string, string> PythonVectors() => new()
    {
        { SpecId, SpecTimestamp, SpecBody, SpecSignatureUnderNewSecret },
        { "evt_01JH8Z", 1767607200, "{\"type\":\"labtest.result.critical\",\"data\":{\"marker\":\"Kalium\",\"unit\":\"µmol/L\"}}",
            "v1,jFeDILl28VdVy8P8zJ38fq9ia9GimWR6Ng4V+PKzqiA=" },
        { "evt_01JH8Z", 1767607200, "", "v1,Pivdj8T7WWbP2WUWdpKGJoRO9Vob7ipySzP1IzU9tYE=" },
    };

    [Theory]
    [MemberData(nameof(PythonVectors))]
    public void Sign_SignsTheExactUtf8BodyBytes(string id, long seconds, string body, string expected)
    {
        var signature = WebhookSigner.Sign(id, DateTimeOffset.FromUnixTimeSeconds(seconds), Encoding.UTF8.GetBytes(body), [NewSecret]);

        Assert.Equal(expected, signature);
    }

    [Fact]
    public void Sign_DuringRotation_EmitsBothSignaturesCurrentFirst()
    {
        var signature = WebhookSigner.Sign(SpecId, SpecTime, SpecBodyBytes, [NewSecret, SpecSecret]);

        Assert.Equal(SpecSignatureUnderNewSecret + " " + SpecSignature, signature);
    }

    [Fact]
    public void Headers_AreIdTimestampAndSignature()
    {
        var headers = WebhookSigner.Headers(SpecId, SpecTime, SpecBodyBytes, [NewSecret, SpecSecret]);

        Assert.Equal(
            [
                new("webhook-id", SpecId),
                new("webhook-timestamp", "1614265330"),
                new("webhook-signature", SpecSignatureUnderNewSecret + " " + SpecSignature),
            ],
            headers);
    }

    [Theory]
    [InlineData(SpecSecret)]
    [InlineData(NewSecret)]
    public void Verify_RotatedDelivery_EitherSecretAccepts(string secret)
    {
        var header = WebhookSigner.Sign(SpecId, SpecTime, SpecBodyBytes, [NewSecret, SpecSecret]);

        Assert.True(WebhookSigner.Verify(SpecId, "1614265330", header, SpecBodyBytes, secret, SpecTime));
    }

    [Fact]
    public void Verify_OtherSecret_IsRejected()
    {
        Assert.False(WebhookSigner.Verify(SpecId, "1614265330", SpecSignature, SpecBodyBytes, NewSecret, SpecTime));
    }

    // A signature header holding the valid signature among entries to skip: (header, verifies)
    public static TheoryData<string, bool> SignatureHeaders() => new()
    {
        { SpecSignature, true },
        { "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " + SpecSignature, true },
        { "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== " + SpecSignature, true },
        { "  " + SpecSignature + "  ", true },
        { "v1, v1,not-base64! v1,AAAA " + SpecSignature, true },
        { "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLawdd", false },
        { "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", false },
        { "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", false },
        { "V1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", false },
        { "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=,", false },
        { "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=g0hM", false },
        { "", false },
    };

    [Theory]
    [MemberData(nameof(SignatureHeaders))]
    public void Verify_SignatureHeader_AnyValidV1EntryIsEnough(string header, bool verifies)
    {
        Assert.Equal(verifies, WebhookSigner.Verify(SpecId, "1614265330", header, SpecBodyBytes, SpecSecret, SpecTime));
    }

    // What a forger or a broken proxy changes: (id, timestamp, body)
    public static TheoryData<string?, string?, string> Tampered() => new()
    {
        { SpecId, "1614265330", "{\"test\": 2432232315}" },
        { SpecId, "1614265330", "{\"test\":2432232314}" },
        { SpecId, "1614265330", SpecBody + "\n" },
        { SpecId, "1614265330", "" },
        { "msg_p5jXN8AQM9LWM0D4loKWxJel", "1614265330", SpecBody },
        { SpecId, "1614265331", SpecBody },
        { SpecId, "01614265330", SpecBody },
        { SpecId, "+1614265330", SpecBody },
        { SpecId, " 1614265330", SpecBody },
        { SpecId, "1614265330.0", SpecBody },
        { SpecId, "", SpecBody },
        { SpecId, null, SpecBody },
        { "", "1614265330", SpecBody },
        { null, "1614265330", SpecBody },
        { "msg.p5jXN8AQM9LWM0D4loKWxJek", "1614265330", SpecBody },
    };

    [Theory]
    [MemberData(nameof(Tampered))]
    public void Verify_TamperedOrMissingPart_IsRejected(string? id, string? timestamp, string body)
    {
        Assert.False(WebhookSigner.Verify(id, timestamp, SpecSignature, Encoding.UTF8.GetBytes(body), SpecSecret, SpecTime));
    }

    // The receiver's clock against the signed 1614265330, default tolerance 5 minutes: (offset in seconds, accepted)
    [Theory]
    [InlineData(0, true)]
    [InlineData(300, true)]
    [InlineData(301, false)]
    [InlineData(-300, true)]
    [InlineData(-301, false)]
    [InlineData(86_400, false)]
    public void Verify_TimestampOutsideTolerance_IsRejectedAsReplay(int receiverClockOffset, bool accepted)
    {
        var now = SpecTime.AddSeconds(receiverClockOffset);

        Assert.Equal(accepted, WebhookSigner.Verify(SpecId, "1614265330", SpecSignature, SpecBodyBytes, SpecSecret, now));
    }

    [Fact]
    public void Verify_CustomTolerance_IsUsed()
    {
        var now = SpecTime.AddSeconds(31);

        Assert.False(WebhookSigner.Verify(SpecId, "1614265330", SpecSignature, SpecBodyBytes, SpecSecret, now, TimeSpan.FromSeconds(30)));
        Assert.True(WebhookSigner.Verify(SpecId, "1614265330", SpecSignature, SpecBodyBytes, SpecSecret, now, TimeSpan.FromMinutes(1)));
    }

    [Fact]
    public void Verify_HeaderDictionary_ReadsTheThreeHeaders()
    {
        var headers = new HeaderDictionary();
        foreach (var (name, value) in WebhookSigner.Headers(SpecId, SpecTime, SpecBodyBytes, [SpecSecret]))
        {
            headers[name] = value;
        }

        Assert.True(WebhookSigner.Verify(headers, SpecBodyBytes, SpecSecret, SpecTime));

        headers.Append("webhook-id", "msg_other");
        Assert.False(WebhookSigner.Verify(headers, SpecBodyBytes, SpecSecret, SpecTime));
        Assert.False(WebhookSigner.Verify(new HeaderDictionary(), SpecBodyBytes, SpecSecret, SpecTime));
    }

    [Fact]
    public void Verify_InvalidSecret_IsAConfigurationError()
    {
        Assert.Throws<ArgumentException>(() =>
            WebhookSigner.Verify(SpecId, "1614265330", SpecSignature, SpecBodyBytes, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", SpecTime));
    }

    // (message id, valid)
    [Theory]
    [InlineData("msg_p5jXN8AQM9LWM0D4loKWxJek", true)]
    [InlineData("0f8fad5b-d9cb-469f-a165-70867728950e", true)]
    [InlineData("x", true)]
    [InlineData("", false)]
    [InlineData("msg.1", false)]
    [InlineData("msg 1", false)]
    [InlineData("msg\n1", false)]
    [InlineData("msg_é", false)]
    public void Sign_MessageId_IsPrintableAsciiWithoutDot(string id, bool valid)
    {
        Assert.Equal(valid, WebhookSigner.IsValidMessageId(id));
        if (!valid)
        {
            Assert.Throws<ArgumentException>(() => WebhookSigner.Sign(id, SpecTime, SpecBodyBytes, [SpecSecret]));
        }
    }

    [Fact]
    public void Sign_MessageIdOf257Characters_IsRefused()
    {
        Assert.True(WebhookSigner.IsValidMessageId(new string('a', 256)));
        Assert.False(WebhookSigner.IsValidMessageId(new string('a', 257)));
    }

    [Fact]
    public void Sign_NoSecret_IsRefused()
    {
        Assert.Throws<ArgumentException>(() => WebhookSigner.Sign(SpecId, SpecTime, SpecBodyBytes, []));
    }

    [Fact]
    public void Sign_BeforeTheUnixEpoch_IsRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() =>
            WebhookSigner.Sign(SpecId, DateTimeOffset.UnixEpoch.AddSeconds(-1), SpecBodyBytes, [SpecSecret]));
    }
}
