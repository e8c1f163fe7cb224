namespace Grpc.Core;

/// <summary>Thrown when a call ends with a status other than OK; a server handler throws it to end a call with a status.</summary>
public class RpcException : Exception
{
    /// <summary>Creates an exception for a status with no trailers.</summary>
    public RpcException(Status status)
        : this(status, Metadata.Empty, status.Detail)
    {
    }

    /// <summary>Creates an exception for a status with a custom message.</summary>
    public RpcException(Status status, string message)
        : this(status, Metadata.Empty, message)
    {
    }

    /// <summary>Creates an exception for a status with trailers.</summary>
    public RpcException(Status status, Metadata trailers)
        : this(status, trailers, status.Detail)
    {
    }

    /// <summary>Creates an exception for a status with trailers and a custom message.</summary>
    public RpcException(Status status, Metadata trailers, string message)
        : base(BuildMessage(status, message), status.DebugException)
    {
        Status = status;
        Trailers = trailers ?? Metadata.Empty;
    }

    /// <summary>The call's status.</summary>
    public Status Status { get; }

    /// <summary>The status code (shorthand for <c>Status.StatusCode</c>).</summary>
    public StatusCode StatusCode => Status.StatusCode;

    /// <summary>The trailers the call ended with (or, on a server, the trailers to send).</summary>
    public Metadata Trailers { get; }

    private static string BuildMessage(Status status, string message) =>
        message == status.Detail ? status.ToString() : message;
}
