using System.CommandLine;
using Grpc.Core;
using Grpc.Health.V1;
using LabMesh.Cli.Mesh;
using LabMesh.Cli.Output;
using LabMesh.ServiceDefaults.Peers;
using Spectre.Console;

namespace LabMesh.Cli.Commands;

/// <summary>
/// <c>labmesh health</c>: asks <c>grpc.health.v1.Health/Check</c> about each LabMesh service at the target.
/// Through the gateway, the <c>x-labmesh-service</c> header sends each check to a process of that
/// service; against one replica, name only its service with <c>--service</c>.
/// </summary>
internal static class HealthCommand
{
    /// <summary>The short names the gateway's x-labmesh-service header takes, and the gRPC service each names.</summary>
    private static readonly IReadOnlyDictionary<string, string> Services = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["requisition"] = "labmesh.requisition.v1.RequisitionService",
        ["servicerequest"] = "labmesh.servicerequest.v1.ServiceRequestService",
        ["resultsinterpretation"] = "labmesh.results.v1.ResultsInterpretationService",
        ["notification"] = "labmesh.notification.v1.NotificationService",
    };

    public static CliCommand Create(CommonOptions common)
    {
        var service = new Option<string[]>("--service")
        {
            Description = "Check only these services (repeat it): " + string.Join(", ", Services.Keys) + ". Default: all four.",
            HelpName = "NAME",
            AllowMultipleArgumentsPerToken = true,
        };
        service.Validators.Add(result =>
        {
            foreach (var name in result.GetValueOrDefault<string[]>() ?? [])
            {
                if (!Services.ContainsKey(name))
                {
                    result.AddError($"--service '{name}' is not one of {string.Join(", ", Services.Keys)}.");
                }
            }
        });
        var command = new Command("health",
            "Whether each LabMesh service at the target is SERVING (grpc.health.v1). Exits 0 when every service checked " +
            "is SERVING, 1 otherwise. Through the gateway the x-labmesh-service header picks the process that answers.")
        {
            service,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var settings = common.Settings(parse);
            string[] names = parse.GetValue(service) is { Length: > 0 } chosen ? chosen : [.. Services.Keys];
            using var channel = MeshChannels.Create(settings.Address);
            var client = new Health.HealthClient(channel);
            var checks = new List<HealthView>();
            foreach (var name in names)
            {
                checks.Add(await CheckAsync(client, name, settings.Timeout, cancellationToken));
            }

            if (parse.GetValue(common.Json))
            {
                Json.WriteLine(new HealthReport(settings.Address, checks.All(c => c.Serving), checks));
            }
            else
            {
                var table = new Table().AddColumns("service", "status").Title($"health at {Markup.Escape(settings.Address)}");
                foreach (var check in checks)
                {
                    var colour = check.Serving ? "green" : "red";
                    table.AddRow(Markup.Escape(check.Service), $"[{colour}]{Markup.Escape(check.Status)}[/]");
                }

                AnsiConsole.Write(table);
            }

            return checks.All(c => c.Serving) ? ExitCodes.Success : ExitCodes.CallFailed;
        });
        return new CliCommand(command,
        [
            "labmesh health --target http://127.0.0.1:7100",
            "labmesh health --target http://127.0.0.1:7111 --service requisition --json",
        ]);
    }

    private static async Task<HealthView> CheckAsync(Health.HealthClient client, string name, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var headers = new Metadata { { "x-labmesh-service", name } };
        try
        {
            var response = await client.CheckAsync(new HealthCheckRequest { Service = Services[name] }, headers,
                DateTime.UtcNow.Add(timeout), cancellationToken);
            var status = response.Status switch
            {
                HealthCheckResponse.Types.ServingStatus.Serving => "SERVING",
                HealthCheckResponse.Types.ServingStatus.NotServing => "NOT_SERVING",
                HealthCheckResponse.Types.ServingStatus.ServiceUnknown => "SERVICE_UNKNOWN",
                _ => "UNKNOWN",
            };
            return new HealthView(name, Services[name], status, response.Status == HealthCheckResponse.Types.ServingStatus.Serving);
        }
        catch (RpcException e)
        {
            // NOT_FOUND: the process that answered does not serve this service; UNAVAILABLE: nothing answered.
            return new HealthView(name, Services[name], StatusCodes.Name(e.StatusCode), false);
        }
    }

    private sealed record HealthView(string Service, string GrpcService, string Status, bool Serving);

    private sealed record HealthReport(string Target, bool Serving, IReadOnlyList<HealthView> Services);
}
