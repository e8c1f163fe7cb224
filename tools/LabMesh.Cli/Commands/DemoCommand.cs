using System.CommandLine;
using LabMesh.Cli.Demo;
using LabMesh.Cli.Mesh;

namespace LabMesh.Cli.Commands;

/// <summary><c>labmesh demo</c>: a complete lab order against a running mesh, as a live timeline.</summary>
internal static class DemoCommand
{
    public static CliCommand Create(CommonOptions common)
    {
        var command = new Command("demo",
            "A complete lab order against a running mesh, as a live timeline: a requisition for a BMP and a CBC walked " +
            "through at-home phlebotomy's statuses, a Subscribe stream on it, a critical potassium in a partial report and " +
            "its labtest.result.critical event (with latency), a clinician's acknowledgement, the final report and its " +
            "amendment; after each step the order's status in seed 004's, seed 003's and seed 000's words. With --json, " +
            "one line per step. Exits 1 when a step fails.");
        Cli.SetAction(command, async (parse, cancellationToken) =>
        {
            using var mesh = new MeshClient(common.Settings(parse));
            var ok = parse.GetValue(common.Json)
                ? await RunAsync(mesh, new JsonTimeline(), cancellationToken)
                : await LiveTimeline.RunAsync(timeline => RunAsync(mesh, timeline, cancellationToken));
            return ok ? ExitCodes.Success : ExitCodes.CallFailed;
        });
        return new CliCommand(command,
        [
            "labmesh demo",
            "labmesh demo --target http://127.0.0.1:5000 --team demo",
            "labmesh demo --json | jq -c '{step, ok, elapsed_ms, lifecycle: .statuses.lifecycle_status}'",
        ]);
    }

    private static async Task<bool> RunAsync(MeshClient mesh, ITimeline timeline, CancellationToken cancellationToken)
    {
        await using var scenario = new DemoScenario(mesh, timeline, cancellationToken);
        return await scenario.RunAsync();
    }
}
