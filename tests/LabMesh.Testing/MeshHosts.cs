using LabMesh.Notification;
using LabMesh.Requisition;
using LabMesh.ResultsInterpretation;
using LabMesh.ServiceDefaults.Hosting;
using LabMesh.ServiceRequest;

namespace LabMesh.Testing;

/// <summary>
/// Each LabMesh service as its Program.cs starts it, in a <see cref="ServiceHost"/> on a loopback
/// port: the same registration and mapping, the settings of the test. Peers are given as settings
/// (<c>LabMesh:Services:*</c>), as deployed.
/// </summary>
public static class MeshHosts
{
    public static Task<ServiceHost> StartServiceRequestsAsync(IReadOnlyDictionary<string, string?> settings, int port = 0) =>
        ServiceHost.StartAsync(settings,
            builder =>
            {
                builder.AddServiceDefaults();
                builder.Services.AddServiceRequestService();
            },
            app =>
            {
                app.MapServiceRequestService();
                app.MapDefaultEndpoints();
            },
            port);

    public static Task<ServiceHost> StartRequisitionsAsync(IReadOnlyDictionary<string, string?> settings, int port = 0) =>
        ServiceHost.StartAsync(settings,
            builder =>
            {
                builder.AddServiceDefaults();
                builder.Services.AddRequisitionService(builder.Configuration);
            },
            app =>
            {
                app.MapRequisitionService();
                app.MapDefaultEndpoints();
            },
            port);

    public static Task<ServiceHost> StartResultsAsync(IReadOnlyDictionary<string, string?> settings, int port = 0) =>
        ServiceHost.StartAsync(settings,
            builder =>
            {
                builder.AddServiceDefaults();
                builder.Services.AddResultsInterpretationService(builder.Configuration);
            },
            app =>
            {
                app.MapResultsInterpretationService();
                app.MapDefaultEndpoints();
            },
            port);

    public static Task<ServiceHost> StartNotificationAsync(IReadOnlyDictionary<string, string?> settings, int port = 0) =>
        ServiceHost.StartAsync(settings,
            builder =>
            {
                builder.AddServiceDefaults();
                builder.Services.AddNotificationService(builder.Configuration);
            },
            app =>
            {
                app.MapNotificationService();
                app.MapDefaultEndpoints();
            },
            port);

    /// <summary>
    /// The four services in one host, as the all-in-one Program.cs wires them: the peers are this
    /// host's own address, so <paramref name="port"/> must be known (take one from <see cref="FreePort"/>).
    /// </summary>
    public static Task<ServiceHost> StartAllInOneAsync(IReadOnlyDictionary<string, string?> settings, int port)
    {
        var all = new Dictionary<string, string?>(settings)
        {
            ["LabMesh:Services:ServiceRequest"] = $"http://127.0.0.1:{port}",
            ["LabMesh:Services:Requisition"] = $"http://127.0.0.1:{port}",
        };
        return ServiceHost.StartAsync(all,
            builder =>
            {
                builder.AddServiceDefaults();
                builder.Services.AddServiceRequestService();
                builder.Services.AddRequisitionService(builder.Configuration);
                builder.Services.AddResultsInterpretationService(builder.Configuration);
                builder.Services.AddNotificationService(builder.Configuration);
            },
            app =>
            {
                app.MapServiceRequestService();
                app.MapRequisitionService();
                app.MapResultsInterpretationService();
                app.MapNotificationService();
                app.MapDefaultEndpoints();
            },
            port);
    }
}
