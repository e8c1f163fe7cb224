using System.Globalization;
using System.Text;

namespace LabMesh.Bench;

/// <summary>Console rows, the ratios (LabMesh/bare, gzip/identity, LabMesh/grpcio) and the Markdown summary.</summary>
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
            "  {0,-34} {1,12:N0} {2,-7} {3,8:F3} {4,8:F3} {5,7:F2}us {6,9}B {7,7}us {8,9}B {9,7}",
            m.Target,
            m.Rate,
            m.Unit,
            m.P50Ms,
            m.P99Ms,
            m.ServerCpuUsPerOp,
            OrDash(m.ServerBytesPerOp, "F0"),
            OrDash(m.ClientCpuUsPerOp, "F2"),
            OrDash(m.ClientBytesPerOp, "F0"),
            m.Errors));
        if (m.Note is not null)
        {
            Console.WriteLine($"    first error: {m.Note}");
        }
        if (m.Detail is not null)
        {
            Console.WriteLine($"    {m.Detail}");
        }
        if (m.WireSentPerOp is { } sent && m.WireReceivedPerOp is { } received)
        {
            Console.WriteLine(string.Format(Inv, "    on the wire per {0}: {1:N0} B sent + {2:N0} B received (HTTP/2 framing and headers included)",
                m.Unit == "msgs/s" ? "message" : "call", sent, received));
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

    /// <summary>The measured side against the baseline, as the scenario's ratio (e.g. LabMesh/bare, gzip/identity).</summary>
    public static void PrintRatio(ScenarioInfo info, Measurement measured, Measurement baseline)
    {
        var throughput = measured.Rate / baseline.Rate;
        var line = new StringBuilder(string.Format(Inv, "  {0}: throughput {1:F2}", info.Ratio, throughput));
        if (info.HasTarget)
        {
            line.Append(throughput >= ThroughputTarget ? " (meets the 0.80 target)" : " (BELOW the 0.80 target)");
        }
        line.Append(Inv, $", p99 {measured.P99Ms / baseline.P99Ms:F2} (lower is better), server CPU/op {measured.ServerCpuUsPerOp / baseline.ServerCpuUsPerOp:F2}");
        if (!double.IsNaN(measured.ServerBytesPerOp) && !double.IsNaN(baseline.ServerBytesPerOp))
        {
            line.Append(Inv, $", server alloc/op {measured.ServerBytesPerOp - baseline.ServerBytesPerOp:+0;-0}B");
        }
        if (!info.HasTarget && !double.IsNaN(measured.ClientCpuUsPerOp) && !double.IsNaN(baseline.ClientCpuUsPerOp))
        {
            line.Append(Inv, $", client CPU/op {measured.ClientCpuUsPerOp / baseline.ClientCpuUsPerOp:F2}");
        }
        if (measured.WireBytesPerOp is { } measuredWire && baseline.WireBytesPerOp is { } baselineWire)
        {
            line.Append(Inv, $", bytes on the wire/op {measuredWire / baselineWire:F2}");
        }
        Console.WriteLine(line);
    }

    public static string Markdown(IReadOnlyList<Measurement> results)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| scenario | measured side | rate | p50 ms | p99 ms | baseline side | rate | p50 ms | p99 ms | ratio | throughput ratio | p99 ratio |");
        sb.AppendLine("|---|---|---:|---:|---:|---|---:|---:|---:|---|---:|---:|");
        foreach (var scenario in results.Select(r => r.Scenario).Distinct())
        {
            var l = results.FirstOrDefault(r => r.Scenario == scenario && r.IsLabMesh);
            var b = results.FirstOrDefault(r => r.Scenario == scenario && !r.IsLabMesh);
            if (l is null || b is null)
            {
                continue;
            }
            var info = ScenarioInfo.Get(scenario);
            var ratio = l.Rate / b.Rate;
            sb.AppendLine(string.Format(
                Inv,
                "| {0} | {1} | {2:N0} {3} | {4:F2} | {5:F2} | {6} | {7:N0} {8} | {9:F2} | {10:F2} | {11} | **{12:F2}**{13} | {14:F2} |",
                scenario, l.Target, l.Rate, l.Unit, l.P50Ms, l.P99Ms,
                b.Target, b.Rate, b.Unit, b.P50Ms, b.P99Ms,
                info.Ratio, ratio, info.HasTarget && ratio < ThroughputTarget ? " (below 0.80)" : "",
                l.P99Ms / b.P99Ms));
        }
        sb.AppendLine();
        sb.AppendLine("| scenario | side | server CPU us/op | server alloc B/op | client CPU us/op | client alloc B/op | server GCs (gen0/1/2) | wire B/op sent + received |");
        sb.AppendLine("|---|---|---:|---:|---:|---:|---|---:|");
        foreach (var m in results)
        {
            sb.AppendLine(string.Format(
                Inv,
                "| {0} | {1} | {2:F2} | {3} | {4} | {5} | {6} | {7} |",
                m.Scenario, m.Target, m.ServerCpuUsPerOp, OrDash(m.ServerBytesPerOp, "F0"),
                OrDash(m.ClientCpuUsPerOp, "F2"),
                OrDash(m.ClientBytesPerOp, "F0"),
                m.Server.Managed ? $"{m.Server.Gen0}/{m.Server.Gen1}/{m.Server.Gen2}" : "-",
                m.WireSentPerOp is { } sent && m.WireReceivedPerOp is { } received ? string.Format(Inv, "{0:N0} + {1:N0}", sent, received) : "-"));
        }
        return sb.ToString();
    }

    private static string OrDash(double value, string format) => double.IsNaN(value) ? "-" : value.ToString(format, Inv);
}
