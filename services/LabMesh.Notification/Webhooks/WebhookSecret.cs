using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace LabMesh.Notification.Webhooks;

/// <summary>
/// The signing secret of a webhook endpoint in its Standard Webhooks form: <c>whsec_</c> followed by
/// the base64 of the HMAC-SHA256 key.
/// </summary>
/// <remarks>
/// <code>
/// text                                   accepted   why not
/// whsec_ + base64 of 24..64 bytes        yes
/// no whsec_ prefix (or WHSEC_, whsk_)    no         the prefix names the scheme (symmetric v1)
/// not standard padded base64             no         url-safe (-, _), missing padding, any whitespace
///                                                   (even at the ends: a pasted secret is not trimmed)
/// fewer than 24 or more than 64 bytes    no         the spec's bounds (192 to 512 bits)
/// </code>
/// <para>The key is the base64-decoded part after the prefix (not the text's bytes), as every Standard
/// Webhooks library does. Nothing here puts a secret into an exception message, a log or a
/// <c>ToString</c>: errors name what is wrong, never the text.</para>
/// </remarks>
public static class WebhookSecret
{
    /// <summary>The prefix of every secret.</summary>
    public const string Prefix = "whsec_";

    /// <summary>The shortest key accepted, in bytes (192 bits).</summary>
    public const int MinKeyBytes = 24;

    /// <summary>The longest key accepted, in bytes (512 bits).</summary>
    public const int MaxKeyBytes = 64;

    /// <summary>The length of a generated key, in bytes (256 bits, the size of an HMAC-SHA256 output).</summary>
    public const int GeneratedKeyBytes = 32;

    // Base64 of MaxKeyBytes, padded.
    private const int MaxEncodedLength = 4 * ((MaxKeyBytes + 2) / 3);

    private static readonly SearchValues<char> Base64Alphabet =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=");

    /// <summary>A new secret: <c>whsec_</c> + base64 of <see cref="GeneratedKeyBytes"/> cryptographically random bytes (50 characters).</summary>
    public static string Generate() =>
        Prefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(GeneratedKeyBytes));

    /// <summary>The key of <paramref name="text"/> when it is a valid secret (see the table above).</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out byte[]? key) => TryParse(text, out key, out _);

    /// <summary>Whether <paramref name="text"/> is a valid secret; when not, <paramref name="error"/> says why without quoting it.</summary>
    public static bool IsValid(string? text, [NotNullWhen(false)] out string? error) => TryParse(text, out _, out error);

    /// <summary>The key of <paramref name="text"/>.</summary>
    /// <param name="text">The secret.</param>
    /// <param name="what">How an error names the secret, e.g. <c>secrets[1]</c>.</param>
    /// <exception cref="ArgumentException">it is not a valid secret (the message does not quote it).</exception>
    internal static byte[] Parse(string? text, string what) =>
        TryParse(text, out var key, out var error) ? key : throw new ArgumentException($"{what}: {error}", what);

    private static bool TryParse(string? text, [NotNullWhen(true)] out byte[]? key, [NotNullWhen(false)] out string? error)
    {
        key = null;
        if (string.IsNullOrEmpty(text))
        {
            error = "the webhook secret is empty.";
            return false;
        }
        if (!text.StartsWith(Prefix, StringComparison.Ordinal))
        {
            error = $"a webhook secret starts with '{Prefix}'.";
            return false;
        }
        var encoded = text.AsSpan(Prefix.Length);
        // Convert.TryFromBase64Chars skips whitespace anywhere; a secret with any is refused instead.
        if (encoded.ContainsAnyExcept(Base64Alphabet))
        {
            error = $"the part after '{Prefix}' is not standard base64 (A-Z, a-z, 0-9, +, /, padded with =).";
            return false;
        }
        if (encoded.Length > MaxEncodedLength)
        {
            error = $"a webhook secret's key is at most {MaxKeyBytes} bytes.";
            return false;
        }
        Span<byte> buffer = stackalloc byte[MaxEncodedLength / 4 * 3];
        if (!Convert.TryFromBase64Chars(encoded, buffer, out var length))
        {
            error = $"the part after '{Prefix}' is not standard base64 (A-Z, a-z, 0-9, +, /, padded with =).";
            return false;
        }
        if (length < MinKeyBytes)
        {
            error = $"a webhook secret's key is at least {MinKeyBytes} bytes (this one has {length}).";
            return false;
        }
        if (length > MaxKeyBytes)
        {
            error = $"a webhook secret's key is at most {MaxKeyBytes} bytes.";
            return false;
        }
        key = buffer[..length].ToArray();
        CryptographicOperations.ZeroMemory(buffer);
        error = null;
        return true;
    }
}
