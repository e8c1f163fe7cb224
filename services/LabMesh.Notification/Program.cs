using LabMesh.Notification;
using LabMesh.ServiceDefaults.Hosting;

// The slim builder: the replica listens h2c only (TLS ends at the gateway, SECURITY.md), so Kestrel's HTTPS and QUIC
// set-up, IIS integration and the Debug log provider are not loaded (about 2 MB resident per replica;
// bench/README.md, idle memory, session 12). Configuration and console logging are as with CreateBuilder.
var builder = WebApplication.CreateSlimBuilder(HostArgs.WithoutConfigReload(args));
builder.AddServiceDefaults();
builder.Services.AddNotificationService(builder.Configuration);

var app = builder.Build();
app.MapNotificationService();
app.MapDefaultEndpoints();
app.Run();
