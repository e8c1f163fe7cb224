using System.Globalization;
using System.Text;

namespace Grpc.Core.Internal;

/// <summary>Names and codecs of the gRPC over HTTP/2 protocol (grpc/doc/PROTOCOL-HTTP2.md).</summary>
internal static class GrpcProtocol
{
    public const string ContentType = "application/grpc";
    public const string StatusHeader = "grpc-status";
    public const string MessageHeader = "grpc-message";
    public const string StatusDetailsHeader = "grpc-status-details-bin";
    public const string TimeoutHeader = "grpc-timeout";
    public const string EncodingHeader = "grpc-encoding";
    public const string AcceptEncodingHeader = "grpc-accept-encoding";
    public const string TeHeader = "te";
    public const string UserAgentHeader = "user-agent";
    public const string PreviousAttemptsHeader = "grpc-previous-rpc-attempts";
    public const string RetryPushbackHeader = "grpc-retry-pushback-ms";
    public const string UserAgent = "grpc-dotnet-labmesh/1.0";
    public const string IdentityEncoding = "identity";
    public const int HeaderSize = 5;
    public const int DefaultMaxReceiveMessageSize = 4 * 1024 * 1024;

    /// <summary>True for application/grpc and application/grpc+proto (and other +subtypes).</summary>
    public static bool IsGrpcContentType(string? contentType)
    {
        if (contentType is null || !contentType.StartsWith(ContentType, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        if (contentType.Length == ContentType.Length)
        {
            return true;
        }
        var next = contentType[ContentType.Length];
        return next is '+' or ';';
    }

    /// <summary>Headers owned by HTTP/2 or the gRPC protocol: never surfaced as, or taken from, metadata.</summary>
    public static bool IsReservedHeader(string name) => name switch
    {
        "content-type" or "te" or "host" or "user-agent" or "content-length" or "accept-encoding" or "connection"
            or "grpc-status" or "grpc-message" or "grpc-timeout" or "grpc-encoding" or "grpc-accept-encoding" => true,
        _ => name.Length > 0 && name[0] == ':',
    };

    // Timeout units, largest-first use on the way out: n u m S M H (PROTOCOL-HTTP2.md "Timeout").
    public static bool TryParseTimeout(string? value, out TimeSpan timeout)
    {
        timeout = default;
        if (string.IsNullOrEmpty(value) || value.Length < 2 || value.Length > 9)
        {
            return false;
        }
        var digits = value.AsSpan(0, value.Length - 1);
        foreach (var c in digits)
        {
            if (c is < '0' or > '9')
            {
                return false;
            }
        }
        if (!long.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out var amount))
        {
            return false;
        }
        double ticks;
        switch (value[^1])
        {
            case 'H': ticks = amount * (double)TimeSpan.TicksPerHour; break;
            case 'M': ticks = amount * (double)TimeSpan.TicksPerMinute; break;
            case 'S': ticks = amount * (double)TimeSpan.TicksPerSecond; break;
            case 'm': ticks = amount * (double)TimeSpan.TicksPerMillisecond; break;
            case 'u': ticks = amount * 10.0; break;
            case 'n': ticks = Math.Ceiling(amount / 100.0); break;
            default: return false;
        }
        timeout = ticks >= TimeSpan.MaxValue.Ticks ? TimeSpan.MaxValue : TimeSpan.FromTicks((long)ticks);
        return true;
    }

    /// <summary>Formats a timeout with at most eight digits, in the finest unit that fits (rounding up).</summary>
    public static string FormatTimeout(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero)
        {
            return "1n";
        }
        var ticks = timeout.Ticks;
        const long MaxDigits = 99_999_999;
        if (ticks <= MaxDigits / 100)
        {
            return (ticks * 100).ToString(CultureInfo.InvariantCulture) + "n";
        }
        var micros = CeilDiv(ticks, 10);
        if (micros <= MaxDigits)
        {
            return micros.ToString(CultureInfo.InvariantCulture) + "u";
        }
        var millis = CeilDiv(ticks, TimeSpan.TicksPerMillisecond);
        if (millis <= MaxDigits)
        {
            return millis.ToString(CultureInfo.InvariantCulture) + "m";
        }
        var seconds = CeilDiv(ticks, TimeSpan.TicksPerSecond);
        if (seconds <= MaxDigits)
        {
            return seconds.ToString(CultureInfo.InvariantCulture) + "S";
        }
        var minutes = CeilDiv(ticks, TimeSpan.TicksPerMinute);
        if (minutes <= MaxDigits)
        {
            return minutes.ToString(CultureInfo.InvariantCulture) + "M";
        }
        return Math.Min(CeilDiv(ticks, TimeSpan.TicksPerHour), MaxDigits).ToString(CultureInfo.InvariantCulture) + "H";
    }

