using LabMesh.ServiceDefaults.Hosting;
using LabMesh.ServiceDefaults.Telemetry;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;

namespace LabMesh.ServiceDefaults.Tests.Hosting;

/// <summary>
/// Telemetry is on when, and only when, the standard variables name an OTLP endpoint: without one nothing of
/// OpenTelemetry is registered (no exporter, no buffer, no listener, no RPC interceptor); OTEL_SDK_DISABLED wins.
/// </summary>
public sealed class TelemetryRegistrationTests
{
    public static TheoryData<string, string?, string?, bool> Cases() => new()
    {
        { "nothing set", null, null, false },
        { "an endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", null, true },
        { "the traces endpoint alone", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", null, true },
        { "the logs endpoint alone", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", null, true },
        { "an endpoint, but the SDK disabled", "OTEL_EXPORTER_OTLP_ENDPOINT", "true", false },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task OpenTelemetry_IsRegistered_OnlyWhenAnEndpointIsNamed(string what, string? endpointVariable, string? disabled, bool expected)
    {
        var settings = new Dictionary<string, string?> { ["OTEL_SDK_DISABLED"] = disabled };
        if (endpointVariable is not null)
        {
            settings[endpointVariable] = "http://127.0.0.1:4318";
        }

        await using var app = Build("LabMesh.Requisition", settings);

        Assert.True(expected == (app.Services.GetService<TracerProvider>() is not null), what);
        Assert.Equal(expected, app.Services.GetService<MeterProvider>() is not null);
        Assert.Equal(expected, app.Services.GetService<RpcTelemetryInterceptor>() is not null);
    }

    [Theory]
    [InlineData("LabMesh.Requisition", null, "requisition")]
    [InlineData("LabMesh.ResultsInterpretation", null, "resultsinterpretation")]
    [InlineData("LabMesh.AllInOne", null, "all-in-one")]
    [InlineData("LabMesh.Notification", "notification-eu-1", "notification-eu-1")]
    public void ServiceName_FollowsTheApplication_UnlessOtelServiceNameSaysOtherwise(string application, string? configured, string expected)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?> { ["OTEL_SERVICE_NAME"] = configured }).Build();

        Assert.Equal(expected, LabMeshOpenTelemetry.ServiceName(configuration, application));
    }

    private static WebApplication Build(string application, Dictionary<string, string?> settings)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { ApplicationName = application, EnvironmentName = "Production" });
        builder.Configuration.AddInMemoryCollection(settings);
        builder.AddServiceDefaults();
        return builder.Build();
    }
}
