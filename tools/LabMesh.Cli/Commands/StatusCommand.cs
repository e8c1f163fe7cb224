using System.CommandLine;
using Grpc.Core;
using LabMesh.Cli.Mesh;
using LabMesh.Cli.Output;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using Spectre.Console;
using ResultInterpretation = LabMesh.Contracts.Results.V1.Interpretation;

namespace LabMesh.Cli.Commands;

/// <summary>
/// <c>labmesh status ID</c>: one requisition in all three vocabularies, its service requests, a summary
/// of its result reports (with their critical tier and unsolicited results) and its critical results nobody
/// has acknowledged yet (with their tier, whom they are with, and who declined them).
/// </summary>
internal static class StatusCommand
{
    public static CliCommand Create(CommonOptions common)
    {
        var id = new Argument<string>("ID") { Description = "The requisition's id." };
        var command = new Command("status",
            "A requisition's status in all three vocabularies (seed 004's order status, seed 003's lifecycle, seed 000's " +
            "task_business_status), its service requests, its result reports and its open critical results. A part the " +
            "target does not serve (UNIMPLEMENTED) is shown as unavailable, with a warning on stderr.")
        {
            id,
        };
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            using var mesh = new MeshClient(common.Settings(parse));
            var view = await ReadAsync(mesh, parse.GetValue(id)!, cancellationToken);
            if (parse.GetValue(common.Json))
            {
                Json.WriteLine(view);
            }
            else
            {
                Render(view);
            }

            return ExitCodes.Success;
        });
        return new CliCommand(command,
        [
            "labmesh status 0192f0c4-7d1e-7b3a-9c55-2f1e6f1d2a10",
            "labmesh status 0192f0c4-7d1e-7b3a-9c55-2f1e6f1d2a10 --target http://127.0.0.1:5000 --team demo --json",
        ]);
    }

    private static async Task<StatusView> ReadAsync(MeshClient mesh, string id, CancellationToken cancellationToken)
    {
        var requisition = (await mesh.CallAsync("RequisitionService/GetRequisition",
            o => mesh.Requisitions.GetRequisitionAsync(new GetRequisitionRequest { Id = id }, o), cancellationToken)).Requisition;
        var unavailable = new List<string>();
        var results = await OptionalAsync(unavailable, () => ResultsAsync(mesh, id, cancellationToken));
        var critical = await OptionalAsync(unavailable, () => OpenCriticalResultsAsync(mesh, id, cancellationToken));
        var replacement = await ReplacementAsync(mesh, requisition, results, unavailable, cancellationToken);
        return new StatusView(
            requisition.Id,
            requisition.TeamId,
            Words.Modality(requisition.Modality),
            requisition.Lab,
            Json.Time(requisition.CreateTime),
            Json.Time(requisition.PlaceTime),
            Json.Time(requisition.UpdateTime),
            OrderSnapshot.Of(requisition),
            [.. requisition.Events.Select(e => new OrderEventView(e.Id, Json.Time(e.CreatedAt), e.Status))],
            results,
            critical,
            replacement,
            unavailable);
    }

    /// <summary>
    /// The replacement chain (what this order replaces and what replaces it, oldest first), each member with its
    /// order status and its results, read together: a redraw's results next to the failed order's.
    /// </summary>
    private static async Task<ReplacementView> ReplacementAsync(
        MeshClient mesh, Requisition requisition, ResultsView? results, List<string> unavailable, CancellationToken cancellationToken)
    {
        var chain = new List<ChainMemberView>();
        foreach (var memberId in requisition.ReplacementChain)
        {
            var member = memberId == requisition.Id ? requisition
                : (await mesh.CallAsync("RequisitionService/GetRequisition",
                    o => mesh.Requisitions.GetRequisitionAsync(new GetRequisitionRequest { Id = memberId }, o), cancellationToken)).Requisition;
            var memberResults = memberId == requisition.Id ? results
                : await OptionalAsync(unavailable, () => ResultsAsync(mesh, memberId, cancellationToken));
            chain.Add(new ChainMemberView(member.Id, member.SubStatus.Length == 0 ? null : member.SubStatus,
                [.. member.Tests.Select(t => t.Code)], memberResults));
        }

        return new ReplacementView(
            requisition.ReplacesRequisitionId.Length == 0 ? null : requisition.ReplacesRequisitionId,
            [.. requisition.ReplacedByRequisitionIds],
            chain);
    }

    /// <summary>Every page of the requisition's reports (GetResults pages by count and bytes).</summary>
    private static async Task<ResultsView> ResultsAsync(MeshClient mesh, string id, CancellationToken cancellationToken)
    {
        var request = new GetResultsRequest { RequisitionId = id, PageSize = 100 };
        var reports = new List<ReportView>();
        GetResultsResponse page;
        do
        {
            page = await mesh.CallAsync("ResultsInterpretationService/GetResults", o => mesh.Results.GetResultsAsync(request, o), cancellationToken);
            reports.AddRange(page.Reports.Select(ReportView.Of));
            request.PageToken = page.NextPageToken;
        }
        while (request.PageToken.Length > 0);

        return ResultsView.Of(page, reports);
    }

    private static async Task<List<CriticalResultView>> OpenCriticalResultsAsync(MeshClient mesh, string id, CancellationToken cancellationToken)
    {
        var open = new List<CriticalResultView>();
        var request = new ListUnacknowledgedCriticalResultsRequest { RequisitionId = id, PageSize = 100 };
        do
        {
            var page = await mesh.CallAsync("NotificationService/ListUnacknowledgedCriticalResults",
                o => mesh.Notifications.ListUnacknowledgedCriticalResultsAsync(request, o), cancellationToken);
            open.AddRange(page.CriticalResults.Select(CriticalResultView.Of));
            request.PageToken = page.NextPageToken;
        }
        while (request.PageToken.Length > 0);

        return open;
    }

    /// <summary>The part, or null when the target does not serve its service (noted on stderr and in the output).</summary>
    private static async Task<T?> OptionalAsync<T>(List<string> unavailable, Func<Task<T>> read)
        where T : class
    {
        try
        {
            return await read();
        }
        catch (CallFailedException e) when (e.StatusCode == StatusCode.Unimplemented)
        {
            unavailable.Add($"{e.Method}: {StatusCodes.Name(e.StatusCode)}");
            await Console.Error.WriteLineAsync($"labmesh: warning: {e.Message}");
            return null;
        }
    }

    private static void Render(StatusView view)
    {
        var console = AnsiConsole.Console;
        console.MarkupLine($"[bold]Requisition {Markup.Escape(view.RequisitionId)}[/]  team {Markup.Escape(view.TeamId)} · "
            + $"{Markup.Escape(view.Modality ?? "no modality")} · lab {Markup.Escape(Text(view.Lab))} · "
            + (view.PlacedAt is { } placed ? $"placed {Time(placed)}" : "[yellow]draft[/]"));

        var statuses = new Table().Border(TableBorder.Rounded).AddColumn("vocabulary").AddColumn("status");
        statuses.AddRow("seed 004 order status", Markup.Escape(Text(view.Statuses.OrderStatus)));
        statuses.AddRow("seed 004 namespaced status", Markup.Escape(Text(view.Statuses.OrderSubStatus)));
        statuses.AddRow("seed 003 lifecycle", Markup.Escape(Text(view.Statuses.LifecycleStatus)));
        console.Write(statuses);

        var tests = new Table().Border(TableBorder.Rounded).Title("service requests (seed 000)")
            .AddColumn("id").AddColumn("code").AddColumn("status").AddColumn("task_business_status").AddColumn("partner");
        foreach (var test in view.Statuses.ServiceRequests)
        {
            tests.AddRow(Markup.Escape(test.Id), Markup.Escape(test.Code), Markup.Escape(Text(test.Status)),
                Markup.Escape(Text(test.TaskBusinessStatus)), Markup.Escape(test.PartnerId));
        }

        console.Write(tests);

        if (view.OrderEvents.Count > 0)
        {
            var events = new Table().Border(TableBorder.Rounded).Title("order events (seed 004)")
                .AddColumn("#").AddColumn("time").AddColumn("status");
            foreach (var e in view.OrderEvents)
            {
                events.AddRow(e.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), Time(e.CreatedAt), Markup.Escape(e.Status));
            }

            console.Write(events);
        }

        RenderResults(console, view.Results);
        RenderCritical(console, view.OpenCriticalResults);
        RenderReplacement(console, view);
    }

    private static void RenderReplacement(IAnsiConsole console, StatusView view)
    {
        if (view.Replacement.Chain.Count == 0)
        {
            return;
        }

        var table = new Table().Border(TableBorder.Rounded).Title("replacement chain (oldest first)")
            .AddColumn("requisition").AddColumn("order status").AddColumn("tests").AddColumn("results");
        foreach (var member in view.Replacement.Chain)
        {
            var name = member.RequisitionId == view.RequisitionId ? $"[bold]{Markup.Escape(member.RequisitionId)}[/] (this)"
                : member.RequisitionId == view.Replacement.Replaces ? $"{Markup.Escape(member.RequisitionId)} (replaced by this)"
                : view.Replacement.ReplacedBy.Contains(member.RequisitionId) ? $"{Markup.Escape(member.RequisitionId)} (replaces this)"
                : Markup.Escape(member.RequisitionId);
            var results = member.Results is not { } r ? "[yellow]unavailable[/]"
                : r.Reports.Count == 0 ? "none yet"
                : $"{r.Reports.Count} report(s) · {Colored(r.Interpretation)}";
            table.AddRow(name, Markup.Escape(Text(member.OrderSubStatus)), Markup.Escape(string.Join(", ", member.Tests)), results);
        }

        console.Write(table);
    }

    private static void RenderResults(IAnsiConsole console, ResultsView? results)
    {
        if (results is null)
        {
            console.MarkupLine("results: [yellow]unavailable[/]");
            return;
        }

        if (results.Reports.Count == 0)
        {
            console.MarkupLine("results: none yet");
            return;
        }

        console.MarkupLine($"results: {results.Reports.Count} report(s) · {Colored(results.Interpretation)} · "
            + $"{Markup.Escape(Text(results.ResultsStatus))} · all results received: {(results.AllResultsReceived ? "yes" : "no")}"
            + (results.UnsolicitedReports > 0 ? $" · [yellow]{results.UnsolicitedReports} unsolicited[/]" : ""));
        var table = new Table().Border(TableBorder.Rounded)
            .AddColumn("report").AddColumn("version").AddColumn("status").AddColumn("interpretation").AddColumn("markers").AddColumn("critical analytes")
            .AddColumn("tier");
        foreach (var report in results.Reports)
        {
            table.AddRow(Markup.Escape(report.Id), report.Version.ToString(System.Globalization.CultureInfo.InvariantCulture),
                Markup.Escape(Text(report.Status)), Colored(report.Interpretation),
                report.Markers.ToString(System.Globalization.CultureInfo.InvariantCulture), Markup.Escape(string.Join(", ", report.CriticalAnalytes)),
                Markup.Escape(Text(report.CriticalTier)));
        }

        console.Write(table);
        foreach (var report in results.Reports.Where(r => r.Unsolicited))
        {
            console.MarkupLine($"[yellow]unsolicited[/] (no ordered test) in report {Markup.Escape(report.Id)} v{report.Version}: "
                + Markup.Escape(string.Join(", ", report.UnsolicitedAnalytes)));
        }
    }

    private static void RenderCritical(IAnsiConsole console, IReadOnlyList<CriticalResultView>? critical)
    {
        if (critical is null)
        {
            console.MarkupLine("open critical results: [yellow]unavailable[/]");
            return;
        }

        if (critical.Count == 0)
        {
            console.MarkupLine("open critical results: none");
            return;
        }

        var table = new Table().Border(TableBorder.Rounded).Title("[red]open critical results[/]")
            .AddColumn("id").AddColumn("analytes").AddColumn("tier").AddColumn("state").AddColumn("opened").AddColumn("due").AddColumn("escalations")
            .AddColumn("with").AddColumn("declined by");
        foreach (var c in critical)
        {
            table.AddRow(Markup.Escape(c.Id), Markup.Escape(string.Join(", ", c.CriticalAnalytes)), Markup.Escape(Text(c.Tier)), Markup.Escape(Text(c.State)),
                Time(c.OpenedAt), Time(c.DueAt), c.Escalations.ToString(System.Globalization.CultureInfo.InvariantCulture),
                Markup.Escape(Text(c.EscalatedTo)), Markup.Escape(string.Join(", ", c.DeclinedBy)));
        }

        console.Write(table);
    }

    private static string Text(string? value) => string.IsNullOrEmpty(value) ? "-" : value;

    private static string Time(DateTimeOffset? time) =>
        time?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture) ?? "-";

    private static string Colored(string? interpretation) => interpretation switch
    {
        "critical" => "[red bold]critical[/]",
        "abnormal" => "[yellow]abnormal[/]",
        "normal" => "[green]normal[/]",
        _ => "-",
    };

    private sealed record StatusView(
        string RequisitionId,
        string TeamId,
        string? Modality,
        string Lab,
        DateTimeOffset? CreatedAt,
        DateTimeOffset? PlacedAt,
        DateTimeOffset? UpdatedAt,
        OrderSnapshot Statuses,
        IReadOnlyList<OrderEventView> OrderEvents,
        ResultsView? Results,
        IReadOnlyList<CriticalResultView>? OpenCriticalResults,
        ReplacementView Replacement,
        IReadOnlyList<string> Unavailable);

    /// <summary>What the order replaces, what replaces it, and its whole chain with each member's results (empty without links).</summary>
    private sealed record ReplacementView(string? Replaces, IReadOnlyList<string> ReplacedBy, IReadOnlyList<ChainMemberView> Chain);

    private sealed record ChainMemberView(string RequisitionId, string? OrderSubStatus, IReadOnlyList<string> Tests, ResultsView? Results);

    private sealed record OrderEventView(long Id, DateTimeOffset? CreatedAt, string Status);

    private sealed record ResultsView(
        string? Interpretation, string? ResultsStatus, bool AllResultsReceived, int UnsolicitedReports, IReadOnlyList<ReportView> Reports)
    {
        /// <param name="last">The last page (its totals are over every report, as every page's).</param>
        /// <param name="reports">Every page's reports.</param>
        public static ResultsView Of(GetResultsResponse last, IReadOnlyList<ReportView> reports) => new(
            Words.Interpretation(last.Interpretation),
            last.ResultsStatus.Length == 0 ? null : last.ResultsStatus,
            last.AllResultsReceived,
            last.UnsolicitedReports,
            reports);
    }

    /// <summary>
    /// A report without its values: how it was read, which analytes were critical and their tier, and which
    /// answer no ordered test (unsolicited).
    /// </summary>
    private sealed record ReportView(
        string Id, int Version, string? Status, string? Interpretation, int Markers, IReadOnlyList<string> CriticalAnalytes, DateTimeOffset? CreatedAt,
        string? CriticalTier, bool Unsolicited, IReadOnlyList<string> UnsolicitedAnalytes)
    {
        public static ReportView Of(Report report) => new(
            report.Id,
            report.Version,
            Words.Report(report.Metadata?.Status ?? ReportStatus.Unspecified),
            Words.Interpretation(report.Metadata?.Interpretation ?? ResultInterpretation.Unspecified),
            report.Results.Count,
            [.. report.Results.Where(m => m.Reading?.Interpretation == ResultInterpretation.Critical).Select(m => m.Slug)],
            Json.Time(report.CreateTime),
            Words.Tier(report.CriticalTier),
            report.Unsolicited,
            [.. report.UnsolicitedAnalytes]);
    }

    private sealed record CriticalResultView(
        string Id, string ReportId, int ReportVersion, IReadOnlyList<string> CriticalAnalytes, string? State,
        DateTimeOffset? OpenedAt, DateTimeOffset? DueAt, int Escalations, string? Tier, string? EscalatedTo, IReadOnlyList<string> DeclinedBy)
    {
        public static CriticalResultView Of(CriticalResultAcknowledgement c) => new(
            c.Id, c.ReportId, c.ReportVersion, [.. c.CriticalAnalytes], Words.CriticalResult(c.State),
            Json.Time(c.OpenedAt), Json.Time(c.DueAt), c.Escalations,
            c.Tier.Length == 0 ? null : c.Tier, c.EscalatedTo.Length == 0 ? null : c.EscalatedTo, [.. c.DeclinedBy]);
    }
}
