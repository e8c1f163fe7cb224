using System.Diagnostics;
using System.Globalization;
using LabMesh.Contracts.Results.V1;
using LabMesh.ResultsInterpretation.Domain;
using LabMesh.Core.Errors;

namespace LabMesh.Bench.Results;

/// <summary>One side of the reading part, measured once.</summary>
/// <param name="Side">What the loop does per report.</param>
/// <param name="Threads">Threads running the loop at once, each over all the reports.</param>
/// <param name="Reports">Reports done in the window, all threads.</param>
/// <param name="Elapsed">The window.</param>
/// <param name="BytesPerReport">Allocated by the loop threads, per report.</param>
internal sealed record ReadingResult(string Side, int Threads, long Reports, TimeSpan Elapsed, double BytesPerReport)
{
    public double ReportsPerSecond => Reports / Elapsed.TotalSeconds;
}

/// <summary>
/// Reports interpreted per second in process: what ResultsApi.InterpretMarkers and ResultsWorkflow do
/// per marker (clone it, attach its reading, add it to the response) and per report (the overall
/// interpretation), with <see cref="MarkerReader.Read"/> and against the same loop with a default
/// reading. Each side runs on dedicated threads for a fixed time after a warm-up of every side.
/// </summary>
internal static class ReadingBench
{
    /// <summary>Enough reports that the loop does not just replay one report's branches.</summary>
    public const int ReportCount = 64;

    private const int Batch = 16;

    public static IReadOnlyList<ReadingResult> Run(IReadOnlyList<Marker[]> reports, TimeSpan duration, Action<ReadingResult> onResult)
    {
        var reader = new MarkerReader(CriticalLimitCatalog.Create(new ResultsOptions()));
        (string Name, Func<Marker[], int> Work)[] sides =
        [
            ("baseline: clone + default reading + overall", report => Baseline(report)),
            ("read: clone + MarkerReader.Read + overall", report => Read(reader, report)),
            ("validate + read (as InterpretMarkers)", report => ValidateAndRead(reader, report)),
        ];

        foreach (var (_, work) in sides)
        {
            Measure("warm-up", work, reports, threads: 1, TimeSpan.FromMilliseconds(500));
        }

        var results = new List<ReadingResult>();
        foreach (var (name, work) in sides)
        {
            results.Add(Measure(name, work, reports, threads: 1, duration));
            onResult(results[^1]);
        }
        foreach (var (name, work) in sides.Take(2))
        {
            results.Add(Measure(name, work, reports, threads: 2, duration));
            onResult(results[^1]);
        }
        return results;
    }

    /// <summary>One line on what the reports hold, from reading each once (not measured).</summary>
    public static string Describe(IReadOnlyList<Marker[]> reports)
    {
        var reader = MarkerReader.Default;
        int markers = 0, catalog = 0, converted = 0, notComparable = 0, qualitative = 0, bounds = 0, oneSided = 0, labFlag = 0, overridden = 0;
        var overall = new Dictionary<Interpretation, int>();
        foreach (var report in reports)
        {
            var worst = Interpretation.Unspecified;
            foreach (var marker in report)
            {
                var reading = reader.Read(marker);
                markers++;
                catalog += reading.CriticalLimitAnalyte.Length > 0 ? 1 : 0;
                converted += reading.ConvertedValue.Length > 0 ? 1 : 0;
                notComparable += reading.Flags.Contains(MarkerFlag.UnitNotComparable) ? 1 : 0;
                qualitative += reading.Flags.Contains(MarkerFlag.QualitativeValue) ? 1 : 0;
                overridden += reading.Flags.Contains(MarkerFlag.LabInterpretationOverridden) ? 1 : 0;
                bounds += marker.ValueCase == Marker.ValueOneofCase.TextValue && (marker.TextValue.StartsWith('<') || marker.TextValue.StartsWith('>')) ? 1 : 0;
                oneSided += marker.HasMinRangeValue != marker.HasMaxRangeValue ? 1 : 0;
                labFlag += marker.Interpretation != Interpretation.Unspecified ? 1 : 0;
                worst = MarkerReader.MoreSevere(worst, reading.Interpretation);
            }
            overall[worst] = overall.GetValueOrDefault(worst) + 1;
        }

        string Share(int n, int of) => (100.0 * n / of).ToString("0.#", CultureInfo.InvariantCulture) + "%";
        return $"{reports.Count} reports x {reports[0].Length} markers; per marker: {Share(catalog, markers)} checked against the catalog " +
            $"({Share(converted, markers)} after a unit conversion), {Share(notComparable, markers)} unit not comparable, " +
            $"{Share(bounds, markers)} bounds (<x, >x), {Share(qualitative, markers)} qualitative, {Share(oneSided, markers)} one-sided ranges, " +
            $"{Share(labFlag, markers)} with the lab's interpretation ({Share(overridden, markers)} overridden); per report: " +
            $"{Share(overall.GetValueOrDefault(Interpretation.Critical), reports.Count)} critical, " +
            $"{Share(overall.GetValueOrDefault(Interpretation.Abnormal), reports.Count)} abnormal, " +
            $"{Share(overall.GetValueOrDefault(Interpretation.Normal), reports.Count)} normal";
    }

