using System.Collections.Concurrent;
using System.Diagnostics.Metrics;

namespace LabMesh.Testing;

/// <summary>Sums one counter of the "LabMesh" meter by the value of one attribute, from its creation on (every host of the process).</summary>
public sealed class CounterCapture : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly ConcurrentDictionary<string, long> _sums = new();

    public CounterCapture(string instrumentName, string attribute)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == "LabMesh" && instrument.Name == instrumentName)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
            {
                if (tag.Key == attribute && tag.Value is string key)
                {
                    _sums.AddOrUpdate(key, value, (_, sum) => sum + value);
                }
            }
        });
        _listener.Start();
    }

    /// <summary>The sum of the measurements whose attribute was <paramref name="value"/>.</summary>
    public long Sum(string value) => _sums.GetValueOrDefault(value);

    public void Dispose() => _listener.Dispose();
}
