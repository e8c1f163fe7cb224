using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace LabMesh.Notification.Webhooks;

/// <summary>
/// Signs webhook deliveries and verifies them, as the Standard Webhooks specification (v1, symmetric)
/// says: HMAC-SHA256 over <c>{webhook-id}.{webhook-timestamp}.{body}</c>.
/// </summary>
/// <remarks>
/// <code>
/// header              value
/// webhook-id          the message id: the same on every attempt of one delivery (the receiver's idempotency key)
/// webhook-timestamp   the attempt's time, Unix seconds (a retry is signed again with its own time)
/// webhook-signature   "v1,&lt;base64 HMAC-SHA256&gt;" per secret, space-separated, the current secret first
///
/// signed content      "{id}.{timestamp}." followed by the body's exact bytes; the verifier signs the
///                     timestamp header's text as received, so "01614265330" does not pass for "1614265330"
/// key                 the base64-decoded part of the secret after "whsec_" (WebhookSecret)
/// message id          1 to 256 printable ASCII characters, no '.', no space (a '.' would let the
///                     boundary between id and timestamp move)
///
/// Verify is true when
///   the id is a valid message id, the timestamp is ASCII digits within ±tolerance of now
///   (inclusive; default 5 minutes, so a captured delivery cannot be replayed later), and
///   one "v1," entry of the signature header equals the expected signature (compared in constant time).
///   Entries of other versions (v1a, v2) and malformed entries are skipped, not errors.
/// </code>
/// <para>During a secret rotation an endpoint has two secrets; <see cref="Sign"/> emits one signature
/// for each, so a receiver holding either verifies the delivery.</para>
/// </remarks>
public static class WebhookSigner
{
    public const string IdHeader = "webhook-id";
    public const string TimestampHeader = "webhook-timestamp";
    public const string SignatureHeader = "webhook-signature";

    /// <summary>The version tag of a symmetric (HMAC-SHA256) signature.</summary>
    public const string Version = "v1";

    /// <summary>The longest message id accepted.</summary>
    public const int MaxMessageIdLength = 256;

    /// <summary>How far a timestamp may be from the verifier's clock, either way, by default.</summary>
    public static readonly TimeSpan DefaultTolerance = TimeSpan.FromMinutes(5);

    private const int SignatureBytes = 32;

    /// <summary>The <c>webhook-signature</c> value: <c>v1,&lt;base64&gt;</c> for each of <paramref name="secrets"/>, in order, space-separated.</summary>
    /// <param name="messageId">The delivery's id, the same on every attempt.</param>
    /// <param name="timestamp">The attempt's time; its whole Unix seconds are signed.</param>
    /// <param name="body">The exact bytes sent.</param>
    /// <param name="secrets">The endpoint's secrets, current first; two during a rotation.</param>
    /// <exception cref="ArgumentException">the id is not a valid message id, there is no secret or one is
    /// not a valid secret (the message names its index, never its text).</exception>
    /// <exception cref="ArgumentOutOfRangeException">the timestamp is before 1970.</exception>
    public static string Sign(string messageId, DateTimeOffset timestamp, ReadOnlySpan<byte> body, IReadOnlyList<string> secrets)
    {
        if (!IsValidMessageId(messageId))
        {
            throw new ArgumentException(
                $"A webhook message id is 1 to {MaxMessageIdLength} printable ASCII characters without '.' or space.", nameof(messageId));
        }
        if (secrets.Count == 0)
        {
            throw new ArgumentException("At least one webhook secret is needed to sign.", nameof(secrets));
        }
        var seconds = UnixSeconds(timestamp).ToString(CultureInfo.InvariantCulture);
        var signature = new StringBuilder();
        Span<byte> mac = stackalloc byte[SignatureBytes];
        for (var i = 0; i < secrets.Count; i++)
        {
            var key = WebhookSecret.Parse(secrets[i], $"{nameof(secrets)}[{i}]");
            Compute(key, messageId, seconds, body, mac);
            CryptographicOperations.ZeroMemory(key);
            if (i > 0)
            {
                signature.Append(' ');
            }
            signature.Append(Version).Append(',').Append(Convert.ToBase64String(mac));
        }
        return signature.ToString();
    }

    /// <summary>The three headers of an attempt, in the order id, timestamp, signature (see <see cref="Sign"/>).</summary>
    public static IReadOnlyList<KeyValuePair<string, string>> Headers(
        string messageId, DateTimeOffset timestamp, ReadOnlySpan<byte> body, IReadOnlyList<string> secrets)
    {
        var signature = Sign(messageId, timestamp, body, secrets);
        return
        [
            new(IdHeader, messageId),
            new(TimestampHeader, UnixSeconds(timestamp).ToString(CultureInfo.InvariantCulture)),
            new(SignatureHeader, signature),
        ];
    }

