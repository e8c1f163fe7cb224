using System.Net;
using System.Net.Sockets;

namespace LabMesh.Testing;

/// <summary>
/// Free loopback TCP ports. A port is bound and released, so another process could take it first: rare, and then
/// the start that wanted it fails loudly.
/// </summary>
public static class FreePort
{
    /// <summary>A port the operating system picks.</summary>
    public static int Next()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Whether nothing listens on <paramref name="port"/> on loopback now.</summary>
    public static bool IsFree(int port)
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>
    /// A base port B, a multiple of <paramref name="size"/> in 20000-59999, such that B .. B+size-1 are all free
    /// on loopback now (deploy/local's layout takes 100 ports from its base).
    /// </summary>
    public static int Range(int size = 100)
    {
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var candidate = Random.Shared.Next(20_000 / size, 60_000 / size) * size;
            if (Enumerable.Range(candidate, size).All(IsFree))
            {
                return candidate;
            }
        }

        throw new InvalidOperationException($"No free range of {size} loopback ports found.");
    }
}
