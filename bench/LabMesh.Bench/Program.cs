using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Google.Protobuf;
using Grpc.Core;
using LabMesh.Bench;
using LabMesh.Bench.Load;
using LabMesh.Bench.Servers;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Security.Identity;
using LabMesh.ServiceDefaults.Peers;

if (args.Length == 2 && args[0] == BareServer.Mode)
{
    return await BareServer.ServeAsync(args[1]);
}
if (args.Contains("--help") || args.Contains("-h"))
{
    Console.WriteLine(BenchOptions.Usage);
    return 0;
}

BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (Exception ex) when (ex is ArgumentException or FormatException)
{
    Console.Error.WriteLine(ex.Message);
    Console.Error.WriteLine(BenchOptions.Usage);
    return 2;
}

// --pin: the client runs on CPU 1 and the servers on CPU 0. Affinity set from inside would only
// cover threads started later, so start this program again under taskset.
const string PinnedVariable = "LABMESH_BENCH_PINNED";
if (options.Pin && Environment.GetEnvironmentVariable(PinnedVariable) != "1")
{
    var (fileName, prefix) = ServerProcess.SelfCommand();
    var start = new ProcessStartInfo("taskset") { UseShellExecute = false };
    foreach (var arg in new[] { "-c", "1", fileName }.Concat(prefix).Concat(args))
    {
        start.ArgumentList.Add(arg);
    }
    start.Environment[PinnedVariable] = "1";
    using var pinned = Process.Start(start) ?? throw new InvalidOperationException("Could not start taskset.");
    await pinned.WaitForExitAsync();
    return pinned.ExitCode;
}

var loadAverage = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "n/a";
Console.WriteLine($"LabMesh.Bench  {DateTimeOffset.Now.ToString("yyyy-MM-dd HH:mm zzz", CultureInfo.InvariantCulture)}");
Console.WriteLine($"  machine: {Environment.ProcessorCount} cores visible, {RuntimeInformation.OSDescription}, .NET {Environment.Version}, load average {loadAverage}");
Console.WriteLine($"  args: {(options.CommandLine.Length == 0 ? "(defaults)" : options.CommandLine)}");
Console.WriteLine(string.Format(
    CultureInfo.InvariantCulture,
    "  load: {0} calls in flight over {1} connection(s); {2}s warm-up + {3}s measured per side, {4} round(s)",
    options.Concurrency, options.Connections, options.WarmupSeconds, options.DurationSeconds, options.Rounds));
Console.WriteLine($"  servers: child processes, server GC, Kestrel h2c on 127.0.0.1{(options.Pin ? "; servers on CPU 0, client/h2load on CPU 1" : "; client, h2load and servers share all cores")}");
Console.WriteLine("  columns: calls/s; call latency p50/p99; server CPU per call (/proc); the bench client's CPU and bytes allocated per call");

// A key made for this run that the host trusts (as tests/LabMesh.Testing's TestCaller does), and a limit
// the load never reaches: the token bucket is consulted on every call but never says RESOURCE_EXHAUSTED.
using var key = SigningKey.Generate("labmesh-bench");
var hostSettings = new Dictionary<string, string>
{
    ["LabMesh__Security__SigningKeyId"] = key.KeyId,
    ["LabMesh__Security__SigningKeyPem"] = key.ExportPrivateKeyPem(),
    ["LabMesh__Security__DevelopmentKeys"] = "false",
    ["LabMesh__Limits__PermitsPerSecond"] = "1000000000",
    ["LabMesh__Limits__Burst"] = "2000000000",
};
const string Team = "bench";
var caller = new TokenIdentity(Team, CallerRole.Clinician, "bench-status", null);
var token = key.Mint(caller, "labmesh", "labmesh", TimeSpan.FromHours(1));
// --oidc: the token comes from an OpenID Connect issuer the host reads keys from (discovery + JWKS), as in production.
await using var oidc = options.Oidc ? await OidcIssuer.StartAsync(SigningKey.Generate("bench-idp")) : null;
if (oidc is not null)
{
    hostSettings["LabMesh__Security__Authority"] = oidc.Issuer;
    hostSettings["LabMesh__Security__RequireHttpsMetadata"] = "false";
    token = oidc.Key.Mint(caller, oidc.Issuer, "labmesh", TimeSpan.FromHours(1));
}

var headers = new Metadata { { "authorization", "Bearer " + token } };

await using var labMesh = await ServerProcess.StartAllInOneAsync(options, hostSettings);
var status = await PlaceRequisitionAsync(labMesh.Address, headers, token);
var responseFile = Path.Combine(Path.GetTempPath(), $"labmesh-bench-status-{Environment.ProcessId}.bin");
await using (var client = new StatusClientLoad(labMesh.Address, 1))
{
    var answer = await client.OnceAsync(status, TimeSpan.FromSeconds(10));
    await File.WriteAllBytesAsync(responseFile, answer.ToByteArray());
    status = status with { ResponseSize = answer.CalculateSize() };
}

