using System.Globalization;
using Grpc.Net.Client;
using LabMesh.Bench.Load;
using LabMesh.Bench.Servers;

namespace LabMesh.Bench;

/// <summary>
/// A scenario with two servers of its own, started fresh for it and stopped after it:
/// gzip (a LabMesh server that compresses responses against one that does not), large-unary (a bare
/// endpoint that answers with large messages), many-streams (Kestrel's stream limit raised to the
/// number of calls), grpcio (a Python grpcio server). It checks both paths once and primes them
/// before anything is measured, as the runner does for the shared servers.
/// </summary>
internal sealed class OwnServerScenario : IAsyncDisposable
{
    private const string Gzip = "gzip";

    private readonly string _scenario;
    private readonly BenchOptions _options;
    private readonly Runner _runner;
    private readonly Payloads _payloads;
    private readonly ServerProcess _subject;
    private readonly ServerProcess _baseline;

    private OwnServerScenario(string scenario, BenchOptions options, Runner runner, Payloads payloads, ServerProcess subject, ServerProcess baseline)
    {
        _scenario = scenario;
        _options = options;
        _runner = runner;
        _payloads = payloads;
        _subject = subject;
        _baseline = baseline;
    }

    private bool Streaming => _scenario is "gzip-stream" or "many-streams" or "grpcio-stream";

    private bool IsGzip => _scenario.StartsWith("gzip-", StringComparison.Ordinal);

    private bool IsGrpcio => _scenario.StartsWith("grpcio-", StringComparison.Ordinal);

    /// <summary>Calls in flight: every one of <c>--streams</c> at once for many-streams.</summary>
    private int Concurrency => _scenario == "many-streams" ? _options.Streams : _options.Concurrency;

    /// <summary>Connections: many-streams is about one connection carrying all its calls.</summary>
    private int Connections => _scenario == "many-streams" ? 1 : _options.Connections;

    private int MessagesPerCall => Streaming ? _payloads.StreamMessages : 1;

    public static async Task<OwnServerScenario> StartAsync(string scenario, BenchOptions options, Payloads shared, Runner runner)
    {
        var payloads = scenario switch
        {
            "gzip-unary" or "gzip-stream" => new Payloads(options.GzipSize, options.GzipSize, options.StreamMessages),
            "large-unary" => new Payloads(options.LargeSize, options.LargeSize, 1),
            _ => shared,
        };
        var labMesh = ServerSettings.For(ServerKind.LabMesh, payloads, options);
        var bare = ServerSettings.For(ServerKind.Bare, payloads, options);
        var (subjectSettings, baselineSettings) = scenario switch
        {
            "gzip-unary" or "gzip-stream" => (labMesh with { ResponseCompression = Gzip }, labMesh),
            "large-unary" => (labMesh, bare),
            "many-streams" => (labMesh with { MaxStreams = options.Streams }, bare with { MaxStreams = options.Streams }),
            "grpcio-unary" or "grpcio-stream" => (labMesh, ServerSettings.For(ServerKind.Grpcio, payloads, options)),
            _ => throw new ArgumentException($"Scenario '{scenario}' has no servers of its own."),
        };
        if (baselineSettings.Kind == ServerKind.Grpcio && !File.Exists(options.PythonPath))
        {
            throw new InvalidOperationException(
                $"{options.PythonPath} not found: the grpcio scenarios need Debian's python3 with grpcio " +
                "(apt-get install python3-grpcio python3-protobuf), or --python PATH to an interpreter that has them.");
        }

        var subject = await ServerProcess.StartAsync(subjectSettings, options);
        ServerProcess baseline;
        try
        {
            baseline = await ServerProcess.StartAsync(baselineSettings, options);
        }
        catch
        {
            await subject.DisposeAsync();
            throw;
        }
        var own = new OwnServerScenario(scenario, options, runner, payloads, subject, baseline);
        own.PrintSetup(subjectSettings, baselineSettings);
        await own.CheckAsync();
        await own.PrimeAsync();
        return own;
    }

