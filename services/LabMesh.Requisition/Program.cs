using LabMesh.Requisition;
using LabMesh.ServiceDefaults.Hosting;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.Services.AddRequisitionService(builder.Configuration);

var app = builder.Build();
app.MapRequisitionService();
app.MapDefaultEndpoints();
app.Run();
