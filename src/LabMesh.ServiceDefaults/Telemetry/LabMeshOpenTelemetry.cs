using System.Diagnostics;
using System.Runtime.CompilerServices;
using LabMesh.Core.Diagnostics;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using LabMesh.Messaging.Redis;
using Npgsql;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace LabMesh.ServiceDefaults.Telemetry;

/// <summary>
/// Traces, metrics and logs over OTLP with OpenTelemetry.Extensions.Hosting, switched on by the standard
/// variables alone (<c>OTEL_EXPORTER_OTLP_ENDPOINT</c>, or a signal's own <c>OTEL_EXPORTER_OTLP_TRACES_ENDPOINT</c>...;
/// <c>OTEL_EXPORTER_OTLP_PROTOCOL</c>, <c>OTEL_SERVICE_NAME</c>, <c>OTEL_RESOURCE_ATTRIBUTES</c> as the SDK reads
/// them). Without an endpoint nothing is registered: no exporter, no buffer, no listener.
/// </summary>
/// <remarks>
/// What is traced: every gRPC call served (ASP.NET Core) and made (Grpc.Net.Client), webhook POSTs (HttpClient),
/// SQL (Npgsql), and LabMesh's own <see cref="LabMeshTelemetry.Source"/>: the outbox relay's publish, Notification's ingest, a
/// <c>Subscribe</c> delivery, a webhook delivery and an escalation, each the child of the span that caused the
/// event (its envelope's <c>traceparent</c>), so one lab order is one trace. No attribute holds an id of a
/// patient, a name, a birth date or a result value: the tags are event types, methods, codes and outcomes.
/// </remarks>
public static class LabMeshOpenTelemetry
{
    /// <summary>The <c>service.namespace</c> of every LabMesh process.</summary>
    public const string ServiceNamespace = "labmesh";

    /// <summary>The variables any one of which turns export on.</summary>
    public static readonly string[] EndpointVariables =
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    ];

    /// <summary>Whether the configuration (the environment, as the SDK reads it) names an OTLP endpoint and does not disable the SDK.</summary>
    public static bool IsEnabled(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return !string.Equals(configuration["OTEL_SDK_DISABLED"], "true", StringComparison.OrdinalIgnoreCase)
            && EndpointVariables.Any(name => !string.IsNullOrWhiteSpace(configuration[name]));
    }

    /// <summary>
    /// The <c>service.name</c> of a process: <c>OTEL_SERVICE_NAME</c> when set, else from its application name
    /// (<c>LabMesh.Requisition</c> is <c>requisition</c>, <c>LabMesh.AllInOne</c> <c>all-in-one</c>).
    /// </summary>
    public static string ServiceName(IConfiguration configuration, string applicationName)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        if (configuration["OTEL_SERVICE_NAME"] is { Length: > 0 } configured)
        {
            return configured;
        }

        var name = applicationName.StartsWith("LabMesh.", StringComparison.Ordinal) ? applicationName["LabMesh.".Length..] : applicationName;
        return name == "AllInOne" ? "all-in-one" : name.ToLowerInvariant();
    }

    /// <summary>
    /// Registers OpenTelemetry (traces, metrics, logs, OTLP) when <see cref="IsEnabled"/>; otherwise nothing.
    /// Called by <c>AddServiceDefaults</c>.
    /// </summary>
    public static WebApplicationBuilder AddLabMeshTelemetry(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        if (IsEnabled(builder.Configuration))
        {
            AddOtlpExport(builder);
        }

        return builder;
    }

    /// <summary>
    /// The SDK's registration, in a method of its own that is never inlined: the JIT loads the assemblies of every type a
    /// method names when it compiles it, so with this in <see cref="AddLabMeshTelemetry"/> a process exporting nothing
    /// loaded five OpenTelemetry assemblies all the same (bench/README.md, idle memory).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void AddOtlpExport(WebApplicationBuilder builder)
    {
        var serviceName = ServiceName(builder.Configuration, builder.Environment.ApplicationName);
        builder.Services.AddSingleton<RpcTelemetryInterceptor>();
        builder.Services.AddOpenTelemetry()
            // An instance id set by the operator (OTEL_RESOURCE_ATTRIBUTES=service.instance.id=...: deploy/local names
            // its replicas) is kept; otherwise each process makes one.
            .ConfigureResource(resource => resource.AddService(
                serviceName, ServiceNamespace, LabMeshTelemetry.Version,
                autoGenerateServiceInstanceId: !(builder.Configuration["OTEL_RESOURCE_ATTRIBUTES"] ?? "").Contains("service.instance.id=", StringComparison.Ordinal)))
            .WithTracing(tracing => tracing
                .AddSource(LabMeshTelemetry.Name)
                .AddAspNetCoreInstrumentation(options =>
                {
                    // Probes and grpcurl's reflection are not what an operator follows; every other call is.
                    options.Filter = context => !context.Request.Path.StartsWithSegments("/grpc.health.v1.Health")
                        && !context.Request.Path.StartsWithSegments("/grpc.reflection.v1.ServerReflection")
                        && !context.Request.Path.StartsWithSegments("/grpc.reflection.v1alpha.ServerReflection");
                    options.RecordException = false;
                    // A gRPC call's span is named package.Service/Method (RPC semantic conventions), not "POST /route":
                    // the instrumentation names it when the request ends, after RpcTelemetryInterceptor tagged it.
                    options.EnrichWithHttpResponse = (activity, _) =>
                    {
                        if (activity.GetTagItem("rpc.service") is string service && activity.GetTagItem("rpc.method") is string method)
                        {
                            activity.DisplayName = service + "/" + method;
                        }
                    };
                })
                .AddGrpcClientInstrumentation(options => options.SuppressDownstreamInstrumentation = true)
                .AddHttpClientInstrumentation(options => options.RecordException = false)
                .AddNpgsql()
                // Redis commands, as spans of the call that ran them. The instrumentation profiles every command,
                // the workers' polls outside any call too: RootCommandFilter keeps those from being traces of their own.
                .AddRedisInstrumentation()
                .AddProcessor(new RootCommandFilter())
                .ConfigureRedisInstrumentation((services, redis) =>
                    services.GetService<RedisConnection>()?.ObserveConnections(multiplexer => redis.AddConnection(multiplexer))))
            .WithMetrics(metrics => metrics
                // LabMesh's meter and its components' own (LabMesh.Redis...).
                .AddMeter(LabMeshTelemetry.Name, LabMeshTelemetry.Name + ".*")
                .AddAspNetCoreInstrumentation()
                .AddHttpClientInstrumentation()
                .AddRuntimeInstrumentation()
                .AddMeter("Microsoft.AspNetCore.Server.Kestrel"))
            .WithLogging()
            .UseOtlpExporter();
    }
}

/// <summary>
/// Drops the Redis instrumentation's spans that have no parent: commands run outside any call (the ingestor's
/// XREADGROUP and XAUTOCLAIM every 100 ms, subscriptions) would each be a trace of its own and bury the orders.
/// Marked unrecorded when they start, so no exporter sends them.
/// </summary>
internal sealed class RootCommandFilter : BaseProcessor<Activity>
{
    private const string RedisSource = "OpenTelemetry.Instrumentation.StackExchangeRedis";

    public override void OnStart(Activity data)
    {
        if (data.Source.Name == RedisSource && data.ParentSpanId == default)
        {
            data.IsAllDataRequested = false;
            data.ActivityTraceFlags &= ~ActivityTraceFlags.Recorded;
        }
    }
}