    /// <summary>Measures one side: the measured one (<paramref name="subject"/>) or the baseline.</summary>
    public async Task<Measurement> MeasureAsync(bool subject)
    {
        var server = subject ? _subject : _baseline;
        if (IsGrpcio)
        {
            return await _runner.MeasureH2LoadAsync(
                _scenario, subject ? "h2load -> LabMesh server" : "h2load -> grpcio server", subject, server,
                Streaming ? server.StreamUri : server.UnaryUri, MessagesPerCall, _payloads.FramedRequest);
        }

        var gaps = _scenario == "many-streams" ? new MessageGaps(Concurrency) : null;
        var before = await server.GetStatsAsync();
        Measurement measurement;
        var (target, client, calls) = OpenLoad(subject, Concurrency, Connections, gaps);
        await using (client)
        {
            await OpenConnectionsAsync(calls);
            measurement = await _runner.MeasureClosedLoopAsync(_scenario, target, subject, server, calls, Streaming, gaps);
        }
        if (gaps is not null)
        {
            var opened = (await server.GetStatsAsync()).Since(before).Connections;
            measurement = measurement with
            {
                Detail = string.Format(CultureInfo.InvariantCulture, "{0}; {1} calls at once over {2} connection(s)", measurement.Detail, Concurrency, opened),
            };
        }
        if (IsGzip)
        {
            var (sent, received) = await MeasureWireBytesAsync(subject);
            measurement = measurement with { WireSentPerOp = sent, WireReceivedPerOp = received };
        }
        return measurement;
    }

    public async ValueTask DisposeAsync()
    {
        await _subject.DisposeAsync();
        await _baseline.DisposeAsync();
    }

    private void PrintSetup(ServerSettings subject, ServerSettings baseline)
    {
        static string Describe(ServerSettings s) => s.Kind switch
        {
            ServerKind.Grpcio => "grpcio (Python grpc.aio)",
            ServerKind.Bare => $"bare Kestrel (answers {s.ResponseSize} B payloads)",
            _ => s.ResponseCompression is null ? "LabMesh" : $"LabMesh, responses {s.ResponseCompression}",
        };
        Console.WriteLine($"  servers: {Describe(subject)} {_subject.Address}; {Describe(baseline)} {_baseline.Address}");
        var streams = subject.MaxStreams == ServerSettings.KestrelDefaultMaxStreams
            ? $"Kestrel's default of {ServerSettings.KestrelDefaultMaxStreams}"
            : $"{subject.MaxStreams} on both (Kestrel's default is {ServerSettings.KestrelDefaultMaxStreams})";
        Console.WriteLine(string.Format(
            CultureInfo.InvariantCulture,
            "  load: {0} calls in flight over {1} connection(s); request {2} B, response {3} B{4}; HTTP/2 max concurrent streams per connection: {5}",
            Concurrency, Connections, _payloads.Request.Payload.Length, _payloads.Response.Payload.Length,
            Streaming ? $", {_payloads.StreamMessages} msgs per stream" : "",
            IsGrpcio ? "LabMesh " + streams + ", grpcio's default (unlimited)" : streams));
    }

    /// <summary>One call through each side's client, so a broken path shows before any measuring.</summary>
    private async Task CheckAsync()
    {
        foreach (var subject in new[] { true, false })
        {
            var (target, client, calls) = OpenLoad(subject, 1, 1, null);
            await using (client)
            {
                try
                {
                    using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                    await calls[0]().WaitAsync(timeout.Token);
                    Console.WriteLine($"  ok    {target}");
                }
                catch (Exception ex)
                {
                    Console.WriteLine($"  FAIL  {target}: {ex.GetType().Name}: {ex.Message}");
                }
            }
        }
    }

