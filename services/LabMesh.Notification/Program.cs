using LabMesh.Notification;
using LabMesh.ServiceDefaults.Hosting;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.Services.AddNotificationService(builder.Configuration);

var app = builder.Build();
app.MapNotificationService();
app.MapDefaultEndpoints();
app.Run();
