using System.Buffers.Text;
using System.Text;
using LabMesh.Core.Errors;

namespace LabMesh.Messaging.Storage;

/// <summary>
/// List paging by key: ids are time-ordered (UUID v7), lists run newest first, and a page token is
/// the last id of the previous page, opaque to callers (base64url). A token from another list is
/// harmless: it only says where to continue.
/// </summary>
public static class PageToken
{
    public const int DefaultPageSize = 50;
    public const int MaxPageSize = 500;

    public static string Encode(string lastId) => Base64Url.EncodeToString(Encoding.UTF8.GetBytes("v1:" + lastId));

    /// <summary>The id to continue after, or null for the first page; INVALID_ARGUMENT for a token that is not ours.</summary>
    public static string? Decode(string? token, string field = "page_token")
    {
        if (string.IsNullOrEmpty(token))
        {
            return null;
        }

        try
        {
            var text = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(token));
            if (text.StartsWith("v1:", StringComparison.Ordinal) && text.Length > 3 && text.Length <= 131)
            {
                return text[3..];
            }
        }
        catch (FormatException)
        {
        }

        throw new InvalidArgumentException(field, "is not a page token returned by this list.");
    }

    /// <summary>
    /// The next page's token for a list read with one row more than <paramref name="pageSize"/>: the last
    /// row of this page when the extra row came back, empty when this page is the last.
    /// </summary>
    public static string Next<T>(IReadOnlyList<T> rows, int pageSize, Func<T, string> id) =>
        rows.Count > pageSize ? Encode(id(rows[pageSize - 1])) : "";

    /// <summary>The page size to use: 0 means the default; above the cap or negative is INVALID_ARGUMENT.</summary>
    public static int Size(int requested, string field = "page_size")
    {
        var violations = new List<FieldViolation>();
        var size = CheckSize(requested, field, violations);
        return violations.Count == 0 ? size : throw new InvalidArgumentException(violations);
    }

    /// <summary>
    /// The page size to use, as <see cref="Size"/>, with a field violation added instead of thrown, for a
    /// request that reports every problem at once.
    /// </summary>
    public static int CheckSize(int requested, string field, List<FieldViolation> violations)
    {
        ArgumentNullException.ThrowIfNull(violations);
        switch (requested)
        {
            case 0:
                return DefaultPageSize;
            case < 0 or > MaxPageSize:
                violations.Add(new FieldViolation(field, $"must be between 1 and {MaxPageSize} (0 means {DefaultPageSize})."));
                return DefaultPageSize;
            default:
                return requested;
        }
    }
}
