using System.Globalization;

namespace LabMesh.Bench.Gateway;

/// <summary>
/// Established TCP connections a process holds to given remote ports (e.g. the gateway's to the replicas), from
/// /proc: the process's socket inodes (/proc/PID/fd) matched against /proc/net/tcp and tcp6 (.NET's sockets are
/// dual-mode, so IPv4 loopback connections show in tcp6 as ::ffff:127.0.0.1). What <c>ss -tnp</c> would print, without
/// a process per reading.
/// </summary>
internal static class TcpConnections
{
    private const string Established = "01";

    public static int Count(int pid, IReadOnlySet<int> remotePorts)
    {
        var inodes = SocketInodes(pid);
        if (inodes.Count == 0)
        {
            return 0;
        }

        var count = 0;
        foreach (var table in new[] { "/proc/net/tcp", "/proc/net/tcp6" })
        {
            if (!File.Exists(table))
            {
                continue;
            }

            foreach (var line in File.ReadLines(table).Skip(1))
            {
                // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length < 10 || fields[3] != Established)
                {
                    continue;
                }

                var remote = fields[2];
                var port = int.Parse(remote[(remote.LastIndexOf(':') + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                if (remotePorts.Contains(port) && inodes.Contains(fields[9]))
                {
                    count++;
                }
            }
        }

        return count;
    }

    private static HashSet<string> SocketInodes(int pid)
    {
        var inodes = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            foreach (var fd in Directory.EnumerateFiles($"/proc/{pid}/fd"))
            {
                try
                {
                    if (new FileInfo(fd).LinkTarget is { } target && target.StartsWith("socket:[", StringComparison.Ordinal))
                    {
                        inodes.Add(target["socket:[".Length..^1]);
                    }
                }
                catch (IOException)
                {
                    // closed while listing
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // the process is gone
        }

        return inodes;
    }
}
