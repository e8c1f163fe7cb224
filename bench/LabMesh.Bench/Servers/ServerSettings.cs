using System.Globalization;

namespace LabMesh.Bench.Servers;

/// <summary>
/// How one bench server is set up: which kind, the message sizes (the bare endpoint answers with
/// pre-framed responses of these sizes; the LabMesh handler answers with the size each request asks
/// for), and the settings some scenarios change. Passed to a child process on its command line.
/// </summary>
internal sealed record ServerSettings(ServerKind Kind, int RequestSize, int ResponseSize, int StreamMessages)
{
    /// <summary>Kestrel's default <c>Limits.Http2.MaxStreamsPerConnection</c>.</summary>
    public const int KestrelDefaultMaxStreams = 100;

    /// <summary>LabMesh only: <c>GrpcServiceOptions.ResponseCompressionAlgorithm</c>; null for none.</summary>
    public string? ResponseCompression { get; init; }

    /// <summary>Kestrel's HTTP/2 MAX_CONCURRENT_STREAMS per connection.</summary>
    public int MaxStreams { get; init; } = KestrelDefaultMaxStreams;

    /// <summary>Sample allocations by type (<see cref="AllocationProfiler"/>).</summary>
    public bool AllocProfile { get; init; }

    public static ServerSettings For(ServerKind kind, Payloads payloads, BenchOptions options) =>
        new(kind, payloads.Request.Payload.Length, payloads.Response.Payload.Length, payloads.StreamMessages)
        {
            AllocProfile = options.AllocProfile,
        };

    public Payloads CreatePayloads() => new(RequestSize, ResponseSize, StreamMessages);

    /// <summary>The arguments after <c>serve</c>.</summary>
    public string[] ToArgs() =>
    [
        Kind.ToString(),
        RequestSize.ToString(CultureInfo.InvariantCulture),
        ResponseSize.ToString(CultureInfo.InvariantCulture),
        StreamMessages.ToString(CultureInfo.InvariantCulture),
        ResponseCompression ?? "identity",
        MaxStreams.ToString(CultureInfo.InvariantCulture),
        AllocProfile ? "profile" : "no-profile",
    ];

    /// <summary>Reads what <see cref="ToArgs"/> wrote.</summary>
    public static ServerSettings Parse(ReadOnlySpan<string> args) =>
        new(
            Enum.Parse<ServerKind>(args[0]),
            int.Parse(args[1], CultureInfo.InvariantCulture),
            int.Parse(args[2], CultureInfo.InvariantCulture),
            int.Parse(args[3], CultureInfo.InvariantCulture))
        {
            ResponseCompression = args[4] == "identity" ? null : args[4],
            MaxStreams = int.Parse(args[5], CultureInfo.InvariantCulture),
            AllocProfile = args[6] == "profile",
        };
}
