using Microsoft.Extensions.Logging;

namespace LabMesh.Interop.Tests;

/// <summary>The LabMesh interop server hosted in-process on free loopback ports: one h2c, one TLS
/// (with a throw-away CA whose certificate is written to <see cref="CaFile"/> for grpcio).</summary>
public sealed class LabMeshServerFixture : IAsyncLifetime
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);
    private readonly string _directory = Directory.CreateTempSubdirectory("labmesh-interop-").FullName;

    public InteropServer H2c { get; private set; } = null!;

    public InteropServer Tls { get; private set; } = null!;

    public TestLogSink H2cLogs { get; } = new();

    public TestLogSink TlsLogs { get; } = new();

    public string CaFile => Path.Combine(_directory, "ca.pem");

    public async Task InitializeAsync()
    {
        H2c = await InteropServer.StartAsync(new InteropServerOptions { ConfigureLogging = Capture(H2cLogs) }).WaitAsync(StartTimeout);
        Tls = await InteropServer.StartAsync(new InteropServerOptions
        {
            UseTls = true,
            TlsCaOutPath = CaFile,
            ConfigureLogging = Capture(TlsLogs),
        }).WaitAsync(StartTimeout);
    }

    public async Task DisposeAsync()
    {
        try
        {
            if (Tls is not null)
            {
                await Tls.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            }
        }
        finally
        {
            if (H2c is not null)
            {
                await H2c.DisposeAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(30));
            }
            Directory.Delete(_directory, recursive: true);
        }
    }

    public InteropServer Server(bool tls) => tls ? Tls : H2c;

    public TestLogSink Logs(bool tls) => tls ? TlsLogs : H2cLogs;

    /// <summary>Runs <paramref name="action"/> and fails if the server logged an error meanwhile;
    /// a failure of the action carries the server's recent log.</summary>
    public async Task RunCheckingLogsAsync(bool tls, Func<Task> action)
    {
        var logs = Logs(tls);
        var start = logs.Count;
        try
        {
            await action();
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException($"{e.GetType().Name}: {e.Message}\n--- server log (warnings and up) ---\n{string.Join('\n', logs.Since(start, LogLevel.Warning))}", e);
        }
        catch (Xunit.Sdk.XunitException e)
        {
            throw new Xunit.Sdk.XunitException($"{e.Message}\n--- server log (warnings and up) ---\n{string.Join('\n', logs.Since(start, LogLevel.Warning))}");
        }
        var errors = logs.Since(start, LogLevel.Error).ToList();
        Assert.True(errors.Count == 0, $"The server logged errors:\n{string.Join('\n', errors)}");
    }

    private static Action<ILoggingBuilder> Capture(TestLogSink sink) => logging =>
    {
        logging.SetMinimumLevel(LogLevel.Debug);
        logging.AddProvider(sink);
    };
}
