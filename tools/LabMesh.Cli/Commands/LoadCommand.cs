using System.CommandLine;
using System.Globalization;
using LabMesh.Cli.Load;
using LabMesh.Cli.Mesh;
using LabMesh.Cli.Output;
using LabMesh.Contracts.Requisition.V1;
using Spectre.Console;

namespace LabMesh.Cli.Commands;

/// <summary><c>labmesh load</c>: a bounded load generator with per-RPC latency percentiles.</summary>
internal static class LoadCommand
{
    private static readonly TimeSpan DefaultDuration = TimeSpan.FromSeconds(10);

    public static CliCommand Create(CommonOptions common)
    {
        var rpcs = new Option<string[]>("--rpc")
        {
            Description = "An RPC to call (repeatable; equal shares). Default: a mix of GetRequisitionStatus 40%, " +
                "GetRequisition 30%, CreateRequisition 15%, SubmitResults 15%.",
            HelpName = "NAME",
        };
        rpcs.AcceptOnlyFromAmong(LoadRpcs.Names);
        var duration = new Option<TimeSpan?>("--duration")
        {
            Description = $"Stop issuing calls after this long ({Durations.Help}). Default: 10s, or no time bound when --calls is given.",
            HelpName = "DURATION",
            CustomParser = r => Durations.ParsePositive(r),
        };
        var concurrency = new Option<int>("--concurrency", "-c")
        {
            Description = "Calls in flight at most (1 to 1000).",
            HelpName = "N",
            DefaultValueFactory = _ => 8,
        };
        concurrency.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > 1000)
            {
                r.AddError("--concurrency must be 1 to 1000.");
            }
        });
        var rate = new Option<double?>("--rate")
        {
            Description = "Start at most this many calls per second in total. Default: as fast as the concurrency allows.",
            HelpName = "N",
        };
        rate.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<double?>() is { } value && !(value > 0 && double.IsFinite(value)))
            {
                r.AddError("--rate must be a positive number of calls per second.");
            }
        });
        var calls = new Option<long?>("--calls", "-n")
        {
            Description = "Stop after this many calls.",
            HelpName = "N",
        };
        calls.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<long?>() is < 1)
            {
                r.AddError("--calls must be at least 1.");
            }
        });

        var command = new Command("load",
            "A bounded load generator: calls/s, p50/p99/p99.9 latency per RPC, errors by gRPC status. It stops issuing " +
            "calls at --duration or --calls, whichever comes first; calls in flight finish within --timeout. It first places " +
            "a few requisitions of its own to read and submit (normal) results to. Exits 1 when any call failed.")
        {
            rpcs, duration, concurrency, rate, calls,
        };
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            var names = parse.GetValue(rpcs) is { Length: > 0 } chosen ? chosen.Distinct().ToArray() : null;
            var mix = names is null
                ? LoadRpcs.All.Where(r => r.DefaultWeight > 0).Select(r => (r, r.DefaultWeight)).ToList()
                : [.. names.Select(n => (LoadRpcs.All.Single(r => r.Name == n), 1))];
            var callBound = parse.GetValue(calls);
            var plan = new LoadPlan(
                LoadPlan.Interleave(mix),
                parse.GetValue(concurrency),
                parse.GetValue(duration) ?? (callBound is null ? DefaultDuration : null),
                callBound,
                parse.GetValue(rate));
            var json = parse.GetValue(common.Json);
            using var mesh = new MeshClient(common.Settings(parse));

            var runId = Guid.NewGuid().ToString("N")[..12];
            var seeds = await SeedAsync(mesh, plan, runId, cancellationToken);
            var runner = new LoadRunner(plan, new LoadContext(mesh, runId, seeds));
            var outcome = json ? await runner.RunAsync(cancellationToken) : await WithProgressAsync(runner, cancellationToken);
            var report = LoadReport.Of(outcome, plan, mesh.Address, mesh.Identity.Team, seeds.Count);
            if (json)
            {
                Json.WriteLine(report);
            }
            else
            {
                Render(report);
            }

            if (report.Errors > 0)
            {
                await Console.Error.WriteLineAsync($"labmesh: {report.Errors} of {report.Calls} calls to {report.Target} failed: "
                    + string.Join(", ", report.ErrorsByStatus.Select(e => $"{e.Value} {e.Key}")) + ".");
            }

            return report.Errors == 0 ? ExitCodes.Success : ExitCodes.CallFailed;
        });
        return new CliCommand(command,
        [
            "labmesh load",
            "labmesh load --calls 50 --json",
            "labmesh load --rpc GetRequisitionStatus --duration 30s --concurrency 32",
            "labmesh load --rpc SubmitResults --rpc GetRequisition --rate 200 --duration 1m",
        ]);
    }

    /// <summary>The requisitions the run reads and submits results to, placed before the clock starts.</summary>
    private static async Task<List<Requisition>> SeedAsync(MeshClient mesh, LoadPlan plan, string runId, CancellationToken cancellationToken)
    {
        var seeds = new List<Requisition>();
        if (!LoadRpcs.NeedSeeds(plan.Schedule))
        {
            return seeds;
        }

        for (var i = 0; i < Math.Min(plan.Concurrency, 16); i++)
        {
            var order = LoadRpcs.NewOrder(runId, $"seed-{i}");
            var created = await mesh.CallAsync("RequisitionService/CreateRequisition",
                o => mesh.Requisitions.CreateRequisitionAsync(order, o), cancellationToken);
            seeds.Add(created.Requisition);
        }

        return seeds;
    }

    private static async Task<LoadOutcome> WithProgressAsync(LoadRunner runner, CancellationToken cancellationToken) =>
        await AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .StartAsync(async context =>
            {
                var task = context.AddTask("load", maxValue: 1);
                var run = runner.RunAsync(cancellationToken);
                while (!run.IsCompleted)
                {
                    task.Value = runner.Progress;
                    task.Description = $"{runner.Completed} calls, {runner.Failed} errors";
                    await Task.WhenAny(run, Task.Delay(100, CancellationToken.None));
                }

                task.Description = $"{runner.Completed} calls, {runner.Failed} errors";
                task.Value = 1;
                return await run;
            });

    private static void Render(LoadReport report)
    {
        static string Ms(double? value) => value is { } v ? v.ToString("0.00", CultureInfo.InvariantCulture) : "-";
        static string N(double value) => value.ToString("0.#", CultureInfo.InvariantCulture);
        static TableColumn Number(string header) => new TableColumn(header).RightAligned().NoWrap();

        var table = new Table().Border(TableBorder.Rounded)
            .Title($"{report.Calls} calls in {report.DurationMs / 1000:0.00} s ({report.Bound} bound), {N(report.CallsPerSecond)} calls/s, " +
                $"concurrency {report.Concurrency}" + (report.Rate is { } r ? $", rate {N(r)}/s" : "") + "; latency in ms")
            .AddColumn(new TableColumn("rpc").NoWrap()).AddColumn(Number("calls")).AddColumn(Number("errors")).AddColumn(Number("calls/s"))
            .AddColumn(Number("p50")).AddColumn(Number("p99")).AddColumn(Number("p99.9"));
        foreach (var rpc in report.Rpcs)
        {
            table.AddRow(rpc.Rpc, rpc.Calls.ToString(CultureInfo.InvariantCulture),
                rpc.Errors == 0 ? "0" : $"[red]{rpc.Errors}[/]", N(rpc.CallsPerSecond), Ms(rpc.P50Ms), Ms(rpc.P99Ms), Ms(rpc.P999Ms));
        }

        AnsiConsole.Write(table);
        if (report.ErrorsByStatus.Count == 0)
        {
            AnsiConsole.MarkupLine("[green]no errors[/]");
            return;
        }

        var errors = new Table().Border(TableBorder.Rounded).Title("[red]errors by status[/]")
            .AddColumn("status").AddColumn(new TableColumn("calls").RightAligned()).AddColumn("first seen");
        foreach (var (status, count) in report.ErrorsByStatus)
        {
            errors.AddRow(status, count.ToString(CultureInfo.InvariantCulture), Markup.Escape(report.ErrorExamples.GetValueOrDefault(status) ?? ""));
        }

        AnsiConsole.Write(errors);
    }
}
