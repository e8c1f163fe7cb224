using System.Globalization;
using System.Text;

namespace LabMesh.Bench;

/// <summary>Console rows, the LabMesh/bare ratios and the Markdown summary.</summary>
internal static class Report
{
    /// <summary>DESIGN.md, "Performance targets": the status read at least 0.8 of a bare grpc-dotnet method.</summary>
    public const double ThroughputTarget = 0.80;

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>
    /// What the two sides are called in ratios and tables: LabMesh and bare, or (--telemetry) the host exporting its
    /// telemetry and the host not exporting, where the 0.80 target does not apply.
    /// </summary>
    public static (string Measured, string Baseline, bool Target) Sides { get; set; } = ("LabMesh", "bare", true);

    public static void PrintHeader() =>
        Console.WriteLine($"  {"side",-40} {"calls/s",10} {"p50 ms",8} {"p99 ms",8} {"srv CPU",10} {"cli CPU",9} {"cli alloc",10} {"errors",7}");

    public static void PrintRow(Measurement m)
    {
        Console.WriteLine(string.Format(
            Inv,
            "  {0,-40} {1,10:N0} {2,8:F3} {3,8:F3} {4,8:F2}us {5,7}us {6,9}B {7,7}",
            m.Target,
            m.Rate,
            m.P50Ms,
            m.P99Ms,
            m.ServerCpuUsPerCall,
            OrDash(m.ClientCpuUsPerCall, "F2"),
            OrDash(m.ClientBytesPerCall, "F0"),
            m.Errors));
        if (m.Note is not null)
        {
            Console.WriteLine($"    first error: {m.Note}");
        }
    }

    public static void PrintRatio(Measurement labMesh, Measurement bare)
    {
        var throughput = labMesh.Rate / bare.Rate;
        Console.WriteLine(string.Format(
            Inv,
            "  {5}/{6}: throughput {0:F2}{1}, p50 {2:F2}, p99 {3:F2} (lower is better), server CPU/call {4:F2}",
            throughput,
            !Sides.Target ? "" : throughput >= ThroughputTarget ? " (meets the 0.80 target)" : " (BELOW the 0.80 target)",
            labMesh.P50Ms / bare.P50Ms,
            labMesh.P99Ms / bare.P99Ms,
            labMesh.ServerCpuUsPerCall / bare.ServerCpuUsPerCall,
            Sides.Measured,
            Sides.Baseline));
    }

    public static string Markdown(IReadOnlyList<Measurement> results)
    {
        var sb = new StringBuilder();
        sb.AppendLine($"| scenario | {Sides.Measured} side | calls/s | p50 ms | p99 ms | {Sides.Baseline} side | calls/s | p50 ms | p99 ms | throughput ratio | p50 ratio | p99 ratio |");
        sb.AppendLine("|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|");
        foreach (var scenario in results.Select(r => r.Scenario).Distinct())
        {
            var l = results.FirstOrDefault(r => r.Scenario == scenario && r.IsLabMesh);
            var b = results.FirstOrDefault(r => r.Scenario == scenario && !r.IsLabMesh);
            if (l is null || b is null)
            {
                continue;
            }

            var ratio = l.Rate / b.Rate;
            sb.AppendLine(string.Format(
                Inv,
                "| {0} | {1} | {2:N0} | {3:F2} | {4:F2} | {5} | {6:N0} | {7:F2} | {8:F2} | **{9:F2}**{10} | {11:F2} | {12:F2} |",
                scenario, l.Target, l.Rate, l.P50Ms, l.P99Ms,
                b.Target, b.Rate, b.P50Ms, b.P99Ms,
                ratio, Sides.Target && ratio < ThroughputTarget ? " (below 0.80)" : "",
                l.P50Ms / b.P50Ms, l.P99Ms / b.P99Ms));
        }
        sb.AppendLine();
        sb.AppendLine("| scenario | side | server CPU us/call | client CPU us/call | client alloc B/call |");
        sb.AppendLine("|---|---|---:|---:|---:|");
        foreach (var m in results)
        {
            sb.AppendLine(string.Format(
                Inv,
                "| {0} | {1} | {2:F2} | {3} | {4} |",
                m.Scenario, m.Target, m.ServerCpuUsPerCall, OrDash(m.ClientCpuUsPerCall, "F2"), OrDash(m.ClientBytesPerCall, "F0")));
        }
        return sb.ToString();
    }

    private static string OrDash(double value, string format) => double.IsNaN(value) ? "-" : value.ToString(format, Inv);
}