    /// <summary>Load on both paths before measuring, so that neither fresh server is measured on unoptimized code.</summary>
    private async Task PrimeAsync()
    {
        if (_options.PrimeSeconds <= 0)
        {
            return;
        }
        foreach (var subject in new[] { true, false })
        {
            var (_, client, calls) = OpenLoad(subject, Concurrency, Connections, null);
            await using (client)
            {
                await OpenConnectionsAsync(calls);
                await ClosedLoop.RunAsync(calls, TimeSpan.Zero, TimeSpan.FromSeconds(_options.PrimeSeconds));
            }
        }
    }

    /// <summary>
    /// One call on each connection of a fresh client before the load starts. Until a connection has the
    /// server's SETTINGS, SocketsHttpHandler assumes 100 concurrent streams on it and, with
    /// EnableMultipleHttp2Connections, opens another connection for the 101st call: a burst of
    /// 1,000 calls on a fresh client would otherwise spread over several connections.
    /// </summary>
    private async Task OpenConnectionsAsync(IReadOnlyList<BenchCall> calls)
    {
        for (var i = 0; i < Math.Min(Connections, calls.Count); i++)
        {
            await calls[i]();
        }
    }

    /// <summary>
    /// One side's .NET client and its calls. For grpcio (measured with h2load) this is the LabMesh
    /// client to either server, which checks grpc-status where h2load does not, and primes.
    /// </summary>
    private (string Target, IAsyncDisposable Client, IReadOnlyList<BenchCall> Calls) OpenLoad(bool subject, int concurrency, int connections, MessageGaps? gaps)
    {
        var server = subject ? _subject : _baseline;
        if (IsGzip || IsGrpcio || subject)
        {
            var client = new LabMeshClientLoad(server.Address, connections, ConfigureChannel(subject));
            var target = (IsGzip, IsGrpcio) switch
            {
                (true, _) => subject ? "LabMesh client+server, gzip" : "LabMesh client+server, identity",
                (_, true) => subject ? "LabMesh client -> LabMesh server" : "LabMesh client -> grpcio server",
                _ => "LabMesh client -> LabMesh server",
            };
            var calls = Streaming
                ? client.ServerStream(_payloads.Request, concurrency, gaps)
                : client.Unary(_payloads.Request, concurrency, _payloads.Response.Payload.Length);
            return (target, client, calls);
        }
        var raw = new RawHttpLoad(connections);
        return ("HttpClient -> bare Kestrel", raw, raw.Calls(Streaming ? server.StreamUri : server.UnaryUri, _payloads.FramedRequest, concurrency, MessagesPerCall, gaps));
    }

    /// <summary>The gzip side's channel compresses its requests (and so asks for gzip responses); every other channel is left at the defaults.</summary>
    private Action<GrpcChannelOptions>? ConfigureChannel(bool subject) =>
        IsGzip && subject ? options => options.CompressionAlgorithm = Gzip : null;

    /// <summary>
    /// Bytes on the wire per operation, both directions, from a short pass outside the timed window
    /// on a counting connection: one call first (connection preface, SETTINGS, HPACK's first headers),
    /// then the calls that are counted.
    /// </summary>
    private async Task<(double Sent, double Received)> MeasureWireBytesAsync(bool subject)
    {
        var counter = new WireCounter();
        var configure = ConfigureChannel(subject);
        await using var client = new LabMeshClientLoad((subject ? _subject : _baseline).Address, 1, options =>
        {
            configure?.Invoke(options);
            options.HttpHandler = counter.CreateHandler();
            options.DisposeHttpHandler = true;
        });
        var call = (Streaming
            ? client.ServerStream(_payloads.Request, 1)
            : client.Unary(_payloads.Request, 1, _payloads.Response.Payload.Length))[0];
        await call();
        counter.Reset();
        long ops = 0;
        for (var i = 0; i < (Streaming ? 10 : 100); i++)
        {
            ops += await call();
        }
        return (counter.Sent / (double)ops, counter.Received / (double)ops);
    }
}
