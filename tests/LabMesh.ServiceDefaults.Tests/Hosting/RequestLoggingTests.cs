using LabMesh.ServiceDefaults.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LabMesh.ServiceDefaults.Tests.Hosting;

/// <summary>ASP.NET Core's per-request Information lines are off by default and can be turned back on by configuration.</summary>
public sealed class RequestLoggingTests
{
    [Fact]
    public async Task PerRequestLines_AreOffByDefault_OtherInformationStaysOn()
    {
        await using var app = Build([]);
        var loggers = app.Services.GetRequiredService<ILoggerFactory>();

        Assert.False(loggers.CreateLogger("Microsoft.AspNetCore.Hosting.Diagnostics").IsEnabled(LogLevel.Information));
        Assert.False(loggers.CreateLogger("Microsoft.AspNetCore.Routing.EndpointMiddleware").IsEnabled(LogLevel.Information));
        Assert.True(loggers.CreateLogger("Microsoft.AspNetCore.Hosting.Diagnostics").IsEnabled(LogLevel.Warning));
        Assert.True(loggers.CreateLogger("Microsoft.Hosting.Lifetime").IsEnabled(LogLevel.Information));
        // grpc-dotnet's line per failed call is off; its errors are not.
        Assert.False(loggers.CreateLogger("Grpc.AspNetCore.Server.ServerCallHandler").IsEnabled(LogLevel.Information));
        Assert.True(loggers.CreateLogger("Grpc.AspNetCore.Server.ServerCallHandler").IsEnabled(LogLevel.Warning));
        Assert.True(loggers.CreateLogger("LabMesh.Requisition.RequisitionApi").IsEnabled(LogLevel.Information));
    }

    [Fact]
    public async Task PerRequestLines_CanBeTurnedOnByConfiguration()
    {
        await using var app = Build(["--Logging:LogLevel:Microsoft.AspNetCore=Information"]);
        var loggers = app.Services.GetRequiredService<ILoggerFactory>();

        Assert.True(loggers.CreateLogger("Microsoft.AspNetCore.Hosting.Diagnostics").IsEnabled(LogLevel.Information));
    }

    private static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        builder.AddServiceDefaults();
        return builder.Build();
    }
}
