using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Serialization;
using Google.Protobuf;
using LabMesh.Cli.Mesh;
using LabMesh.Cli.Output;
using LabMesh.Contracts.Notification.V1;
using Spectre.Console;

namespace LabMesh.Cli.Commands;

/// <summary><c>labmesh watch</c>: follows the team's events as they are published, resuming by itself.</summary>
internal static class WatchCommand
{
    private static readonly JsonFormatter ProtoJson = new(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true));

    public static CliCommand Create(CommonOptions common)
    {
        var types = new Option<string[]>("--type")
        {
            Description = "Only events of this type (repeatable), e.g. labtest.result.critical, order.status_changed.",
            HelpName = "TYPE",
            AllowMultipleArgumentsPerToken = false,
        };
        var requisition = new Option<string>("--requisition") { Description = "Only this requisition's events.", HelpName = "ID" };
        var resumeAfter = new Option<string>("--resume-after")
        {
            Description = "Start right after this cursor (or event id) instead of now: events since then are replayed first.",
            HelpName = "CURSOR",
        };
        var heartbeat = new Option<TimeSpan?>("--heartbeat")
        {
            Description = "Heartbeat period asked of the server (1s to 5m; default: the server's).",
            HelpName = "DURATION",
            CustomParser = r => Durations.ParsePositive(r),
        };
        heartbeat.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<TimeSpan?>() is { } period && (period < TimeSpan.FromSeconds(1) || period > TimeSpan.FromMinutes(5)))
            {
                r.AddError("--heartbeat must be between 1s and 5m.");
            }
        });
        var verbose = new Option<bool>("--verbose", "-v") { Description = "Also print heartbeats." };
        var maxEvents = new Option<int?>("--max-events")
        {
            Description = "Stop after this many events (default: follow until interrupted).",
            HelpName = "N",
        };
        maxEvents.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int?>() is < 1)
            {
                r.AddError("--max-events must be at least 1.");
            }
        });
        var maxRetries = new Option<int>("--max-retries")
        {
            Description = "Resubscribe at most this many times in a row without receiving anything, then fail.",
            HelpName = "N",
            DefaultValueFactory = _ => 30,
        };
        maxRetries.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 0)
            {
                r.AddError("--max-retries must not be negative.");
            }
        });

        var command = new Command("watch",
            "Follows the team's events (NotificationService.Subscribe): type, ids, time and cursor of each, heartbeats with " +
            "--verbose. Cut off (RESOURCE_EXHAUSTED) or disconnected, it resubscribes after the last cursor it got and says " +
            "so on stderr. Ctrl+C stops it.")
        {
            types, requisition, resumeAfter, heartbeat, verbose, maxEvents, maxRetries,
        };
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            var json = parse.GetValue(common.Json);
            var request = new SubscribeRequest
            {
                Filter = new EventFilter { Types_ = { parse.GetValue(types) ?? [] }, RequisitionId = parse.GetValue(requisition) ?? "" },
                ResumeAfter = parse.GetValue(resumeAfter) ?? "",
            };
            if (parse.GetValue(heartbeat) is { } period)
            {
                request.HeartbeatInterval = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(period);
            }

            using var mesh = new MeshClient(common.Settings(parse));
            var follower = new EventFollower(mesh, request, parse.GetValue(maxRetries),
                notice => Console.Error.WriteLine($"labmesh watch: {notice}"));
            var limit = parse.GetValue(maxEvents);
            var printHeartbeats = parse.GetValue(verbose);
            var seen = 0;
            if (!json)
            {
                await Console.Error.WriteLineAsync($"labmesh watch: following team {mesh.Identity.Team}'s events at {mesh.Address} (Ctrl+C to stop).");
            }

            try
            {
                await foreach (var item in follower.FollowAsync(cancellationToken))
                {
                    if (item.ItemCase == SubscribeResponse.ItemOneofCase.Event)
                    {
                        Print(item, json);
                        if (++seen == limit)
                        {
                            break;
                        }
                    }
                    else if (printHeartbeats)
                    {
                        Print(item, json);
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // Ctrl+C: the normal way to stop following.
            }

            return ExitCodes.Success;
        });
        return new CliCommand(command,
        [
            "labmesh watch",
            "labmesh watch --type labtest.result.critical --type critical_result.acknowledged",
            "labmesh watch --requisition 0192f0c4-7d1e-7b3a-9c55-2f1e6f1d2a10 --verbose --heartbeat 5s",
            "labmesh watch --resume-after 1732206245123-0 --json | jq .event.type",
        ]);
    }

    private static void Print(SubscribeResponse item, bool json)
    {
        if (json)
        {
            Json.WriteLine(item.ItemCase == SubscribeResponse.ItemOneofCase.Event
                ? new StreamLine("event", item.Cursor, JsonDocument.Parse(ProtoJson.Format(item.Event)).RootElement, null)
                : new StreamLine("heartbeat", item.Cursor, null, Json.Time(item.Heartbeat.SentAt)));
            return;
        }

        if (item.ItemCase == SubscribeResponse.ItemOneofCase.Heartbeat)
        {
            AnsiConsole.MarkupLine($"[grey]{item.Heartbeat.SentAt?.ToDateTimeOffset():yyyy-MM-dd HH:mm:ss.fff}  heartbeat  cursor {Markup.Escape(item.Cursor)}[/]");
            return;
        }

        var e = item.Event;
        var color = e.Type switch
        {
            "labtest.result.critical" or "critical_result.escalated" => "red bold",
            "critical_result.acknowledged" => "green",
            _ => "blue",
        };
        AnsiConsole.MarkupLine(
            $"{e.CreatedAt?.ToDateTimeOffset():yyyy-MM-dd HH:mm:ss.fff}  [{color}]{Markup.Escape(e.Type)}[/]  {Markup.Escape(EventText.Summary(e))}"
            + $"  [grey]requisition {Markup.Escape(Or(e.RequisitionId))}  service request {Markup.Escape(Or(e.ServiceRequestId))}"
            + $"  id {Markup.Escape(e.Id)}  cursor {Markup.Escape(item.Cursor)}[/]");
    }

    private static string Or(string value) => value.Length == 0 ? "-" : value;

    /// <summary>One line of <c>--json</c> output: an event (the envelope as protobuf JSON) or a heartbeat.</summary>
    private sealed record StreamLine(
        string Kind,
        string Cursor,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] JsonElement? Event,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] DateTimeOffset? SentAt);
}
