namespace Grpc.AspNetCore.HealthChecks;

/// <summary>How the hosted <c>grpc.health.v1.Health</c> service behaves around startup and shutdown.</summary>
public sealed class GrpcHealthChecksOptions
{
    /// <summary>
    /// How long the server keeps serving after every status has turned NOT_SERVING at shutdown, before open
    /// Watch streams end and the server stops accepting calls. Load balancers and Kubernetes probes need at
    /// least one probe interval to notice NOT_SERVING and take the instance out of rotation; calls that
    /// arrive meanwhile are still answered. Zero (the default) stops at once. The delay is part of the host's
    /// shutdown timeout (<c>HostOptions.ShutdownTimeout</c>), so keep it well below that.
    /// </summary>
    public TimeSpan DrainDelay { get; set; } = TimeSpan.Zero;

    /// <summary>
    /// Whether every service mapped with <c>MapGrpcService</c>, and the server itself (<c>""</c>), turns
    /// SERVING once the application has started (default true). Services given a status explicitly with
    /// <c>HealthServiceImpl.SetStatus</c> before that keep their status.
    /// </summary>
    public bool MarkMappedServicesServing { get; set; } = true;
}
