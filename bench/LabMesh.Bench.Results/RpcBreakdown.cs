using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace LabMesh.Bench.Results;

/// <summary>Calls of one method seen from one side while <see cref="RpcBreakdown"/> listened.</summary>
internal sealed record RpcTotals(string Side, string Method, long Calls, double TotalMs)
{
    public double MeanMs => Calls == 0 ? double.NaN : TotalMs / Calls;
}

/// <summary>
/// Sums call durations per gRPC method, on both sides, in this process (every hop of a SubmitResults, the
/// bench's own call included):
/// <list type="bullet">
/// <item>server: ASP.NET Core's <c>Microsoft.AspNetCore.Hosting</c> meter, <c>http.server.request.duration</c>
/// (seconds) tagged with <c>http.route</c>, which for a gRPC method is <c>/package.Service/Method</c>: the
/// whole request in Kestrel's hosting layer, middleware and the gRPC handler with its interceptors;</item>
/// <item>client: grpc-dotnet's <c>Grpc.Net.Client</c> activity source, the <c>Grpc.Net.Client.GrpcOut</c>
/// activity of each call (tagged <c>grpc.method</c>), from the call's start to its end as its caller saw it.</item>
/// </list>
/// Neither records unless something listens, so this runs outside the measured windows.
/// </summary>
internal sealed class RpcBreakdown : IDisposable
{
    private const string HostingMeter = "Microsoft.AspNetCore.Hosting";
    private const string ClientSource = "Grpc.Net.Client";

    private readonly MeterListener _meters = new();
    private readonly ActivityListener _activities;
    private readonly Lock _gate = new();
    private readonly Dictionary<(string Side, string Method), (long Calls, double TotalMs)> _totals = [];

    public RpcBreakdown()
    {
        _meters.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == HostingMeter && instrument.Name == "http.server.request.duration")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _meters.SetMeasurementEventCallback<double>(OnServerRequest);
        _meters.Start();

        _activities = new ActivityListener
        {
            ShouldListenTo = source => source.Name == ClientSource,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStopped = OnClientCall,
        };
        ActivitySource.AddActivityListener(_activities);
    }

    public IReadOnlyList<RpcTotals> Totals()
    {
        lock (_gate)
        {
            return _totals.Select(t => new RpcTotals(t.Key.Side, t.Key.Method, t.Value.Calls, t.Value.TotalMs)).ToList();
        }
    }

    public void Dispose()
    {
        _meters.Dispose();
        _activities.Dispose();
    }

    private void OnServerRequest(Instrument instrument, double seconds, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        foreach (var tag in tags)
        {
            if (tag.Key == "http.route" && tag.Value is string route)
            {
                Add("server", route, seconds * 1000);
                return;
            }
        }
    }

    private void OnClientCall(Activity activity)
    {
        if (activity.OperationName == "Grpc.Net.Client.GrpcOut" && activity.GetTagItem("grpc.method") is string method)
        {
            Add("client", method, activity.Duration.TotalMilliseconds);
        }
    }

    private void Add(string side, string path, double ms)
    {
        var name = ShortMethod(path);
        lock (_gate)
        {
            var (calls, total) = _totals.GetValueOrDefault((side, name));
            _totals[(side, name)] = (calls + 1, total + ms);
        }
    }

    // "/labmesh.results.v1.ResultsInterpretationService/SubmitResults" -> "ResultsInterpretationService/SubmitResults"
    private static string ShortMethod(string path)
    {
        var slash = path.LastIndexOf('/');
        if (slash <= 0)
        {
            return path;
        }

        var service = path[1..slash];
        return $"{service[(service.LastIndexOf('.') + 1)..]}/{path[(slash + 1)..]}";
    }
}
