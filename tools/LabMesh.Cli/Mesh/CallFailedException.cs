using Google.Protobuf;
using Google.Rpc;
using Grpc.Core;
using RpcStatus = Google.Rpc.Status;

namespace LabMesh.Cli.Mesh;

/// <summary>
/// A call to the mesh that ended with a status other than OK: which method, which address, the
/// gRPC status and what the server's <c>google.rpc.Status</c> details say.
/// </summary>
internal sealed class CallFailedException : Exception
{
    private const string StatusDetailsTrailer = "grpc-status-details-bin";

    public CallFailedException(string method, string address, RpcException inner)
        : base($"{method} failed with {StatusCodes.Name(inner.StatusCode)} at {address}: {inner.Status.Detail}", inner)
    {
        Method = method;
        Address = address;
        StatusCode = inner.StatusCode;
        Details = ReadDetails(inner.Trailers);
    }

    public string Method { get; }

    public string Address { get; }

    public StatusCode StatusCode { get; }

    /// <summary>One line per field violation, precondition violation or error reason the server sent.</summary>
    public IReadOnlyList<string> Details { get; }

    /// <summary>The ErrorInfo metadata value of <paramref name="key"/>, if the server sent one.</summary>
    public static string? ErrorInfoValue(Metadata trailers, string key)
    {
        foreach (var info in Unpack(trailers, ErrorInfo.Parser))
        {
            if (info.Metadata.TryGetValue(key, out var value))
            {
                return value;
            }
        }

        return null;
    }

    private static List<string> ReadDetails(Metadata trailers)
    {
        var lines = new List<string>();
        foreach (var badRequest in Unpack(trailers, BadRequest.Parser))
        {
            lines.AddRange(badRequest.FieldViolations.Select(v => $"{v.Field}: {v.Description}"));
        }

        foreach (var precondition in Unpack(trailers, PreconditionFailure.Parser))
        {
            lines.AddRange(precondition.Violations.Select(v => $"{v.Type} {v.Subject}: {v.Description}"));
        }

        foreach (var info in Unpack(trailers, ErrorInfo.Parser))
        {
            var metadata = string.Join(", ", info.Metadata.Select(m => $"{m.Key}={m.Value}"));
            lines.Add(metadata.Length == 0 ? $"reason {info.Reason}" : $"reason {info.Reason} ({metadata})");
        }

        return lines;
    }

    private static IEnumerable<T> Unpack<T>(Metadata trailers, MessageParser<T> parser)
        where T : IMessage<T>, new()
    {
        var bytes = trailers.GetValueBytes(StatusDetailsTrailer);
        if (bytes is null)
        {
            yield break;
        }

        RpcStatus status;
        try
        {
            status = RpcStatus.Parser.ParseFrom(bytes);
        }
        catch (InvalidProtocolBufferException)
        {
            yield break;
        }

        var typeName = new T().Descriptor.FullName;
        foreach (var any in status.Details)
        {
            if (any.TypeUrl.EndsWith("/" + typeName, StringComparison.Ordinal))
            {
                yield return parser.ParseFrom(any.Value);
            }
        }
    }
}
