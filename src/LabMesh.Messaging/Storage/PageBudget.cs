using Google.Protobuf;

namespace LabMesh.Messaging.Storage;

/// <summary>
/// The byte budget of one list page: items are added while the page stays within <see cref="MaxBytes"/> as encoded in
/// the response (each item's field tag, length prefix and body), and a page always holds at least one item, so every
/// list response stays under gRPC's 4 MiB message limit by construction whatever its page size. The first item left
/// out is where the next page starts.
/// </summary>
public sealed class PageBudget(long maxBytes = PageBudget.MaxBytes)
{
    /// <summary>The most item bytes a page holds: with any one item under about 1.1 MiB a page stays under 4 MiB.</summary>
    public const int MaxBytes = 3 * 1024 * 1024;

    private long _bytes;
    private int _count;

    /// <summary>
    /// Whether <paramref name="item"/> (a repeated field's element, field number 1-15) still fits; if it does, it is
    /// counted in. The first item always fits.
    /// </summary>
    public bool TryAdd(IMessage item)
    {
        ArgumentNullException.ThrowIfNull(item);
        var encoded = 1 + (long)CodedOutputStream.ComputeMessageSize(item);
        if (_count > 0 && _bytes + encoded > maxBytes)
        {
            return false;
        }

        _bytes += encoded;
        _count++;
        return true;
    }
}