    /// <summary>Whether a delivery is authentic and recent (see the table above).</summary>
    /// <param name="messageId">The <c>webhook-id</c> header.</param>
    /// <param name="timestamp">The <c>webhook-timestamp</c> header.</param>
    /// <param name="signatureHeader">The <c>webhook-signature</c> header.</param>
    /// <param name="body">The body exactly as received (not re-serialized).</param>
    /// <param name="secret">The receiver's secret for this endpoint.</param>
    /// <param name="now">The receiver's clock.</param>
    /// <param name="tolerance">How far the timestamp may be from <paramref name="now"/>; <see cref="DefaultTolerance"/> when null.</param>
    /// <exception cref="ArgumentException"><paramref name="secret"/> is not a valid secret: a receiver's
    /// configuration error, not a bad delivery.</exception>
    public static bool Verify(
        string? messageId, string? timestamp, string? signatureHeader, ReadOnlySpan<byte> body,
        string secret, DateTimeOffset now, TimeSpan? tolerance = null)
    {
        var key = WebhookSecret.Parse(secret, nameof(secret));
        try
        {
            if (messageId is null || !IsValidMessageId(messageId)
                || !TryParseTimestamp(timestamp, out var seconds)
                || Math.Abs(seconds - now.ToUnixTimeSeconds()) > (long)(tolerance ?? DefaultTolerance).TotalSeconds
                || string.IsNullOrEmpty(signatureHeader))
            {
                return false;
            }
            Span<byte> expected = stackalloc byte[SignatureBytes];
            Compute(key, messageId, timestamp, body, expected);
            Span<byte> received = stackalloc byte[SignatureBytes + 3];
            foreach (var range in signatureHeader.AsSpan().Split(' '))
            {
                var entry = signatureHeader.AsSpan()[range];
                if (!entry.StartsWith(Version + ",", StringComparison.Ordinal)
                    || entry.Length > Version.Length + 1 + 4 * ((SignatureBytes + 2) / 3)
                    || !Convert.TryFromBase64Chars(entry[(Version.Length + 1)..], received, out var length)
                    || length != SignatureBytes)
                {
                    continue;
                }
                if (CryptographicOperations.FixedTimeEquals(received[..length], expected))
                {
                    return true;
                }
            }
            return false;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>Whether a delivery is authentic and recent, from its request headers (each must appear once).</summary>
    /// <inheritdoc cref="Verify(string?, string?, string?, ReadOnlySpan{byte}, string, DateTimeOffset, TimeSpan?)"/>
    public static bool Verify(
        IHeaderDictionary headers, ReadOnlySpan<byte> body, string secret, DateTimeOffset now, TimeSpan? tolerance = null) =>
        Verify(Single(headers, IdHeader), Single(headers, TimestampHeader), Single(headers, SignatureHeader),
            body, secret, now, tolerance);

    /// <summary>Whether <paramref name="messageId"/> may be signed: 1 to 256 printable ASCII characters, no '.' and no space.</summary>
    public static bool IsValidMessageId(string messageId) =>
        messageId.Length is > 0 and <= MaxMessageIdLength
        && messageId.All(c => c is > ' ' and < '\u007f' and not '.');

    // The timestamp is signed as the header carries it, so only the sender's exact text verifies.
    private static void Compute(byte[] key, string messageId, string timestamp, ReadOnlySpan<byte> body, Span<byte> mac)
    {
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, key);
        hmac.AppendData(Encoding.ASCII.GetBytes($"{messageId}.{timestamp}."));
        hmac.AppendData(body);
        hmac.GetHashAndReset(mac);
    }

    private static long UnixSeconds(DateTimeOffset timestamp)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(timestamp, DateTimeOffset.UnixEpoch);
        return timestamp.ToUnixTimeSeconds();
    }

    private static bool TryParseTimestamp([NotNullWhen(true)] string? text, out long seconds)
    {
        seconds = 0;
        // Digits only: no sign, no spaces, no exponent; 18 digits is far beyond any real clock and cannot overflow.
        return text is { Length: > 0 and <= 18 }
            && text.All(char.IsAsciiDigit)
            && long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out seconds);
    }

    private static string? Single(IHeaderDictionary headers, string name) =>
        headers.TryGetValue(name, out var values) && values.Count == 1 ? values[0] : null;
}
