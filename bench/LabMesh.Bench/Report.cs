using System.Globalization;
using System.Text;

namespace LabMesh.Bench;

/// <summary>Console rows, the LabMesh/bare ratios and the Markdown summary.</summary>
internal static class Report
{
    /// <summary>DESIGN.md, "Performance targets": at least 80% of the bare endpoint's throughput.</summary>
    public const double ThroughputTarget = 0.80;

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void PrintHeader() =>
        Console.WriteLine($"  {"target",-34} {"rate",12} {"unit",-7} {"p50 ms",8} {"p99 ms",8} {"srv CPU",9} {"srv alloc",10} {"cli CPU",9} {"cli alloc",10} {"errors",7}");

    public static void PrintRow(Measurement m)
    {
        Console.WriteLine(string.Format(
            Inv,
            "  {0,-34} {1,12:N0} {2,-7} {3,8:F3} {4,8:F3} {5,7:F2}us {6,9:F0}B {7,7}us {8,9}B {9,7}",
            m.Target,
            m.Rate,
            m.Unit,
            m.P50Ms,
            m.P99Ms,
            m.ServerCpuUsPerOp,
            m.ServerBytesPerOp,
            double.IsNaN(m.ClientCpuUsPerOp) ? "-" : m.ClientCpuUsPerOp.ToString("F2", Inv),
            double.IsNaN(m.ClientBytesPerOp) ? "-" : m.ClientBytesPerOp.ToString("F0", Inv),
            m.Errors));
        if (m.Note is not null)
        {
            Console.WriteLine($"    first error: {m.Note}");
        }
        if (m.ServerAllocations is not null)
        {
            AllocationProfiler.Print("server", m.ServerAllocations, m.Ops);
        }
        if (m.ClientAllocations is not null)
        {
            AllocationProfiler.Print("client", m.ClientAllocations, m.Ops);
        }
    }

    public static void PrintRatio(Measurement labMesh, Measurement bare)
    {
        var throughput = labMesh.Rate / bare.Rate;
        var p99 = labMesh.P99Ms / bare.P99Ms;
        Console.WriteLine(string.Format(
            Inv,
            "  LabMesh/bare: throughput {0:F2} ({1}), p99 {2:F2} (lower is better), server CPU/op {3:F2}, server alloc/op {4:+0;-0}B",
            throughput,
            throughput >= ThroughputTarget ? "meets the 0.80 target" : "BELOW the 0.80 target",
            p99,
            labMesh.ServerCpuUsPerOp / bare.ServerCpuUsPerOp,
            labMesh.ServerBytesPerOp - bare.ServerBytesPerOp));
    }

    public static string Markdown(IReadOnlyList<Measurement> results)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| scenario | LabMesh side | rate | p50 ms | p99 ms | baseline side | rate | p50 ms | p99 ms | throughput ratio | p99 ratio |");
        sb.AppendLine("|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|");
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
                "| {0} | {1} | {2:N0} {3} | {4:F2} | {5:F2} | {6} | {7:N0} {8} | {9:F2} | {10:F2} | **{11:F2}**{12} | {13:F2} |",
                scenario, l.Target, l.Rate, l.Unit, l.P50Ms, l.P99Ms,
                b.Target, b.Rate, b.Unit, b.P50Ms, b.P99Ms,
                ratio, ratio >= ThroughputTarget ? "" : " (below 0.80)",
                l.P99Ms / b.P99Ms));
        }
        sb.AppendLine();
        sb.AppendLine("| scenario | side | server CPU us/op | server alloc B/op | client CPU us/op | client alloc B/op | server GCs (gen0/1/2) |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---|");
        foreach (var m in results)
        {
            sb.AppendLine(string.Format(
                Inv,
                "| {0} | {1} | {2:F2} | {3:F0} | {4} | {5} | {6}/{7}/{8} |",
                m.Scenario, m.Target, m.ServerCpuUsPerOp, m.ServerBytesPerOp,
                double.IsNaN(m.ClientCpuUsPerOp) ? "-" : m.ClientCpuUsPerOp.ToString("F2", Inv),
                double.IsNaN(m.ClientBytesPerOp) ? "-" : m.ClientBytesPerOp.ToString("F0", Inv),
                m.Server.Gen0, m.Server.Gen1, m.Server.Gen2));
        }
        return sb.ToString();
    }
}
