using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using LabMesh.Testing;
using Xunit.Sdk;

namespace LabMesh.Deploy.Tests;

/// <summary>
/// tools/Aspire.Dashboard/dashboard.sh, the viewer deploy/local and the README use (issue 21): it fetches the
/// dashboard from NuGet, starts it on loopback ports of the test's choosing, and a span sent to each of its
/// OTLP endpoints (gRPC and HTTP) can be read back from it. Bounded by deadlines, polled, never slept on.
/// </summary>
public sealed class DashboardToolTests
{
    private const string Script = "tools/Aspire.Dashboard/dashboard.sh";
    private static readonly TimeSpan FetchTimeout = TimeSpan.FromMinutes(5); // the first restore downloads about 125 MB
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Dashboard_Starts_OnLoopback_AndShowsSpansSentOverOtlpGrpcAndOtlpHttp()
    {
        // Fetched first, under its own (longer) bound, so the start-up bound below measures the start only.
        var path = await RunAsync(Repository.PathOf(Script), ["path"], FetchTimeout);
        Assert.True(File.Exists(path.Trim()), $"dashboard.sh path printed '{path.Trim()}', which is no file.");

        var (ui, grpc, http) = (FreePort.Next(), FreePort.Next(), FreePort.Next());
        var start = new ProcessStartInfo(Repository.PathOf(Script), ["run"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["LABMESH_DASHBOARD_UI_PORT"] = ui.ToString(CultureInfo.InvariantCulture);
        start.Environment["LABMESH_DASHBOARD_OTLP_GRPC_PORT"] = grpc.ToString(CultureInfo.InvariantCulture);
        start.Environment["LABMESH_DASHBOARD_OTLP_HTTP_PORT"] = http.ToString(CultureInfo.InvariantCulture);
        var log = new StringBuilder();
        using var dashboard = new Process { StartInfo = start };
        dashboard.OutputDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        dashboard.ErrorDataReceived += (_, e) => { lock (log) { log.AppendLine(e.Data); } };
        dashboard.Start();
        dashboard.BeginOutputReadLine();
        dashboard.BeginErrorReadLine();
        try
        {
            using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            var deadline = DateTime.UtcNow + StartTimeout;

            // Over OTLP/HTTP (JSON), as soon as it answers.
            var httpTrace = RandomHex(16);
            await Until(deadline, dashboard, log, async () =>
            {
                using var body = new StringContent(OtlpJson(httpTrace, RandomHex(8), "dashboard-test-http"), Encoding.UTF8, "application/json");
                using var response = await client.PostAsync(new Uri($"http://127.0.0.1:{http}/v1/traces"), body);
                return response.StatusCode == HttpStatusCode.OK;
            });

            // Over OTLP/gRPC (h2c, protobuf): the exporter's default protocol and what deploy/local uses.
            var grpcTrace = RandomHex(16);
            using (var request = new HttpRequestMessage(HttpMethod.Post, new Uri($"http://127.0.0.1:{grpc}/opentelemetry.proto.collector.trace.v1.TraceService/Export"))
            {
                Version = HttpVersion.Version20,
                VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                Content = new ByteArrayContent(GrpcFrame(OtlpProtobuf(grpcTrace, RandomHex(8), "dashboard-test-grpc"))),
            })
            {
                request.Content.Headers.ContentType = new("application/grpc");
                request.Headers.TryAddWithoutValidation("te", "trailers");
                using var response = await client.SendAsync(request);
                await response.Content.ReadAsByteArrayAsync();
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
                var status = response.TrailingHeaders.TryGetValues("grpc-status", out var trailer) ? trailer.Single()
                    : response.Headers.TryGetValues("grpc-status", out var header) ? header.Single() : null;
                Assert.Equal("0", status);
            }

            // Both spans can be read back, each under its service name.
            var traces = "";
            await Until(deadline, dashboard, log, async () =>
            {
                traces = await client.GetStringAsync(new Uri($"http://127.0.0.1:{ui}/api/telemetry/traces"));
                return traces.Contains(httpTrace, StringComparison.Ordinal) && traces.Contains(grpcTrace, StringComparison.Ordinal);
            });
            Assert.Contains("dashboard-test-http", traces, StringComparison.Ordinal);
            Assert.Contains("dashboard-test-grpc", traces, StringComparison.Ordinal);

            // Its three ports are on loopback only.
            string text;
            lock (log)
            {
                text = log.ToString();
            }

            foreach (var port in new[] { ui, grpc, http })
            {
                Assert.Contains($"http://127.0.0.1:{port}", text, StringComparison.Ordinal);
            }
        }
        finally
        {
            dashboard.Kill(entireProcessTree: true);
            await dashboard.WaitForExitAsync();
        }
    }

    /// <summary>Polls <paramref name="condition"/> until it holds, failing at the deadline or when the dashboard exits.</summary>
    private static async Task Until(DateTime deadline, Process dashboard, StringBuilder log, Func<Task<bool>> condition)
    {
        Exception? last = null;
        while (true)
        {
            if (dashboard.HasExited)
            {
                throw new XunitException($"dashboard.sh exited ({dashboard.ExitCode}):\n{Snapshot(log)}");
            }

            try
            {
                if (await condition())
                {
                    return;
                }
            }
            catch (HttpRequestException e)
            {
                last = e;
            }
            catch (TaskCanceledException e)
            {
                last = e;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new XunitException($"Not done within {StartTimeout} (last error: {last?.Message}):\n{Snapshot(log)}");
            }

            await Task.Delay(100);
        }
    }

    private static string Snapshot(StringBuilder log)
    {
        lock (log)
        {
            return log.ToString();
        }
    }

    private static async Task<string> RunAsync(string file, string[] arguments, TimeSpan timeout)
    {
        using var process = new Process
        {
            StartInfo = new ProcessStartInfo(file, arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false },
        };
        process.Start();
        using var cancel = new CancellationTokenSource(timeout);
        var output = process.StandardOutput.ReadToEndAsync(cancel.Token);
        var error = process.StandardError.ReadToEndAsync(cancel.Token);
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new XunitException($"{file} {string.Join(' ', arguments)} took longer than {timeout}.");
        }

        return process.ExitCode == 0
            ? await output
            : throw new XunitException($"{file} {string.Join(' ', arguments)} failed ({process.ExitCode}):\n{await error}");
    }

    private static string RandomHex(int bytes) => Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(bytes));

