using System.Globalization;
using LabMesh.Testing;

namespace LabMesh.Chaos;

/// <summary>A replica's, or a bare host's, time from its process's own start to its first SERVING answer.</summary>
internal static class StartTimes
{
    private const double ClockTicks = 100; // USER_HZ on Linux

    /// <summary>
    /// <c>ctl.sh start PART</c> for a replica, timed from the process's own start (its start time in /proc, so the
    /// script's and dotnet's launch are inside) to its first SERVING answer to grpc.health.v1 Check, polled every
    /// 20 ms over one HTTP/2 connection (null if it did not answer within 120 s).
    /// </summary>
    public static async Task<double?> StartTimedAsync(this LocalTopology topology, string part, CancellationToken cancellationToken)
    {
        var before = topology.Pid(part);
        var starting = topology.CtlRunAsync("start", part, null, cancellationToken);
        int? pid;
        try
        {
            pid = await Eventually.MatchAsync(
                () => Task.FromResult(topology.Pid(part)), read => read is not null && read != before,
                TimeSpan.FromSeconds(30), () => part + "'s new pid file", TimeSpan.FromMilliseconds(5));
        }
        catch (TimeoutException)
        {
            pid = null;
        }

        var seconds = pid is null ? null : await TimeToServingAsync(topology.Address(part), pid.Value, cancellationToken);
        await starting;
        return seconds;
    }

    /// <summary>Seconds from process <paramref name="pid"/>'s start to its first SERVING answer at <paramref name="address"/>; null after 120 s.</summary>
    public static async Task<double?> TimeToServingAsync(string address, int pid, CancellationToken cancellationToken)
    {
        var started = ProcessStartSeconds(pid);
        return started is not null && await GrpcServing.WaitAsync(address, TimeSpan.FromSeconds(120), TimeSpan.FromMilliseconds(20), cancellationToken)
            ? UptimeSeconds() - started.Value
            : null;
    }

    private static double? ProcessStartSeconds(int pid)
    {
        try
        {
            // Field 22 of /proc/PID/stat, after the parenthesised command name: start time in clock ticks since boot.
            var stat = File.ReadAllText($"/proc/{pid.ToString(CultureInfo.InvariantCulture)}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[19], CultureInfo.InvariantCulture) / ClockTicks;
        }
        catch (IOException)
        {
            return null;
        }
    }

    private static double UptimeSeconds() =>
        double.Parse(File.ReadAllText("/proc/uptime").Split(' ')[0], CultureInfo.InvariantCulture);
}
