using System.CommandLine;
using LabMesh.Cli.Mesh;
using LabMesh.Cli.Output;
using LabMesh.Security.Identity;

namespace LabMesh.Cli.Commands;

/// <summary>
/// <c>labmesh token --role R</c>: a development token for any role, signed with the all-in-one host's
/// development key (found as the other commands find it), for grpcurl and scripts. Refuses without a key:
/// a deployment's tokens come from its identity provider.
/// </summary>
internal static class TokenCommand
{
    public const string DefaultPartner = "lab-demo";
    public static readonly TimeSpan DefaultLifetime = TimeSpan.FromHours(1);
    public static readonly TimeSpan MaximumLifetime = TimeSpan.FromDays(30);
    private static readonly string[] Roles = ["clinician", "admin", "partner", "service"];

    public static CliCommand Create(CommonOptions common)
    {
        var role = new Option<string>("--role")
        {
            Description = "Who the token is: clinician, admin, partner (a lab: --partner) or service (an integration acting for --team).",
            HelpName = "ROLE",
            Required = true,
        };
        role.AcceptOnlyFromAmong(Roles);
        var partner = new Option<string>("--partner")
        {
            Description = $"The partner (lab) id of a partner token. Default: {DefaultPartner}, the demo's lab.",
            HelpName = "ID",
        };
        var subject = new Option<string>("--subject")
        {
            Description = "The token's subject (sub), kept in history and audit. Default: dev-ROLE.",
            HelpName = "SUB",
        };
        var ttl = new Option<TimeSpan?>("--ttl")
        {
            Description = $"How long the token is valid ({Durations.Help}). Default: 1h; at most 30 days.",
            HelpName = "DURATION",
            CustomParser = r =>
            {
                var lifetime = Durations.ParsePositive(r);
                if (lifetime > MaximumLifetime)
                {
                    r.AddError("--ttl must be at most 30 days (720h).");
                }

                return lifetime;
            },
        };
        foreach (var text in new[] { partner, subject })
        {
            text.Validators.Add(result =>
            {
                var value = result.GetValueOrDefault<string>();
                if (string.IsNullOrWhiteSpace(value) || value.Length > 128 || value.Any(char.IsControl))
                {
                    result.AddError($"{result.Option.Name} must be 1 to 128 printable characters.");
                }
            });
        }

        var command = new Command("token",
            "Prints a development token for a role of --team, signed with the all-in-one host's development key (the " +
            "host prints where it is; LABMESH_DEV_KEY, else data/dev-signing-key.json here or above, or " +
            "services/LabMesh.AllInOne/data/ in the repository). The token alone goes to stdout, for " +
            "TOKEN=$(labmesh token --role partner); what it is goes to stderr. Exits 1 without a development key: " +
            "a deployment's tokens come from its identity provider (SECURITY.md).")
        {
            role, partner, subject, ttl,
        };
        command.Validators.Add(result =>
        {
            if (result.GetResult(partner) is not null && result.GetValue(role) != "partner")
            {
                result.AddError("--partner is only for --role partner.");
            }
        });
        command.SetAction(parse =>
        {
            var key = Credentials.FindDevelopmentKey();
            if (key is null)
            {
                Console.Error.WriteLine(
                    $"labmesh token: no development key: set {Credentials.DevelopmentKeyVariable}, or run the all-in-one host, which makes " +
                    $"one in {Credentials.DevelopmentKeyPath} of the directory it runs in and prints where. A deployment's tokens " +
                    "come from its identity provider (SECURITY.md).");
                return ExitCodes.CallFailed;
            }

            var roleName = parse.GetValue(role)!;
            var team = parse.GetValue(common.Team)!;
            var partnerId = roleName == "partner" ? parse.GetValue(partner) ?? DefaultPartner : null;
            var who = parse.GetValue(subject) ?? "dev-" + roleName;
            var lifetime = parse.GetValue(ttl) ?? DefaultLifetime;
            var identity = new TokenIdentity(team, TokenIdentity.ParseRole(roleName)!.Value, who, partnerId);
            var expires = DateTime.UtcNow + lifetime;
            var token = key.Mint(identity, lifetime);
            if (parse.GetValue(common.Json))
            {
                Json.WriteLine(new TokenView(token, roleName, team, partnerId, who, expires));
                return ExitCodes.Success;
            }

            Console.Out.WriteLine(token);
            var of = partnerId is null ? $"of team {team}" : $"for partner {partnerId} of team {team}";
            Console.Error.WriteLine($"A {roleName} token {of}, subject {who}, valid until {expires:yyyy-MM-ddTHH:mm:ssZ}, signed with the development key {key.Path}.");
            return ExitCodes.Success;
        });
        return new CliCommand(command,
        [
            "labmesh token --role partner --partner lab-a",
            "labmesh token --role service --team demo --ttl 8h",
            "TOKEN=$(labmesh token --role clinician)",
        ]);
    }
}

/// <summary>The token and what it says, for <c>--json</c>.</summary>
internal sealed record TokenView(string Token, string Role, string Team, string? PartnerId, string Subject, DateTime Expires);
