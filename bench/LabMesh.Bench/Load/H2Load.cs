using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using LabMesh.Bench.Servers;

namespace LabMesh.Bench.Load;

/// <summary>What one h2load run measured.</summary>
internal sealed record H2LoadResult(long Succeeded, long Failed, double RequestsPerSecond, TimeSpan Elapsed, double P50Ms, double P99Ms, string Output);

/// <summary>
/// nghttp2's h2load, a load generator nobody here wrote, posting a file of framed gRPC bytes over
/// h2c (prior knowledge). It only checks the HTTP status, so the bench checks <c>grpc-status</c>
/// once with its own client before trusting it.
/// </summary>
internal static partial class H2Load
{
    public static async Task<H2LoadResult> RunAsync(
        BenchOptions options, Uri uri, string bodyFile, IReadOnlyList<string> headers, TimeSpan duration, bool log)
    {
        var logFile = log ? Path.Combine(Path.GetTempPath(), $"labmesh-bench-h2load-{Environment.ProcessId}-{Guid.NewGuid():N}.tsv") : null;
        var streamsPerConnection = (int)Math.Ceiling(options.Concurrency / (double)options.Connections);
        string[] args =
        [
            "-D", ((int)Math.Max(1, duration.TotalMilliseconds)).ToString(CultureInfo.InvariantCulture) + "ms",
            "-c", options.Connections.ToString(CultureInfo.InvariantCulture),
            "-m", streamsPerConnection.ToString(CultureInfo.InvariantCulture),
            "-t", "1",
            "-d", bodyFile,
            "-H", "content-type: application/grpc",
            "-H", "te: trailers",
        ];
        var start = ServerProcess.PinnedStart(options, core: 1, options.H2LoadPath, args);
        foreach (var header in headers)
        {
            start.ArgumentList.Add("-H");
            start.ArgumentList.Add(header);
        }
        if (logFile is not null)
        {
            start.ArgumentList.Add("--log-file");
            start.ArgumentList.Add(logFile);
        }
        start.ArgumentList.Add(uri.ToString());

        using var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start h2load.");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        var output = await stdout + await stderr;
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"h2load exited with {process.ExitCode}:\n{output}");
        }

        var finished = FinishedLine().Match(output);
        var requests = RequestsLine().Match(output);
        if (!finished.Success || !requests.Success)
        {
            throw new InvalidOperationException($"Could not read h2load's summary:\n{output}");
        }
        var elapsed = ParseDuration(finished.Groups["time"].Value);
        var rps = double.Parse(finished.Groups["rps"].Value, CultureInfo.InvariantCulture);
        var succeeded = long.Parse(requests.Groups["ok"].Value, CultureInfo.InvariantCulture);
        var failed = long.Parse(requests.Groups["failed"].Value, CultureInfo.InvariantCulture)
            + long.Parse(requests.Groups["errored"].Value, CultureInfo.InvariantCulture)
            + long.Parse(requests.Groups["timeout"].Value, CultureInfo.InvariantCulture);

        double p50 = double.NaN, p99 = double.NaN;
        if (logFile is not null)
        {
            (p50, p99) = await ReadLatenciesAsync(logFile);
            File.Delete(logFile);
        }
        return new H2LoadResult(succeeded, failed, rps, elapsed, p50, p99, output);
    }

    /// <summary>p50/p99 from h2load's per-request log (third column: microseconds to the end of the response).</summary>
    private static async Task<(double P50, double P99)> ReadLatenciesAsync(string logFile)
    {
        var micros = new List<long>();
        foreach (var line in await File.ReadAllLinesAsync(logFile))
        {
            var columns = line.Split('\t');
            if (columns.Length >= 3 && columns[1] == "200" && long.TryParse(columns[2], CultureInfo.InvariantCulture, out var us))
            {
                micros.Add(us);
            }
        }
        if (micros.Count == 0)
        {
            return (double.NaN, double.NaN);
        }
        micros.Sort();
        double At(double p) => micros[Math.Clamp((int)Math.Ceiling(p * micros.Count) - 1, 0, micros.Count - 1)] / 1000.0;
        return (At(0.50), At(0.99));
    }

    private static TimeSpan ParseDuration(string text) =>
        text.EndsWith("ms", StringComparison.Ordinal)
            ? TimeSpan.FromMilliseconds(double.Parse(text[..^2], CultureInfo.InvariantCulture))
            : TimeSpan.FromSeconds(double.Parse(text.TrimEnd('s'), CultureInfo.InvariantCulture));

    [GeneratedRegex(@"finished in (?<time>[0-9.]+m?s), (?<rps>[0-9.]+) req/s")]
    private static partial Regex FinishedLine();

    [GeneratedRegex(@"requests: \d+ total, \d+ started, \d+ done, (?<ok>\d+) succeeded, (?<failed>\d+) failed, (?<errored>\d+) errored, (?<timeout>\d+) timeout")]
    private static partial Regex RequestsLine();
}
