using LabMesh.Requisition;
using LabMesh.ResultsInterpretation;
using LabMesh.ServiceDefaults.Hosting;
using LabMesh.Security.Identity;
using LabMesh.ServiceRequest;
using LabMesh.Testing;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;

namespace LabMesh.Bench.Results;

/// <summary>
/// The Requisition, ServiceRequest and ResultsInterpretation services in this process, set up as the
/// all-in-one host sets them up (services/LabMesh.AllInOne/Program.cs): one h2c port on 127.0.0.1,
/// the peers (<c>LabMesh:Services:*</c>) pointed at that same port, SQLite files under a fresh
/// temporary data directory, the in-process event bus and status cache, logging at Warning.
/// </summary>
internal sealed class MeshHost : IAsyncDisposable
{
    private readonly WebApplication _app;

    private MeshHost(WebApplication app, string address, string dataDirectory)
    {
        _app = app;
        Address = address;
        DataDirectory = dataDirectory;
    }

    public string Address { get; }

    /// <summary>The signing key of this run (SECURITY.md): the hosted services trust it.</summary>
    public static SigningKey Key { get; } = SigningKey.Generate("bench");

    /// <summary>A token for <paramref name="team"/> signed with <see cref="Key"/>, valid for a day.</summary>
    public static string Token(string team, CallerRole role, string subject) =>
        Key.Mint(new TokenIdentity(team, role, subject, null), "labmesh", "labmesh", TimeSpan.FromDays(1));

    public string DataDirectory { get; }

    public static async Task<MeshHost> StartAsync()
    {
        var dataDirectory = Path.Combine(Path.GetTempPath(), $"labmesh-bench-results-{Environment.ProcessId}-{Guid.NewGuid():N}");
        var address = $"http://127.0.0.1:{FreePort.Next()}";

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], ContentRootPath = AppContext.BaseDirectory });
        builder.WebHost.UseUrls(address);
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["LabMesh:Services:ServiceRequest"] = address,
            ["LabMesh:Services:Requisition"] = address,
            ["LabMesh:Storage:DataDirectory"] = dataDirectory,
            // Whatever the environment says: SQLite and the in-process bus and cache, as the all-in-one default.
            ["ConnectionStrings:Postgres"] = "",
            ["ConnectionStrings:Redis"] = "",
            ["LabMesh:Redis:Configuration"] = "",
            // A key made for this run: the services trust it and sign their peer calls with it; the bench's calls are signed with it too.
            // One caller at full speed: the per-caller rate limit is not what the benchmark measures.
            ["LabMesh:Limits:PermitsPerSecond"] = "0",
            ["LabMesh:Security:SigningKeyId"] = Key.KeyId,
            ["LabMesh:Security:SigningKeyPem"] = Key.ExportPrivateKeyPem(),
        });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.AddServiceDefaults();
        builder.Services.AddServiceRequestService();
        builder.Services.AddRequisitionService(builder.Configuration);
        builder.Services.AddResultsInterpretationService(builder.Configuration);

        var app = builder.Build();
        app.MapServiceRequestService();
        app.MapRequisitionService();
        app.MapResultsInterpretationService();
        app.MapDefaultEndpoints();
        await app.StartAsync().WaitAsync(TimeSpan.FromSeconds(60));
        return new MeshHost(app, address, dataDirectory);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
        await _app.DisposeAsync();
        SqliteConnection.ClearAllPools();
        try
        {
            Directory.Delete(DataDirectory, recursive: true);
        }
        catch (IOException)
        {
            // Left in the temp directory: harmless.
        }
    }
}
