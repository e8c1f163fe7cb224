using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Invocation;
using LabMesh.Cli.Commands;
using LabMesh.Cli.Mesh;

namespace LabMesh.Cli;

/// <summary>The process exit codes of every command.</summary>
internal static class ExitCodes
{
    public const int Success = 0;

    /// <summary>A call to the mesh failed (or, for demo and load, a step or a call did).</summary>
    public const int CallFailed = 1;

    /// <summary>The command line was wrong: unknown command or option, a bad value, a missing argument.</summary>
    public const int Usage = 2;
}

/// <summary>The <c>labmesh</c> command: its commands, their help with examples, and exit codes.</summary>
internal static class Cli
{
    public static async Task<int> RunAsync(string[] args)
    {
        var common = new CommonOptions();
        var root = new RootCommand(
            "Drives a LabMesh mesh from the terminal: a whole lab order as a live timeline (demo), the event " +
            "stream (watch), one requisition in every vocabulary (status), a bounded load generator (load), whether each " +
            "service is serving (health), and development tokens for grpcurl (token).");
        common.AddTo(root);
        CliCommand[] commands =
        [
            DemoCommand.Create(common),
            WatchCommand.Create(common),
            StatusCommand.Create(common),
            LoadCommand.Create(common),
            HealthCommand.Create(common),
            TokenCommand.Create(common),
        ];
        var examples = new Dictionary<Command, string[]>
        {
            [root] =
            [
                "labmesh demo --target http://127.0.0.1:5000",
                "labmesh watch --type labtest.result.critical",
                "labmesh status 0192f0c4-7d1e-7b3a-9c55-2f1e6f1d2a10 --json",
                "labmesh load --duration 30s --concurrency 16",
                "labmesh token --role partner --partner lab-a",
                "labmesh COMMAND --help",
            ],
        };
        foreach (var command in commands)
        {
            root.Subcommands.Add(command.Command);
            examples[command.Command] = command.Examples;
        }

        var help = root.Options.OfType<HelpOption>().Single();
        help.Action = new HelpWithExamplesAction((HelpAction)help.Action!, examples);

        var parse = root.Parse(args);
        if (parse.Action is ParseErrorAction parseError)
        {
            // The errors and a pointer to --help; the whole help would bury the error (and --json output).
            parseError.ShowHelp = false;
            parse.Invoke(new InvocationConfiguration { Output = Console.Error });
            await Console.Error.WriteLineAsync($"Run '{HelpCommandLine(parse)}' for usage and examples.");
            return ExitCodes.Usage;
        }

        return await parse.InvokeAsync();
    }

    /// <summary>
    /// Sets <paramref name="command"/>'s action: a failed call is reported on stderr (method, gRPC status,
    /// address, the server's error details) and exits <see cref="ExitCodes.CallFailed"/>.
    /// </summary>
    public static void SetAction(Command command, Func<ParseResult, CancellationToken, Task<int>> action) =>
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                return await action(parse, cancellationToken);
            }
            catch (CallFailedException e)
            {
                ReportFailure(e);
                return ExitCodes.CallFailed;
            }
        });

    /// <summary>"labmesh: GetRequisition failed with NOT_FOUND at http://...: detail", then the details.</summary>
    public static void ReportFailure(CallFailedException failure)
    {
        Console.Error.WriteLine($"labmesh: {failure.Message}");
        foreach (var line in failure.Details)
        {
            Console.Error.WriteLine($"  {line}");
        }

        if (failure.StatusCode == Grpc.Core.StatusCode.Unauthenticated)
        {
            Console.Error.WriteLine($"  Give a token with --token or ${Credentials.TokenVariable}, or point ${Credentials.DevelopmentKeyVariable} at the " +
                $"all-in-one host's development key ({Credentials.DevelopmentKeyPath} in the directory it runs in). See SECURITY.md.");
        }
    }

    private static string HelpCommandLine(ParseResult parse)
    {
        var names = new List<string>();
        for (var result = parse.CommandResult; result is not null; result = result.Parent as System.CommandLine.Parsing.CommandResult)
        {
            names.Insert(0, result.Command is RootCommand ? "labmesh" : result.Command.Name);
        }

        return string.Join(' ', names) + " --help";
    }

    /// <summary>The standard help, followed by the command's examples.</summary>
    private sealed class HelpWithExamplesAction(HelpAction help, IReadOnlyDictionary<Command, string[]> examples)
        : SynchronousCommandLineAction
    {
        public override bool ClearsParseErrors => true;

        public override int Invoke(ParseResult parseResult)
        {
            var exitCode = help.Invoke(parseResult);
            if (examples.TryGetValue(parseResult.CommandResult.Command, out var lines))
            {
                var output = parseResult.InvocationConfiguration.Output;
                output.WriteLine("Examples:");
                foreach (var line in lines)
                {
                    output.WriteLine("  " + line);
                }

                output.WriteLine();
            }

            return exitCode;
        }
    }
}

/// <summary>A command and the examples its help ends with.</summary>
internal sealed record CliCommand(Command Command, string[] Examples);
