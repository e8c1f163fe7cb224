using System.Diagnostics.Metrics;

namespace LabMesh.Bench.Results;

/// <summary>Calls of one method seen from one side while <see cref="RpcBreakdown"/> listened.</summary>
internal sealed record RpcTotals(string Side, string Method, long Calls, double TotalMs)
{
    public double MeanMs => Calls == 0 ? double.NaN : TotalMs / Calls;
}

/// <summary>
/// Listens to the gRPC runtime's meter (<c>LabMesh.Grpc</c>: <c>rpc.server.duration</c> and
/// <c>rpc.client.duration</c>, in ms, tagged with the service and method) and sums the durations per
/// method: in this process that is every hop of a SubmitResults, the bench's own call included.
/// The histograms record only while something listens, so this runs outside the measured windows.
/// </summary>
internal sealed class RpcBreakdown : IDisposable
{
    private const string MeterName = "LabMesh.Grpc";

    private readonly MeterListener _listener = new();
    private readonly Lock _gate = new();
    private readonly Dictionary<(string Side, string Method), (long Calls, double TotalMs)> _totals = [];

    public RpcBreakdown()
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == MeterName && instrument.Name is "rpc.server.duration" or "rpc.client.duration")
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<double>(OnMeasurement);
        _listener.Start();
    }

    public IReadOnlyList<RpcTotals> Totals()
    {
        lock (_gate)
        {
            return _totals.Select(t => new RpcTotals(t.Key.Side, t.Key.Method, t.Value.Calls, t.Value.TotalMs)).ToList();
        }
    }

    public void Dispose() => _listener.Dispose();

    private void OnMeasurement(Instrument instrument, double ms, ReadOnlySpan<KeyValuePair<string, object?>> tags, object? state)
    {
        string? service = null, method = null;
        foreach (var tag in tags)
        {
            switch (tag.Key)
            {
                case "rpc.service": service = tag.Value as string; break;
                case "rpc.method": method = tag.Value as string; break;
            }
        }
        var side = instrument.Name == "rpc.server.duration" ? "server" : "client";
        var name = $"{ShortService(service)}/{method}";
        lock (_gate)
        {
            var (calls, total) = _totals.GetValueOrDefault((side, name));
            _totals[(side, name)] = (calls + 1, total + ms);
        }
    }

    // "labmesh.results.v1.ResultsInterpretationService" -> "ResultsInterpretationService"
    private static string ShortService(string? service) =>
        service is null ? "?" : service[(service.LastIndexOf('.') + 1)..];
}
