using LabMesh.ServiceDefaults.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.EventSource;

namespace LabMesh.ServiceDefaults.Tests.Hosting;

/// <summary>
/// The services start on the slim builder, which registers no EventSource log provider; the defaults add it back, so
/// `dotnet-trace` and `dotnet-monitor` can collect a running replica's logs. Once, whichever builder the host used.
/// </summary>
public sealed class LogProviderTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ServiceDefaults_RegisterTheEventSourceLogProvider_Once(bool slim)
    {
        var options = new WebApplicationOptions { ApplicationName = "LabMesh.Requisition", EnvironmentName = "Production" };
        var builder = slim ? WebApplication.CreateSlimBuilder(options) : WebApplication.CreateBuilder(options);
        builder.AddServiceDefaults();
        await using var app = builder.Build();

        Assert.Single(app.Services.GetServices<ILoggerProvider>().OfType<EventSourceLoggerProvider>());
    }
}
