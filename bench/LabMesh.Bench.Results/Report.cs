using System.Globalization;

namespace LabMesh.Bench.Results;

/// <summary>How the figures are printed: fixed-width lines, invariant culture.</summary>
internal static class Report
{
    public const string ReadingHeader =
        "   side                                            threads    reports/s    markers/s   us/report   B/report";

    public const string LoadHeader =
        "   call                                                      calls/s   p50 ms   p99 ms p99.9 ms   max ms  errors  cores busy  CPU us/call  KB/call  GCs 0/1/2";

    public static string ReadingLine(ReadingResult r, int markers) => F(
        "   {0,-47} {1,7} {2,12:N0} {3,12:N0} {4,11:0.00} {5,10:N0}",
        r.Side, r.Threads, r.ReportsPerSecond, r.ReportsPerSecond * markers, r.Threads * 1e6 / r.ReportsPerSecond, r.BytesPerReport);

    public static string LoadLine(LoadResult r) => F(
        "   {0,-56} {1,8:N0} {2,8:0.00} {3,8:0.00} {4,8:0.00} {5,8:0.00} {6,7} {7,10:0.00} {8,12:N0} {9,8:0.0}  {10}/{11}/{12}",
        r.Name, r.Rate, r.P50Ms, r.P99Ms, r.P999Ms, r.MaxMs, r.Errors, r.CoresBusy, r.CpuUsPerCall, r.KbPerCall, r.Gen0, r.Gen1, r.Gen2)
        + (r.FirstError is null ? "" : Environment.NewLine + "      first error: " + r.FirstError);

    public static string F(string format, params object?[] args) => string.Format(CultureInfo.InvariantCulture, format, args);
}
