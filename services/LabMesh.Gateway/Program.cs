using LabMesh.Gateway;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Yarp.ReverseProxy.Forwarder;
using Yarp.ReverseProxy.Health;

// Routes, clusters, transforms, passive health and the upstream HttpClient settings are YARP's own configuration
// (appsettings.json, section ReverseProxy); each deployment adds the destinations (deploy/local/lib.sh,
// docker-compose.yml). The code below is what YARP does not do by itself: a refused connection moved to the other
// replica (RefusedConnectionRetry), a cap on the gRPC calls in flight per service (CallsInFlightLimit), the upstream connect timeout (GatewayHttpClientFactory), a gRPC status for a
// call no route takes (NoRoute) and a warm-up before readiness answers healthy (GatewayWarmUp, GET /healthz/ready).
// The configuration is read from beside the assembly, wherever the process is started from.
var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
builder.WebHost.UseKestrel(kestrel => kestrel.AddServerHeader = false);
builder.Services.AddReverseProxy().LoadFromConfig(builder.Configuration.GetSection("ReverseProxy"));
builder.Services.AddSingleton<IForwarderHttpClientFactory, GatewayHttpClientFactory>();
builder.Services.AddCallsInFlightLimit(builder.Configuration.GetSection("LabMesh:Gateway:CallsInFlight"));
builder.Services.Configure<TransportFailureRateHealthPolicyOptions>(builder.Configuration.GetSection("LabMesh:Gateway:PassiveHealth"));
builder.Services.Configure<GatewayWarmUp.Options>(builder.Configuration.GetSection("LabMesh:Gateway:WarmUp"));
builder.Services.AddSingleton<GatewayWarmUp>();
builder.Services.AddHostedService(services => services.GetRequiredService<GatewayWarmUp>());
builder.Services.AddHealthChecks().AddCheck<GatewayWarmUp>("warm-up");

var app = builder.Build();
app.UseRateLimiter();
app.MapReverseProxy(proxy =>
{
    proxy.UseMiddleware<RefusedConnectionRetry>();
    proxy.UseLoadBalancing();
    proxy.UsePassiveHealthChecks();
});
app.MapHealthChecks(GatewayWarmUp.ReadinessPath, new HealthCheckOptions { ResponseWriter = GatewayWarmUp.WriteReadinessAsync });
app.MapFallback(NoRoute.AnswerAsync);
app.Run();
