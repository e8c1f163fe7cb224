using LabMesh.ResultsInterpretation;
using LabMesh.ServiceDefaults.Hosting;

var builder = WebApplication.CreateBuilder(args);
builder.AddServiceDefaults();
builder.Services.AddResultsInterpretationService(builder.Configuration);

var app = builder.Build();
app.MapResultsInterpretationService();
app.MapDefaultEndpoints();
app.Run();
