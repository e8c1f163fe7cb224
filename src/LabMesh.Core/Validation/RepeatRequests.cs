using System.Security.Cryptography;
using Google.Protobuf;
using LabMesh.Core.Errors;

namespace LabMesh.Core.Validation;

/// <summary>
/// The repeat of a write by its <c>request_id</c> (<see cref="RequestIds"/>), the same in every service: the first
/// call stores what it created with the request's <see cref="Hash(IMessage)"/>; a later call with the same
/// request_id answers what the first one created when its hash is the same (a retry), and ALREADY_EXISTS when it
/// is not (the key was reused for another request).
/// </summary>
public static class RepeatRequests
{
    /// <summary>
    /// What makes two requests "the same request": every field of the message as sent (its request_id included,
    /// which is the same for every repeat), as upper-case hex of the SHA-256 of its encoding.
    /// </summary>
    public static string Hash(IMessage request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return Convert.ToHexString(SHA256.HashData(request.ToByteArray()));
    }

    /// <summary>
    /// Checks that a request with <paramref name="requestId"/> repeats the one that created
    /// <paramref name="resourceName"/>: returns when <paramref name="storedHash"/> equals <paramref name="hash"/>.
    /// </summary>
    /// <param name="storedHash">The hash stored with what the first request created.</param>
    /// <param name="hash">This request's hash.</param>
    /// <param name="resourceType">The resource type ALREADY_EXISTS names (its <c>ResourceInfo</c>).</param>
    /// <param name="resourceName">The id of what the first request created.</param>
    /// <param name="noun">What the request creates, in the message: "a different <paramref name="noun"/>".</param>
    /// <param name="requestId">The request_id both requests carry.</param>
    /// <exception cref="AlreadyExistsException">the request_id was used for a different request.</exception>
    public static void EnsureSame(string storedHash, string hash, string resourceType, string resourceName, string noun, string requestId)
    {
        if (!string.Equals(storedHash, hash, StringComparison.Ordinal))
        {
            throw new AlreadyExistsException(resourceType, resourceName,
                $"request_id '{requestId}' was used for a different {noun}; use a new request_id for a new {noun}.");
        }
    }
}
