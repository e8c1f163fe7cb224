using LabMesh.AllInOne;
using LabMesh.Notification;
using LabMesh.Requisition;
using LabMesh.ResultsInterpretation;
using LabMesh.ServiceDefaults.Hosting;
using LabMesh.ServiceRequest;

var builder = WebApplication.CreateBuilder(HostArgs.WithoutConfigReload(args));
var url = AllInOne.ListenUrl(builder.Configuration);
if (!AllInOne.EndpointsConfigured(builder.Configuration))
{
    builder.WebHost.UseUrls(url);
    // REST for HTTP/1.1 clients on the next port (RestEndpoints), when the host listens where it does by default.
    if (url == AllInOne.DefaultUrl)
    {
        builder.Configuration[RestEndpoints.UrlKey] ??= AllInOne.DefaultRestUrl;
    }
}
// The services call each other over gRPC as they do when deployed apart: here, on this very port.
builder.Configuration["LabMesh:Services:ServiceRequest"] ??= AllInOne.LoopbackAddress(url);
builder.Configuration["LabMesh:Services:Requisition"] ??= AllInOne.LoopbackAddress(url);
// No key configured and loopback only: a development signing key (SECURITY.md); anywhere else it refuses to start.
builder.Configuration["LabMesh:Security:DevelopmentKeys"] ??= "true";
builder.AddServiceDefaults();
builder.Services.AddServiceRequestService();
builder.Services.AddRequisitionService(builder.Configuration);
builder.Services.AddResultsInterpretationService(builder.Configuration);
builder.Services.AddNotificationService(builder.Configuration);

var app = builder.Build();
app.MapServiceRequestService();
app.MapRequisitionService();
app.MapResultsInterpretationService();
app.MapNotificationService();
app.MapDefaultEndpoints();
app.Lifetime.ApplicationStarted.Register(() => AllInOne.PrintWelcome(url, builder.Configuration[RestEndpoints.UrlKey], app.Services));
app.Run();
