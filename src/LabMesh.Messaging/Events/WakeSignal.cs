namespace LabMesh.Messaging.Events;

/// <summary>
/// Wakes a background loop early: the loop waits on <see cref="WaitAsync"/> for its interval, and
/// <see cref="Set"/> ends the wait at once. Several sets before the loop wakes count as one.
/// </summary>
public sealed class WakeSignal : IDisposable
{
    private readonly SemaphoreSlim _semaphore = new(0, 1);

    public void Set()
    {
        if (_semaphore.CurrentCount > 0)
        {
            return;
        }

        try
        {
            _semaphore.Release();
        }
        catch (SemaphoreFullException)
        {
            // Another set got there first; one wake-up is enough.
        }
    }

    /// <summary>Waits until <see cref="Set"/> or <paramref name="timeout"/>, whichever comes first.</summary>
    public Task WaitAsync(TimeSpan timeout, CancellationToken cancellationToken) => _semaphore.WaitAsync(timeout, cancellationToken);

    public void Dispose() => _semaphore.Dispose();
}
