using LabMesh.ServiceDefaults.Hosting;
using LabMesh.ServiceRequest;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.Services.AddServiceRequestService();

var app = builder.Build();
app.MapServiceRequestService();
app.MapDefaultEndpoints();
app.Run();
