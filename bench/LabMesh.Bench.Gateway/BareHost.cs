using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace LabMesh.Bench.Gateway;

/// <summary>
/// The memory baseline: an ASP.NET Core host as a service's Program.cs builds it
/// (<c>WebApplication.CreateBuilder</c>: configuration, console logging, Kestrel) with one h2c endpoint
/// on loopback and one trivial route, and nothing of LabMesh. It runs as a child process of the bench
/// (this executable, <c>bare-host PORT</c>) with the GC settings it is given, and stops when its stdin closes.
/// </summary>
internal sealed class BareHost : IAsyncDisposable
{
    public const string Mode = "bare-host";

    private readonly Process _process;

    private BareHost(string name, Process process, int port)
    {
        Name = name;
        _process = process;
        Port = port;
    }

    public string Name { get; }

    public int Port { get; }

    public int Pid => _process.Id;

    /// <summary>The child's side: serve until stdin closes.</summary>
    public static async Task<int> ServeAsync(int port)
    {
        var builder = WebApplication.CreateBuilder();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, port, listen => listen.Protocols = HttpProtocols.Http2));
        var app = builder.Build();
        app.MapGet("/", () => Results.Text("ok"));
        await app.StartAsync();
        await Console.In.ReadToEndAsync();
        await app.StopAsync();
        return 0;
    }

    /// <summary>
    /// Starts a bare host (or another mode of this executable that answers GET / on h2c)
    /// with the given environment and waits until it has answered one h2c request.
    /// </summary>
    public static async Task<BareHost> StartAsync(string name, int port, IEnumerable<KeyValuePair<string, string>> environment, CancellationToken cancellationToken,
        string mode = Mode, params string[] more)
    {
        var self = Environment.ProcessPath ?? throw new InvalidOperationException("No process path.");
        var start = new ProcessStartInfo(self) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        if (Path.GetFileNameWithoutExtension(self) == "dotnet")
        {
            start.ArgumentList.Add(typeof(BareHost).Assembly.Location);
        }

        start.ArgumentList.Add(mode);
        start.ArgumentList.Add(port.ToString(CultureInfo.InvariantCulture));
        foreach (var arg in more)
        {
            start.ArgumentList.Add(arg);
        }

        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["DOTNET_ENVIRONMENT"] = "Production";
        foreach (var (key, value) in environment)
        {
            start.Environment[key] = value;
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("The bare host did not start.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var host = new BareHost(name, process, port);

        using var client = new HttpClient { DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                (await client.GetAsync($"http://127.0.0.1:{port}/", cancellationToken)).EnsureSuccessStatusCode();
                return host;
            }
            catch (HttpRequestException) when (deadline.Elapsed < TimeSpan.FromSeconds(30) && !process.HasExited)
            {
                await Task.Delay(100, cancellationToken);
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.StandardInput.Close();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
            }
        }

        _process.Dispose();
    }
}