    private static (long Start, long End) Times()
    {
        var start = (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 1000) * 1_000_000;
        return (start, start + 5_000_000);
    }

    /// <summary>An ExportTraceServiceRequest with one span, in OTLP/JSON.</summary>
    private static string OtlpJson(string traceId, string spanId, string service)
    {
        var (start, end) = Times();
        return $$$"""
            {"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"{{{service}}}"}}]},
            "scopeSpans":[{"scope":{"name":"labmesh.deploy.tests"},"spans":[{"traceId":"{{{traceId}}}","spanId":"{{{spanId}}}",
            "name":"probe","kind":2,"startTimeUnixNano":"{{{start}}}","endTimeUnixNano":"{{{end}}}"}]}]}]}
            """;
    }

    /// <summary>
    /// The same request in protobuf (opentelemetry/proto/collector/trace/v1): ExportTraceServiceRequest.resource_spans = 1;
    /// ResourceSpans.resource = 1, scope_spans = 2; Resource.attributes = 1; KeyValue.key = 1, value = 2; AnyValue.string_value = 1;
    /// ScopeSpans.scope = 1, spans = 2; InstrumentationScope.name = 1; Span.trace_id = 1, span_id = 2, name = 5, kind = 6,
    /// start_time_unix_nano = 7, end_time_unix_nano = 8 (fixed64).
    /// </summary>
    private static byte[] OtlpProtobuf(string traceId, string spanId, string service)
    {
        var (start, end) = Times();
        var attribute = Message(Bytes(1, Encoding.UTF8.GetBytes("service.name")), Bytes(2, Bytes(1, Encoding.UTF8.GetBytes(service))));
        var resource = Bytes(1, attribute);
        var span = Message(
            Bytes(1, Convert.FromHexString(traceId)),
            Bytes(2, Convert.FromHexString(spanId)),
            Bytes(5, Encoding.UTF8.GetBytes("probe")),
            [6 << 3, 2], // kind = SERVER (varint)
            Fixed64(7, start),
            Fixed64(8, end));
        var scopeSpans = Message(Bytes(1, Bytes(1, Encoding.UTF8.GetBytes("labmesh.deploy.tests"))), Bytes(2, span));
        return Bytes(1, Message(Bytes(1, resource), Bytes(2, scopeSpans)));
    }

    private static byte[] Message(params byte[][] fields) => [.. fields.SelectMany(f => f)];

    /// <summary>A length-delimited field (wire type 2).</summary>
    private static byte[] Bytes(int field, byte[] value) => [.. Varint((ulong)((field << 3) | 2)), .. Varint((ulong)value.Length), .. value];

    private static byte[] Fixed64(int field, long value)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, value);
        return [.. Varint((ulong)((field << 3) | 1)), .. bytes];
    }

    private static byte[] Varint(ulong value)
    {
        var bytes = new List<byte>();
        do
        {
            var b = (byte)(value & 0x7f);
            value >>= 7;
            bytes.Add(value == 0 ? b : (byte)(b | 0x80));
        }
        while (value != 0);
        return [.. bytes];
    }

    /// <summary>A gRPC message frame: not compressed, 4-byte big-endian length, the message.</summary>
    private static byte[] GrpcFrame(byte[] message)
    {
        var frame = new byte[5 + message.Length];
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(1), message.Length);
        message.CopyTo(frame, 5);
        return frame;
    }
}
