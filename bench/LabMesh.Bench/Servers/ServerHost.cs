using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace LabMesh.Bench.Servers;

/// <summary>
/// One bench server on 127.0.0.1, h2c only. Both kinds are built by the same code with the same
/// Kestrel settings; they differ only in what answers on the two bench paths.
/// </summary>
internal sealed class ServerHost : IAsyncDisposable
{
    public const string StatsPath = "/_bench/stats";
    public const string AllocationsPath = "/_bench/allocations";

    private readonly WebApplication _app;

    private ServerHost(WebApplication app, string address)
    {
        _app = app;
        Address = address;
    }

    /// <summary>The base address, e.g. <c>http://127.0.0.1:41234</c>.</summary>
    public string Address { get; }

    public static async Task<ServerHost> StartAsync(ServerSettings settings)
    {
        var builder = WebApplication.CreateSlimBuilder();
        // No log output on either server: a console logger would dominate the cost of a small call.
        builder.Logging.ClearProviders();
        var connections = new StrongBox<long>();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.Http2.MaxStreamsPerConnection = settings.MaxStreams;
            kestrel.Listen(IPAddress.Loopback, 0, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                // Counted once per connection, so that a scenario can tell how many its client opened.
                listen.Use(next => context =>
                {
                    Interlocked.Increment(ref connections.Value);
                    return next(context);
                });
            });
        });
        if (settings.Kind == ServerKind.LabMesh)
        {
            builder.Services.AddGrpc(options => options.ResponseCompressionAlgorithm = settings.ResponseCompression);
        }

        var app = builder.Build();
        if (settings.Kind == ServerKind.LabMesh)
        {
            app.MapGrpcService<BenchServiceImpl>();
        }
        else
        {
            MapBare(app, settings.CreatePayloads());
        }
        app.MapGet(StatsPath, () => (ProcessStats.Capture() with { Connections = Interlocked.Read(ref connections.Value) }).Format());
        app.MapGet(AllocationsPath, () => AllocationProfiler.Instance?.TakeAndReset() ?? "");

        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.Single();
        return new ServerHost(app, address);
    }

    /// <summary>
    /// The baseline: what a gRPC server must put on the wire, without doing any gRPC work. It reads the
    /// request body to its end (unparsed), writes pre-framed response bytes, flushing each streamed
    /// message as a gRPC server does, and ends with the <c>grpc-status: 0</c> trailer.
    /// </summary>
    private static void MapBare(WebApplication app, Payloads payloads)
    {
        var framedResponse = payloads.FramedResponse;
        var streamMessages = payloads.StreamMessages;

        app.MapPost(Payloads.UnaryPath, async context =>
        {
            await DrainAsync(context.Request.BodyReader);
            context.Response.ContentType = "application/grpc";
            await context.Response.BodyWriter.WriteAsync(framedResponse);
            context.Response.AppendTrailer("grpc-status", "0");
        });

        app.MapPost(Payloads.StreamPath, async context =>
        {
            await DrainAsync(context.Request.BodyReader);
            context.Response.ContentType = "application/grpc";
            for (var i = 0; i < streamMessages; i++)
            {
                await context.Response.BodyWriter.WriteAsync(framedResponse);
            }
            context.Response.AppendTrailer("grpc-status", "0");
        });
    }

    private static async Task DrainAsync(PipeReader reader)
    {
        while (true)
        {
            var result = await reader.ReadAsync();
            reader.AdvanceTo(result.Buffer.End);
            if (result.IsCompleted)
            {
                return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }
}

/// <summary>
/// What a process has spent so far: CPU time and, for a .NET process (<paramref name="Managed"/>),
/// allocations and collections; for a bench server also the connections it has accepted.
/// </summary>
internal readonly record struct ProcessStats(long AllocatedBytes, TimeSpan CpuTime, int Gen0, int Gen1, int Gen2, long Connections, bool Managed)
{
    public static ProcessStats Capture() => new(
        GC.GetTotalAllocatedBytes(precise: true),
        Environment.CpuUsage.TotalTime,
        GC.CollectionCount(0),
        GC.CollectionCount(1),
        GC.CollectionCount(2),
        0,
        true);

    /// <summary>CPU time of another process, from <c>/proc/PID/stat</c> (utime + stime, in USER_HZ = 100 ticks a second).</summary>
    public static ProcessStats OfProcess(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        // The fields after the parenthesized command name, which may itself contain spaces.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return new ProcessStats(0, TimeSpan.FromMilliseconds(ticks * 10), 0, 0, 0, 0, false);
    }

    public string Format() => string.Join(' ',
        AllocatedBytes.ToString(CultureInfo.InvariantCulture),
        CpuTime.Ticks.ToString(CultureInfo.InvariantCulture),
        Gen0.ToString(CultureInfo.InvariantCulture),
        Gen1.ToString(CultureInfo.InvariantCulture),
        Gen2.ToString(CultureInfo.InvariantCulture),
        Connections.ToString(CultureInfo.InvariantCulture));

    public static ProcessStats ParseFormatted(string text)
    {
        var parts = text.Trim().Split(' ');
        return new ProcessStats(
            long.Parse(parts[0], CultureInfo.InvariantCulture),
            TimeSpan.FromTicks(long.Parse(parts[1], CultureInfo.InvariantCulture)),
            int.Parse(parts[2], CultureInfo.InvariantCulture),
            int.Parse(parts[3], CultureInfo.InvariantCulture),
            int.Parse(parts[4], CultureInfo.InvariantCulture),
            long.Parse(parts[5], CultureInfo.InvariantCulture),
            true);
    }

    /// <summary>What was spent between <paramref name="earlier"/> and this snapshot.</summary>
    public ProcessStats Since(ProcessStats earlier) => new(
        AllocatedBytes - earlier.AllocatedBytes, CpuTime - earlier.CpuTime, Gen0 - earlier.Gen0, Gen1 - earlier.Gen1, Gen2 - earlier.Gen2,
        Connections - earlier.Connections, Managed);
}
