using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Reflection;
using LabMesh.Contracts.Common.V1;

namespace LabMesh.Core.Diagnostics;

/// <summary>
/// LabMesh's own instruments: its ActivitySource and Meter, and the span of an event's step whose parent is the span
/// that caused the event. Every layer records on them (the outbox relay, peer work, the services); exporting them is
/// the hosts' business (<c>LabMeshOpenTelemetry.AddLabMeshTelemetry</c> in LabMesh.ServiceDefaults). No attribute holds
/// an id of a patient, a name, a birth date or a result value: the tags are event types, methods, codes and outcomes.
/// </summary>
public static class LabMeshTelemetry
{
    /// <summary>The name of LabMesh's ActivitySource and Meter.</summary>
    public const string Name = "LabMesh";

    /// <summary>The version LabMesh's spans, metrics and resource carry (the assembly's informational version, without its commit).</summary>
    public static readonly string Version = typeof(LabMeshTelemetry).Assembly
        .GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>LabMesh's own spans (outbox, bus, ingest, deliveries, escalation).</summary>
    public static readonly ActivitySource Source = new(Name, Version);

    /// <summary>LabMesh's own metrics (RPC durations and the workflow's figures, see <see cref="LabMeshMetrics"/>).</summary>
    public static readonly Meter Meter = new(Name, Version);

    /// <summary>
    /// Starts the span <c>{operation} {event type}</c> of <see cref="Source"/> whose parent is the span that caused
    /// <paramref name="evt"/> (its envelope's <c>traceparent</c>), or the current span when it has none; null, with
    /// nothing allocated, when nobody listens. It does not become <see cref="Activity.Current"/> unless <paramref name="makeCurrent"/>.
    /// </summary>
    public static Activity? StartForEvent(string operation, ActivityKind kind, Event evt, bool makeCurrent = true)
    {
        ArgumentNullException.ThrowIfNull(evt);
        return StartForEvent(operation, kind, evt.Type, evt.Traceparent, evt.Tracestate, makeCurrent);
    }

    /// <summary>As <see cref="StartForEvent(string, ActivityKind, Event, bool)"/>, from an event's type and trace context as stored.</summary>
    public static Activity? StartForEvent(string operation, ActivityKind kind, string eventType, string? traceparent, string? tracestate, bool makeCurrent = true)
    {
        if (!Source.HasListeners())
        {
            return null;
        }

        var previous = Activity.Current;
        var name = operation + " " + eventType;
        var activity = ActivityContext.TryParse(traceparent, tracestate, isRemote: true, out var parent)
            ? Source.StartActivity(name, kind, parent)
            : Source.StartActivity(name, kind);
        if (activity is not null)
        {
            activity.SetTag("labmesh.event.type", eventType);
            if (!makeCurrent)
            {
                Activity.Current = previous;
            }
        }

        return activity;
    }
}