    private static long CeilDiv(long value, long divisor) => (value + divisor - 1) / divisor;

    /// <summary>Percent-encodes a status message: UTF-8, with '%' and bytes outside 0x20-0x7E escaped.</summary>
    public static string PercentEncode(string message)
    {
        var needs = false;
        foreach (var c in message)
        {
            if (c is < ' ' or > '~' or '%')
            {
                needs = true;
                break;
            }
        }
        if (!needs)
        {
            return message;
        }
        var bytes = Encoding.UTF8.GetBytes(message);
        var builder = new StringBuilder(bytes.Length * 3);
        foreach (var b in bytes)
        {
            if (b is < 0x20 or > 0x7E or (byte)'%')
            {
                builder.Append('%').Append(HexDigit(b >> 4)).Append(HexDigit(b & 0xF));
            }
            else
            {
                builder.Append((char)b);
            }
        }
        return builder.ToString();
    }

    private static char HexDigit(int value) => (char)(value < 10 ? '0' + value : 'A' + value - 10);

    /// <summary>Decodes a percent-encoded status message; malformed escapes are kept as they are.</summary>
    public static string PercentDecode(string value)
    {
        if (!value.Contains('%', StringComparison.Ordinal))
        {
            return value;
        }
        var bytes = new List<byte>(value.Length);
        for (var i = 0; i < value.Length; i++)
        {
            var c = value[i];
            if (c == '%' && i + 2 < value.Length && IsHex(value[i + 1]) && IsHex(value[i + 2]))
            {
                bytes.Add((byte)(HexValue(value[i + 1]) << 4 | HexValue(value[i + 2])));
                i += 2;
            }
            else if (c <= 0x7F)
            {
                bytes.Add((byte)c);
            }
            else
            {
                bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));
            }
        }
        return Encoding.UTF8.GetString([.. bytes]);
    }

    private static bool IsHex(char c) => c is >= '0' and <= '9' or >= 'a' and <= 'f' or >= 'A' and <= 'F';

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    /// <summary>The status a client reports when a response has no grpc-status (grpc/doc/http-grpc-status-mapping.md).</summary>
    public static StatusCode StatusFromHttp(int httpStatus) => httpStatus switch
    {
        400 => StatusCode.Internal,
        401 => StatusCode.Unauthenticated,
        403 => StatusCode.PermissionDenied,
        404 => StatusCode.Unimplemented,
        429 or 502 or 503 or 504 => StatusCode.Unavailable,
        _ => StatusCode.Unknown,
    };

    /// <summary>Decodes a binary header value: base64, padded or not.</summary>
    public static byte[] DecodeBinaryHeader(string value)
    {
        var trimmed = value.Trim();
        var padding = (4 - trimmed.Length % 4) % 4;
        if (padding == 3)
        {
            throw new FormatException("Invalid base64 length.");
        }
        return Convert.FromBase64String(padding == 0 ? trimmed : trimmed + new string('=', padding));
    }

    /// <summary>Encodes a binary header value as unpadded base64, as the protocol recommends.</summary>
    public static string EncodeBinaryHeader(byte[] value) => Convert.ToBase64String(value).TrimEnd('=');

    /// <summary>Adds one header value (possibly comma-joined by HTTP) to metadata; false when a binary value is not base64.</summary>
    public static bool TryAddHeaderToMetadata(Metadata metadata, string key, string value)
    {
        if (key.EndsWith(Metadata.BinaryHeaderSuffix, StringComparison.Ordinal))
        {
            // Several binary values may arrive comma-joined (base64 has no commas).
            foreach (var part in value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                try
                {
                    metadata.Add(key, DecodeBinaryHeader(part));
                }
                catch (FormatException)
                {
                    return false;
                }
            }
            return true;
        }
        try
        {
            metadata.Add(key, value);
            return true;
        }
        catch (ArgumentException)
        {
            // A header name or value that is not valid metadata (e.g. upper-case bytes from a proxy) is dropped.
            return false;
        }
    }
}
