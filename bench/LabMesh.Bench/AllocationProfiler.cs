using System.Collections.Concurrent;
using System.Diagnostics.Tracing;
using System.Globalization;
using System.Text;

namespace LabMesh.Bench;

/// <summary>
/// A sampling allocation profile without external tools: the runtime raises a GC AllocationTick
/// event about every 100 KB allocated, naming the type of the object that crossed the mark, so
/// the sampled bytes per type approximate where the allocated bytes go.
/// </summary>
internal sealed class AllocationProfiler : EventListener
{
    private const EventKeywords GcKeyword = (EventKeywords)0x1;
    private ConcurrentDictionary<string, long> _bytesByType = new(StringComparer.Ordinal);

    public static AllocationProfiler? Instance { get; private set; }

    public static void Start() => Instance ??= new AllocationProfiler();

    protected override void OnEventSourceCreated(EventSource eventSource)
    {
        if (eventSource.Name == "Microsoft-Windows-DotNETRuntime")
        {
            EnableEvents(eventSource, EventLevel.Verbose, GcKeyword);
        }
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        if (eventData.EventName is null || !eventData.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || eventData.Payload is null)
        {
            return;
        }
        var typeIndex = eventData.PayloadNames?.IndexOf("TypeName") ?? -1;
        var amountIndex = eventData.PayloadNames?.IndexOf("AllocationAmount64") ?? -1;
        if (typeIndex < 0)
        {
            return;
        }
        var type = eventData.Payload[typeIndex] as string ?? "?";
        var amount = amountIndex >= 0 ? Convert.ToInt64(eventData.Payload[amountIndex], CultureInfo.InvariantCulture) : 100 * 1024;
        _bytesByType.AddOrUpdate(type, amount, (_, total) => total + amount);
    }

    /// <summary>The profile since the last reset, as "bytes type" lines, largest first; then starts afresh.</summary>
    public string TakeAndReset()
    {
        var taken = Interlocked.Exchange(ref _bytesByType, new ConcurrentDictionary<string, long>(StringComparer.Ordinal));
        var sb = new StringBuilder();
        foreach (var (type, bytes) in taken.OrderByDescending(p => p.Value))
        {
            sb.Append(bytes.ToString(CultureInfo.InvariantCulture)).Append(' ').Append(type).Append('\n');
        }
        return sb.ToString();
    }

    /// <summary>Prints the top types of a <see cref="TakeAndReset"/> profile, per operation.</summary>
    public static void Print(string side, string profile, long ops, int top = 8)
    {
        var rows = Parse(profile);
        var total = rows.Sum(r => r.Bytes);
        if (total == 0 || ops == 0)
        {
            Console.WriteLine($"    {side}: no allocation samples");
            return;
        }
        Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "    {0} allocations by type (sampled, ~B/op):", side));
        foreach (var (bytes, type) in rows.Take(top))
        {
            Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "      {0,8:F0}  {1,5:P0}  {2}", (double)bytes / ops, (double)bytes / total, type));
        }
    }

    /// <summary>Prints the types LabMesh allocates more of per operation than the baseline does.</summary>
    public static void PrintDifference(string side, string labMesh, long labMeshOps, string baseline, long baselineOps, int top = 15)
    {
        if (labMeshOps == 0 || baselineOps == 0)
        {
            return;
        }
        var perOp = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (bytes, type) in Parse(labMesh))
        {
            perOp[type] = perOp.GetValueOrDefault(type) + (double)bytes / labMeshOps;
        }
        foreach (var (bytes, type) in Parse(baseline))
        {
            perOp[type] = perOp.GetValueOrDefault(type) - (double)bytes / baselineOps;
        }
        Console.WriteLine(string.Format(CultureInfo.InvariantCulture,
            "  {0} allocations, LabMesh minus baseline (sampled, ~B/op; total {1:+0;-0})", side, perOp.Values.Sum()));
        foreach (var (type, bytes) in perOp.Where(p => p.Value >= 1).OrderByDescending(p => p.Value).Take(top))
        {
            Console.WriteLine(string.Format(CultureInfo.InvariantCulture, "      {0,8:+0;-0}  {1}", bytes, type));
        }
    }

    private static List<(long Bytes, string Type)> Parse(string profile) =>
        [.. profile.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(' ', 2))
            .Select(p => (long.Parse(p[0], CultureInfo.InvariantCulture), p[1]))];
}
