using Grpc.Core;
using LabMesh.Interop;

return await InteropProgram.RunAsync(args);

/// <summary>
/// <c>dotnet LabMesh.Interop.dll server --port N [--use_tls] [--tls_cert F --tls_key F] [--tls_ca_out F]</c>
/// or <c>dotnet LabMesh.Interop.dll client --server_host H --server_port P --test_case NAME [--use_tls]
/// [--server_host_override X] [--ca_file F]</c>.
/// </summary>
internal static class InteropProgram
{
    private const string Usage = """
        usage:
          LabMesh.Interop server --port N [--use_tls] [--tls_cert CERT.pem --tls_key KEY.pem] [--tls_ca_out CA.pem]
          LabMesh.Interop client --server_host H --server_port P --test_case NAME[,NAME...]|all [--use_tls]
                                 [--server_host_override NAME] [--ca_file CA.pem] [--timeout_seconds S]
        """;

    /// <summary>The line the server prints once it accepts connections (scripts and tests wait for it).</summary>
    public const string ReadyLinePrefix = "LabMesh interop server listening on port ";

    public static async Task<int> RunAsync(string[] args)
    {
        CommandLineArguments parsed;
        try
        {
            parsed = CommandLineArguments.Parse(args);
            switch (parsed.Mode)
            {
                case "server":
                    parsed.RejectUnknown("port", "use_tls", "tls_cert", "tls_key", "tls_ca_out");
                    return await RunServerAsync(parsed);
                case "client":
                    parsed.RejectUnknown("server_host", "server_port", "test_case", "use_tls", "use_test_ca", "server_host_override", "ca_file", "timeout_seconds");
                    return await RunClientAsync(parsed);
                default:
                    await Console.Error.WriteLineAsync(Usage);
                    return 2;
            }
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}");
            await Console.Error.WriteLineAsync(Usage);
            return 2;
        }
    }

    private static async Task<int> RunServerAsync(CommandLineArguments args)
    {
        var options = new InteropServerOptions
        {
            Port = args.GetInt("port", 0),
            UseTls = args.GetBool("use_tls"),
            TlsCertPath = args.GetString("tls_cert"),
            TlsKeyPath = args.GetString("tls_key"),
            TlsCaOutPath = args.GetString("tls_ca_out"),
        };
        await using var server = await InteropServer.StartAsync(options);
        Console.WriteLine($"{ReadyLinePrefix}{server.Port} ({(server.UseTls ? "tls" : "h2c")})");
        await server.WaitForShutdownAsync();
        return 0;
    }

    private static async Task<int> RunClientAsync(CommandLineArguments args)
    {
        var testCase = args.GetString("test_case") ?? throw new ArgumentException("--test_case is required.");
        var options = new InteropClientOptions
        {
            ServerHost = args.GetString("server_host") ?? "localhost",
            ServerPort = args.GetInt("server_port", 0),
            UseTls = args.GetBool("use_tls"),
            ServerHostOverride = args.GetString("server_host_override"),
            CaFile = args.GetString("ca_file"),
        };
        if (options.ServerPort <= 0)
        {
            throw new ArgumentException("--server_port is required.");
        }
        var timeout = TimeSpan.FromSeconds(args.GetInt("timeout_seconds", 60));
        var cases = testCase == "all" ? InteropClient.TestCases : testCase.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

        using var client = new InteropClient(options);
        var failed = 0;
        foreach (var name in cases)
        {
            using var cancel = new CancellationTokenSource(timeout);
            try
            {
                await client.RunAsync(name, cancel.Token).WaitAsync(timeout + TimeSpan.FromSeconds(5));
                Console.WriteLine($"PASSED {name}");
            }
            catch (Exception e) when (e is InteropTestFailedException or RpcException or TimeoutException or OperationCanceledException or HttpRequestException or IOException)
            {
                failed++;
                await Console.Error.WriteLineAsync($"FAILED {name}: {Describe(e)}");
            }
        }
        return failed == 0 ? 0 : 1;
    }

    private static string Describe(Exception e) => e switch
    {
        InteropTestFailedException => e.Message,
        RpcException rpc => $"unexpected status {rpc.StatusCode} '{rpc.Status.Detail}'" + (rpc.Status.DebugException is { } debug ? $" ({debug.GetType().Name}: {debug.Message})" : ""),
        TimeoutException or OperationCanceledException => $"timed out or cancelled: {e.Message}",
        _ => e.ToString(),
    };
}
