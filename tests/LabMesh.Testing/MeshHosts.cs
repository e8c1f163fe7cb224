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
}