// --telemetry (issue 21): the same host exporting over OTLP, with the standard variables only, against this one
// exporting nothing; no bare server.
if (options.TelemetryEndpoint is not null)
{
    File.Delete(responseFile);
    var exportingSettings = new Dictionary<string, string>(hostSettings)
    {
        ["OTEL_EXPORTER_OTLP_ENDPOINT"] = options.TelemetryEndpoint,
        ["OTEL_EXPORTER_OTLP_PROTOCOL"] = options.TelemetryProtocol,
        ["OTEL_SERVICE_NAME"] = "all-in-one-bench",
    };
    await using var exporting = await ServerProcess.StartAllInOneAsync(options, exportingSettings, "all-in-one host, exporting");
    var exportingStatus = await PlaceRequisitionAsync(exporting.Address, headers, token);
    await using (var client = new StatusClientLoad(exporting.Address, 1))
    {
        var answer = await client.OnceAsync(exportingStatus, TimeSpan.FromSeconds(10));
        exportingStatus = exportingStatus with { ResponseSize = answer.CalculateSize() };
    }

    Report.Sides = ("exporting", "off", false);
    Console.WriteLine($"  telemetry: the host exporting to {options.TelemetryEndpoint} ({options.TelemetryProtocol}) (pid {exporting.Pid}) against the host exporting nothing (pid {labMesh.Pid})");
    Console.WriteLine($"  call: GetRequisitionStatus of each host's own placed requisition, team {Team}, a clinician's token");
    return await MeasureAsync(new Runner(options, exportingStatus, exporting, labMesh, status), [exporting, labMesh]);
}

ServerProcess bare;
try
{
    bare = await ServerProcess.StartBareAsync(options, responseFile);
}
finally
{
    File.Delete(responseFile);
}

await using (bare)
{
    Console.WriteLine($"  all-in-one host {labMesh.Address} (pid {labMesh.Pid}), bare grpc-dotnet server {bare.Address} (pid {bare.Pid})");
    Console.WriteLine($"  call: GetRequisitionStatus of placed requisition {status.Request.Id}, team {Team}, a clinician's token " +
        $"{(oidc is null ? "signed with the host's configured key" : "from the OIDC issuer " + oidc.Issuer)}; response {status.ResponseSize} B");
    return await MeasureAsync(new Runner(options, status, labMesh, bare), [labMesh, bare]);
}

// Checks, primes, runs every scenario and prints the summary.
async Task<int> MeasureAsync(Runner runner, ServerProcess[] servers)
{
    Console.WriteLine();
    Console.WriteLine("Checking both servers once:");
    if (!await runner.CheckAsync())
    {
        return 1;
    }

    Console.WriteLine();
    Console.WriteLine($"Priming every path for {options.PrimeSeconds.ToString(CultureInfo.InvariantCulture)}s...");
    await runner.PrimeAsync();

    Console.WriteLine();
    Report.PrintHeader();
    foreach (var scenario in options.Scenarios)
    {
        await runner.RunScenarioAsync(scenario);
    }

    var markdown = Report.Markdown(runner.Results);
    Console.WriteLine();
    Console.WriteLine("Resident memory after the run: " + string.Join(", ", servers.Select(s => string.Format(CultureInfo.InvariantCulture, "{0} {1:F1} MB", s.Name, s.ResidentMb()))));
    Console.WriteLine($"Load average at the end: {Runner.LoadAverage()} (the bench alone brings 2 cores to about 4; the figures are trustworthy when the load was low before it started)");
    Console.WriteLine("Summary (Markdown):");
    Console.WriteLine();
    Console.WriteLine(markdown);
    if (options.MarkdownPath is not null)
    {
        await File.WriteAllTextAsync(options.MarkdownPath, markdown);
    }

    return 0;
}

// One placed requisition, created through LabMesh's channel as a clinician of the team, not measured.
static async Task<StatusRequest> PlaceRequisitionAsync(string address, Metadata headers, string token)
{
    using var channel = MeshChannels.Create(address);
    var client = new RequisitionService.RequisitionServiceClient(channel);
    var request = new CreateRequisitionRequest
    {
        RequestId = "bench-status-1",
        // Synthetic, and never printed.
        Patient = new Patient { Id = "bench-patient-1", GivenName = "Bench", FamilyName = "Patient", BirthDate = "1970-01-01", Sex = "unknown" },
        OrderingProvider = new Provider { Id = "bench-provider", Name = "Bench Provider" },
        Lab = "LabCorp",
        Modality = TestModality.Testkit,
        Place = true,
    };
    request.Tests.Add(new OrderedTest { Code = "BMP", PartnerId = "bench-partner" });
    var created = await client.CreateRequisitionAsync(request, headers, DateTime.UtcNow.AddSeconds(30));
    return new StatusRequest(new GetRequisitionStatusRequest { Id = created.Requisition.Id }, headers, 0, token);
}
