namespace LabMesh.Security.Audit;

/// <summary>
/// The audit record of the mutating call in progress. It flows with the call (an
/// <see cref="AsyncLocal{T}"/>) down to the service's store, so that the first write transaction the
/// handler commits on that store carries the record too (<see cref="AuditWriteParticipant"/>, registered with the stores):
/// the change and its record commit together or not at all.
/// </summary>
/// <remarks>
/// Work the handler starts in the background inherits the scope; once the call has ended
/// (<see cref="CloseAsync"/>) nothing records through it any more, and a write in flight at that
/// moment is waited for, so a call is recorded exactly once.
/// </remarks>
internal sealed class AuditScope(string store, AuditRow row, TimeProvider time)
{
    private static readonly AsyncLocal<AuditScope?> Ambient = new();

    private readonly Lock _gate = new();
    private readonly TimeProvider _time = time;
    private State _state;
    private TaskCompletionSource? _writing;

    private enum State
    {
        Open,
        Writing,
        Recorded,
        Closed,
    }

    public static AuditScope? Current
    {
        get => Ambient.Value;
        set => Ambient.Value = value;
    }

    public string Store { get; } = store;

    public AuditRow Row { get; } = row;

    /// <summary>The target id the record was inserted with by the last claim (set with <see cref="Claim"/>).</summary>
    public string ClaimedTargetId { get; private set; } = "";

    /// <summary>
    /// Names the id a create is making, while its record is not written yet, so the record carries it from the start;
    /// only for a record without a target (a create's) and only before a transaction has claimed it.
    /// </summary>
    public void NameTarget(string id)
    {
        lock (_gate)
        {
            if (_state == State.Open && Row.TargetId.Length == 0)
            {
                Row.TargetId = id;
            }
        }
    }

    /// <summary>
    /// The scope whose record a transaction on <paramref name="storeName"/> must insert, stamped with
    /// the time; null when there is none (no call in progress, another service's store, recorded or
    /// ended). The caller reports the transaction's fate with <see cref="Written"/>.
    /// </summary>
    public static AuditScope? Claim(string storeName)
    {
        var scope = Ambient.Value;
        if (scope is null || scope.Store != storeName)
        {
            return null;
        }

        lock (scope._gate)
        {
            if (scope._state != State.Open)
            {
                return null;
            }

            scope._state = State.Writing;
            scope._writing = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            scope.Row.At = scope._time.GetUtcNow();
            scope.ClaimedTargetId = scope.Row.TargetId;
        }

        return scope;
    }

    /// <summary>Ends a claim: the record is in the store when <paramref name="committed"/>, otherwise the next transaction may carry it.</summary>
    public void Written(bool committed)
    {
        TaskCompletionSource? writing;
        lock (_gate)
        {
            _state = committed ? State.Recorded : State.Open;
            writing = _writing;
            _writing = null;
        }

        writing?.TrySetResult();
    }

    /// <summary>Ends the scope: true when a transaction recorded the call, false when none did (and none will).</summary>
    public async Task<bool> CloseAsync()
    {
        while (true)
        {
            Task writing;
            lock (_gate)
            {
                switch (_state)
                {
                    case State.Recorded:
                        return true;
                    case State.Open or State.Closed:
                        _state = State.Closed;
                        return false;
                }

                writing = _writing!.Task;
            }

            await writing;
        }
    }
}
