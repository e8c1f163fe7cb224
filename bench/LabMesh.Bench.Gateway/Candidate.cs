using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using LabMesh.Testing;

namespace LabMesh.Bench.Gateway;

/// <summary>
/// <c>--candidate</c>: a second gateway in front of the topology's two Requisition replicas, measured against the
/// topology's own gateway (services/LabMesh.Gateway) in the same rounds. <c>nginx</c> is the gateway deploy/local ran
/// before (Debian's nginx, its generated configuration as it was: grpc_pass round-robin, keepalive 256, buffered
/// access log), the "before" of issue 22 item 4; <c>gateway:N=V,...</c> is another LabMesh.Gateway with that
/// environment (a runtime setting to compare, e.g. <c>DOTNET_gcServer=0</c>); a URL is one already running.
/// </summary>
internal sealed class Candidate : IAsyncDisposable
{
    private readonly Process? _process;

    private Candidate(string name, string address, Process? process)
    {
        Name = name;
        Address = address;
        _process = process;
    }

    /// <summary>How the comparison names it (e.g. "nginx").</summary>
    public string Name { get; }

    public string Address { get; }

    public int? Pid => _process?.Id;

    public static async Task<Candidate> StartAsync(string spec, LocalTopology topology, int port, CancellationToken cancellationToken)
    {
        if (spec.StartsWith("http://", StringComparison.Ordinal))
        {
            return new Candidate("candidate", spec, null);
        }

        var replicas = LocalTopology.Replicas.Select(r => new Uri(topology.Address("requisition", r)).Authority).ToList();
        ProcessStartInfo start;
        string name;
        if (spec == "nginx")
        {
            name = "nginx";
            var directory = Path.Combine(topology.State, "candidate-nginx");
            Directory.CreateDirectory(Path.Combine(directory, "temp"));
            var config = Path.Combine(directory, "nginx.conf");
            await File.WriteAllTextAsync(config, NginxConfig(directory, port, replicas), cancellationToken);
            start = new ProcessStartInfo("nginx") { ArgumentList = { "-p", directory, "-c", config, "-e", Path.Combine(directory, "error.log") } };
        }
        else if (spec == "gateway" || spec.StartsWith("gateway:", StringComparison.Ordinal))
        {
            // Not "gateway": that is the topology's own in the comparison and in the CPU readings.
            name = spec == "gateway" ? "gateway (a second one)" : spec;
            var dll = Path.Combine(LocalTopology.Root, "services", "LabMesh.Gateway", "bin", "Release", "net10.0", "LabMesh.Gateway.dll");
            start = new ProcessStartInfo("dotnet") { ArgumentList = { dll } };
            foreach (var arg in new[]
            {
                "--Kestrel:Endpoints:Grpc:Url", F("http://127.0.0.1:{0}", port), "--Kestrel:Endpoints:Rest:Url", F("http://127.0.0.1:{0}", port + 1),
            })
            {
                start.ArgumentList.Add(arg);
            }

            for (var i = 0; i < replicas.Count; i++)
            {
                start.ArgumentList.Add(F("--ReverseProxy:Clusters:requisition:Destinations:requisition-{0}:Address", i + 1));
                start.ArgumentList.Add("http://" + replicas[i]);
            }

            start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
            foreach (var pair in spec.Length > "gateway:".Length ? spec["gateway:".Length..].Split(',', StringSplitOptions.RemoveEmptyEntries) : [])
            {
                var (key, value) = pair.Split('=', 2) is [var k, var v] ? (k, v) : throw new ArgumentException($"--candidate gateway: takes NAME=VALUE pairs, not '{pair}'.");
                start.Environment[key] = value;
            }
        }
        else
        {
            throw new ArgumentException($"--candidate takes nginx, gateway[:N=V,...] or an http:// URL, not '{spec}'.");
        }

        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        var process = Process.Start(start) ?? throw new InvalidOperationException($"{name} did not start.");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var candidate = new Candidate(name, F("http://127.0.0.1:{0}", port), process);
        var waited = Stopwatch.StartNew();
        while (!Listening(port))
        {
            if (process.HasExited || waited.Elapsed > TimeSpan.FromSeconds(30))
            {
                await candidate.DisposeAsync();
                throw new BenchFailedException($"the candidate {name} is not listening on {port} (exit code {(process.HasExited ? process.ExitCode : "none")})");
            }

            await Task.Delay(100, cancellationToken);
        }

        return candidate;
    }

    // deploy/local/lib.sh's nginx configuration before the YARP gateway, for the Requisition upstream alone.
    private static string NginxConfig(string directory, int port, IEnumerable<string> replicas) => F("""
        daemon off;
        worker_processes 2;
        pid {0}/nginx.pid;
        error_log {0}/error.log warn;
        worker_rlimit_nofile 16384;
        events {{ worker_connections 8192; }}
        http {{
            access_log {0}/access.log combined buffer=64k flush=1s;
            client_body_temp_path {0}/temp/client_body;
            proxy_temp_path {0}/temp/proxy;
            fastcgi_temp_path {0}/temp/fastcgi;
            uwsgi_temp_path {0}/temp/uwsgi;
            scgi_temp_path {0}/temp/scgi;
            upstream requisition {{
        {2}
                keepalive 256;
                keepalive_requests 1000000;
            }}
            grpc_connect_timeout 2s;
            grpc_next_upstream error timeout;
            grpc_next_upstream_tries 2;
            server {{
                listen 127.0.0.1:{1} http2;
                keepalive_requests 1000000;
                client_max_body_size 0;
                grpc_read_timeout 1h;
                location /labmesh.requisition.v1. {{ grpc_pass grpc://requisition; }}
            }}
        }}
        """, directory, port, string.Join("\n", replicas.Select(r => F("        server {0} max_fails=1 fail_timeout=5s;", r))));

    private static bool Listening(int port)
    {
        try
        {
            using var client = new TcpClient();
            client.Connect("127.0.0.1", port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static string F(string format, params object?[] args) => string.Format(CultureInfo.InvariantCulture, format, args);

    public async ValueTask DisposeAsync()
    {
        if (_process is { HasExited: false })
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process?.Dispose();
    }
}