    private static int Baseline(Marker[] report)
    {
        var response = new InterpretMarkersResponse();
        foreach (var marker in report)
        {
            var read = marker.Clone();
            read.Reading = new MarkerReading();
            response.Results.Add(read);
        }
        response.Interpretation = MarkerReader.Overall(response.Results.Select(m => m.Reading.Interpretation));
        return (int)response.Interpretation + response.Results.Count;
    }

    private static int Read(MarkerReader reader, Marker[] report)
    {
        var response = new InterpretMarkersResponse();
        foreach (var marker in report)
        {
            var read = marker.Clone();
            read.Reading = reader.Read(marker);
            response.Results.Add(read);
        }
        response.Interpretation = MarkerReader.Overall(response.Results.Select(m => m.Reading.Interpretation));
        return (int)response.Interpretation + response.Results.Count;
    }

    private static int ValidateAndRead(MarkerReader reader, Marker[] report)
    {
        var violations = new List<FieldViolation>();
        MarkerValidation.Validate(report, "results", violations);
        if (violations.Count > 0)
        {
            throw new InvalidOperationException($"A synthetic report fails validation at {violations[0].Field}.");
        }
        return Read(reader, report);
    }

    private static ReadingResult Measure(string name, Func<Marker[], int> work, IReadOnlyList<Marker[]> reports, int threads, TimeSpan duration)
    {
        var counts = new long[threads];
        var bytes = new long[threads];
        var checks = new int[threads];
        using var ready = new Barrier(threads + 1);
        long end = 0;
        var workers = new Thread[threads];
        for (var t = 0; t < threads; t++)
        {
            var id = t;
            workers[t] = new Thread(() =>
            {
                ready.SignalAndWait();
                var stop = Volatile.Read(ref end);
                var allocated = GC.GetAllocatedBytesForCurrentThread();
                long n = id * 7; // threads start at different reports
                var check = 0;
                while (Stopwatch.GetTimestamp() < stop)
                {
                    for (var i = 0; i < Batch; i++)
                    {
                        check += work(reports[(int)(n++ % reports.Count)]);
                    }
                }
                counts[id] = n - id * 7;
                bytes[id] = GC.GetAllocatedBytesForCurrentThread() - allocated;
                checks[id] = check;
            })
            { IsBackground = true, Name = "reading-" + t };
            workers[t].Start();
        }

        var started = Stopwatch.GetTimestamp();
        Volatile.Write(ref end, started + (long)(duration.TotalSeconds * Stopwatch.Frequency));
        ready.SignalAndWait();
        foreach (var worker in workers)
        {
            worker.Join();
        }
        var elapsed = Stopwatch.GetElapsedTime(started);
        GC.KeepAlive(checks);
        var total = counts.Sum();
        return new ReadingResult(name, threads, total, elapsed, total == 0 ? double.NaN : (double)bytes.Sum() / total);
    }
}
