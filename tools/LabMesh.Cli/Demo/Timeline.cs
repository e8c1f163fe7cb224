using System.Globalization;
using LabMesh.Cli.Mesh;
using LabMesh.Cli.Output;
using Spectre.Console;

namespace LabMesh.Cli.Demo;

/// <summary>Why a step failed: a call (method, gRPC status, address) or something the demo waited for in vain.</summary>
internal sealed record StepError(string Message, string? Method, string? Code, string? Address, IReadOnlyList<string> Details)
{
    public static StepError Of(CallFailedException e) =>
        new(e.Message, e.Method, StatusCodes.Name(e.StatusCode), e.Address, e.Details);
}

/// <summary>
/// One step of the demo: when it started (since the demo began), how long its calls took, the order's
/// statuses afterwards, what happened (<paramref name="Note"/> for people, <paramref name="Detail"/> for
/// scripts), or why it failed.
/// </summary>
internal sealed record StepResult(
    string Step,
    TimeSpan At,
    TimeSpan Elapsed,
    OrderSnapshot? Statuses,
    string Note,
    IReadOnlyDictionary<string, object?> Detail,
    StepError? Error);

/// <summary>Where the demo's steps and the events it sees go.</summary>
internal interface ITimeline
{
    void Starting(string step);

    void Step(StepResult step);

    void Event(Arrival arrival, TimeSpan at);
}

/// <summary>
/// <c>--json</c>: one line per step on stdout (a failed step's error on stderr too); events appear in the
/// details of the steps that wait for them, not as lines of their own.
/// </summary>
internal sealed class JsonTimeline : ITimeline
{
    public void Starting(string step)
    {
        // Nothing to show until the step is done.
    }

    public void Step(StepResult step)
    {
        Json.WriteLine(new StepLine(step.Step, step.Error is null, Json.Ms(step.Elapsed), Json.Ms(step.At), step.Statuses, step.Detail, step.Error));
        if (step.Error is { } error)
        {
            Console.Error.WriteLine($"labmesh demo: step {step.Step} failed: {error.Message}");
        }
    }

    public void Event(Arrival arrival, TimeSpan at)
    {
        // Not a line of its own: the critical result step carries its event.
    }

    private sealed record StepLine(
        string Step, bool Ok, double ElapsedMs, double AtMs, OrderSnapshot? Statuses, IReadOnlyDictionary<string, object?> Detail, StepError? Error);
}

/// <summary>
/// The terminal timeline: a spinner names the step under way; each finished step prints its line (time
/// since the start, outcome, duration, what happened) and the order's status in each vocabulary, and
/// each event prints a line as it comes off the stream.
/// </summary>
internal sealed class LiveTimeline(StatusContext status) : ITimeline
{
    private const string Indent = "           ";

    public static async Task<bool> RunAsync(Func<ITimeline, Task<bool>> demo) =>
        await AnsiConsole.Status().Spinner(Spinner.Known.Dots).StartAsync("starting", context => demo(new LiveTimeline(context)));

    public void Starting(string step) => status.Status(Markup.Escape(step.Replace('_', ' ')));

    public void Step(StepResult step)
    {
        var elapsed = $"[grey]({Json.Ms(step.Elapsed).ToString("0.0", CultureInfo.InvariantCulture)} ms)[/]";
        if (step.Error is { } error)
        {
            AnsiConsole.MarkupLine($"{Seconds(step.At)} [red]✘ {Markup.Escape(step.Step)}[/] {elapsed}");
            AnsiConsole.MarkupLine($"{Indent}[red]{Markup.Escape(error.Message)}[/]");
            foreach (var detail in error.Details)
            {
                AnsiConsole.MarkupLine($"{Indent}[red]  {Markup.Escape(detail)}[/]");
            }

            return;
        }

        AnsiConsole.MarkupLine($"{Seconds(step.At)} [green]✔[/] [bold]{Markup.Escape(step.Step)}[/] {elapsed} {Markup.Escape(step.Note)}");
        if (step.Statuses is { } statuses)
        {
            var order = statuses.OrderSubStatus is { } sub ? Markup.Escape(sub) : "[yellow]draft[/] (no order status yet)";
            var tests = string.Join("  ", statuses.ServiceRequests.Select(s =>
                $"{Markup.Escape(s.Code)} {Markup.Escape(s.TaskBusinessStatus ?? "-")}" + (s.Status is "active" or null ? "" : $" ({Markup.Escape(s.Status)})")));
            AnsiConsole.MarkupLine($"{Indent}[grey]seed 004 order[/]      {order}");
            AnsiConsole.MarkupLine($"{Indent}[grey]seed 003 lifecycle[/]  {Markup.Escape(statuses.LifecycleStatus ?? "-")}");
            AnsiConsole.MarkupLine($"{Indent}[grey]seed 000 tests[/]      {tests}");
        }
    }

    public void Event(Arrival arrival, TimeSpan at)
    {
        var e = arrival.Event;
        var color = e.Type switch
        {
            "labtest.result.critical" or "critical_result.escalated" => "red bold",
            "critical_result.acknowledged" => "green",
            _ => "blue",
        };
        AnsiConsole.MarkupLine($"{Seconds(at)} [{color}]⇠ {Markup.Escape(e.Type)}[/] [grey]{Markup.Escape(EventText.Summary(e))}[/]");
    }

    private static string Seconds(TimeSpan at) => $"[grey]+{at.TotalSeconds.ToString("0.000", CultureInfo.InvariantCulture),7}s[/]";
}
