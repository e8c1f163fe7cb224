namespace LabMesh.Interop.Tests;

/// <summary>The interop case names each direction runs.</summary>
public static class InteropCases
{
    /// <summary>The cases every implementation must pass, in every direction.</summary>
    public static readonly string[] Core =
    [
        "empty_unary", "large_unary", "client_streaming", "server_streaming", "ping_pong", "empty_stream",
        "status_code_and_message", "special_status_message", "custom_metadata", "timeout_on_sleeping_server",
        "cancel_after_begin", "cancel_after_first_response", "unimplemented_method", "unimplemented_service",
    ];

    /// <summary>The cases that need gzip message compression.</summary>
    public static readonly string[] Compression =
    [
        "client_compressed_unary", "server_compressed_unary", "client_compressed_streaming", "server_compressed_streaming",
    ];

    /// <summary>The compression cases a grpcio server can serve: it cannot tell whether a request
    /// arrived compressed (grpcio hides grpc-encoding and the message flag), so it cannot fail the
    /// uncompressed probe of the client_compressed_* cases.</summary>
    public static readonly string[] CompressionAgainstPythonServer = ["server_compressed_unary", "server_compressed_streaming"];

    // Against grpc-js's server no compression case is run: its handlers cannot see whether a request
    // arrived compressed (so the client_compressed_* probes cannot fail as they must), and it never
    // compresses a response (so server_compressed_* would pass without testing anything).

    public static TheoryData<string> CoreData => [.. Core];

    public static TheoryData<string> CompressionData => [.. Compression];

    public static TheoryData<string> CompressionAgainstPythonServerData => [.. CompressionAgainstPythonServer];
}
