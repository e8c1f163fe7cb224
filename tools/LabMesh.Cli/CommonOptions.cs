using System.CommandLine;
using LabMesh.Cli.Mesh;

namespace LabMesh.Cli;

/// <summary>The options every command takes: where the mesh is, which team, how to print.</summary>
internal sealed class CommonOptions
{
    public CommonOptions()
    {
        Target.Validators.Add(result =>
        {
            if (!MeshTarget.TryNormalize(result.GetValueOrDefault<string>(), out _, out var error))
            {
                result.AddError(error);
            }
        });
        Team.Validators.Add(result =>
        {
            var team = result.GetValueOrDefault<string>();
            if (string.IsNullOrWhiteSpace(team) || team.Length > 128)
            {
                result.AddError("--team must be 1 to 128 characters.");
            }
        });
    }

    public Option<string> Target { get; } = new("--target")
    {
        Description = "The mesh's address: the all-in-one host or the gateway (http://, https://, dns:///, or HOST:PORT).",
        HelpName = "ADDR",
        DefaultValueFactory = _ => MeshTarget.Default,
        Recursive = true,
    };

    public Option<string> Team { get; } = new("--team")
    {
        Description = "The team (tenant) every call acts for.",
        HelpName = "TEAM",
        DefaultValueFactory = _ => "demo",
        Recursive = true,
    };

    public Option<bool> Json { get; } = new("--json")
    {
        Description = "Machine-readable output: one JSON document, or JSON lines for streams and steps; nothing decorative.",
        Recursive = true,
    };

    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

    public Option<TimeSpan?> Timeout { get; } = new("--timeout")
    {
        Description = "The deadline of each call (" + Durations.Help + "). Default: 15s.",
        HelpName = "DURATION",
        CustomParser = r => Durations.ParsePositive(r),
        Recursive = true,
    };

    public Option<string> Token { get; } = new("--token")
    {
        Description = "The bearer token of every call (default: $LABMESH_TOKEN). Without one, labmesh signs its calls with the " +
            "all-in-one host's development key: $LABMESH_DEV_KEY, else data/dev-signing-key.json in the working directory or one above it, " +
            "or services/LabMesh.AllInOne/data/ in the repository (the host prints where it is). A service token acts for --team. See SECURITY.md.",
        HelpName = "TOKEN",
        Recursive = true,
    };

    public void AddTo(Command root)
    {
        root.Options.Add(Target);
        root.Options.Add(Team);
        root.Options.Add(Json);
        root.Options.Add(Timeout);
        root.Options.Add(Token);
    }

    public MeshSettings Settings(ParseResult result)
    {
        MeshTarget.TryNormalize(result.GetValue(Target), out var address, out _);
        return new MeshSettings(address, result.GetValue(Team)!, result.GetValue(Timeout) ?? DefaultTimeout, result.GetValue(Token));
    }
}
