namespace LabMesh.Core.Errors;

/// <summary>
/// A backing store LabMesh depends on cannot serve a call right now (not connected, no answer in time, an
/// error reply): the one failure of a backend that <see cref="DomainExceptionInterceptor"/> maps to
/// UNAVAILABLE with a <c>RetryInfo</c>. A backend's client throws a subclass of it (Redis's
/// <c>RedisUnavailableException</c>), so the mapping knows no backend's types.
/// </summary>
/// <remarks>
/// The message stays on the server (it may name hosts and ports); the caller sees only <see cref="Backend"/>.
/// </remarks>
public abstract class BackendUnavailableException : Exception
{
    protected BackendUnavailableException(string backend, string message)
        : base(message)
    {
        Backend = backend;
    }

    protected BackendUnavailableException(string backend, string message, Exception innerException)
        : base(message, innerException)
    {
        Backend = backend;
    }

    /// <summary>The backend's name as the caller may read it, e.g. <c>Redis</c>.</summary>
    public string Backend { get; }
}
