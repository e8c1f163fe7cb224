namespace LabMesh.Interop.Tests;

/// <summary>
/// Debian's Python with grpcio (<c>/usr/bin/python3</c>; the <c>python3</c> on PATH may be another
/// interpreter without grpc) and the interop scripts copied beside the test assembly.
/// A missing interpreter, grpcio or protoc fails the test with the install line: CI installs them,
/// so their absence is a broken machine, never a reason to skip.
/// </summary>
internal static class PythonGrpc
{
    public const string Interpreter = "/usr/bin/python3";

    private const string InstallHint = "apt-get install -y python3 python3-grpcio python3-protobuf protobuf-compiler";

    private static readonly Lazy<Task<string?>> Problem = new(FindProblemAsync);

    public static string ClientScript => Path.Combine(AppContext.BaseDirectory, "python", "interop_client.py");

    public static string ServerScript => Path.Combine(AppContext.BaseDirectory, "python", "interop_server.py");

    /// <summary>Fails the calling test unless Python, grpcio, protobuf and protoc are all usable.</summary>
    public static async Task RequireAsync()
    {
        var problem = await Problem.Value;
        if (problem is not null)
        {
            Assert.Fail(problem);
        }
    }

    /// <summary>Runs interop_client.py for the cases and fails with its output unless it exits 0.</summary>
    public static async Task RunClientAsync(string host, int port, string testCases, bool useTls = false, string? caFile = null, TimeSpan? timeout = null, string? serverOutput = null, string? hostOverride = null)
    {
        await RequireAsync();
        List<string> arguments = [ClientScript, "--server_host", host, "--server_port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--test_case", testCases];
        if (useTls)
        {
            arguments.Add("--use_tls");
            if (caFile is not null)
            {
                arguments.AddRange(["--ca_file", caFile]);
            }
        }
        if (hostOverride is not null)
        {
            arguments.AddRange(["--server_host_override", hostOverride]);
        }
        await using var process = ExternalProcess.Start(Interpreter, arguments);
        var exitCode = await process.WaitForExitAsync(timeout ?? TimeSpan.FromSeconds(90));
        Assert.True(exitCode == 0,
            $"grpcio client failed ({testCases}, exit code {exitCode}): {process.CommandLine}\n{process.Describe()}" +
            (serverOutput is null ? "" : $"\n--- server ---\n{serverOutput}"));
    }

    private static async Task<string?> FindProblemAsync()
    {
        if (!File.Exists(Interpreter))
        {
            return $"{Interpreter} is missing; the interop tests need Debian's Python with grpcio: {InstallHint}";
        }
        if (!File.Exists(ClientScript) || !File.Exists(ServerScript))
        {
            return $"The interop scripts are not beside the test assembly ({ClientScript}); rebuild LabMesh.Interop.";
        }
        await using var probe = ExternalProcess.Start(Interpreter, ["-c", "import grpc, google.protobuf, shutil, sys; print(grpc.__version__); sys.exit(0 if shutil.which('protoc') or __import__('os').path.exists('/usr/bin/protoc') else 3)"]);
        int exitCode;
        try
        {
            exitCode = await probe.WaitForExitAsync(TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException e)
        {
            return e.Message;
        }
        return exitCode switch
        {
            0 => null,
            3 => $"protoc is missing (the Python side compiles the interop protos at run time): {InstallHint}",
            _ => $"{Interpreter} cannot import grpc and google.protobuf (exit code {exitCode}): {InstallHint}\n{probe.Describe()}",
        };
    }
}
