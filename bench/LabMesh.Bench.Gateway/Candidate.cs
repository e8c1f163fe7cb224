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
/// environment (a runtime setting to compare, e.g. <c>DOTNET_gcServer=0</c>), <c>gateway@PATH[:N=V,...]</c> another build of it:
/// a <c>.dll</c> is run with <c>dotnet</c> (main before a change, a ReadyToRun publish), anything else is an executable
/// run as it is (a Native AOT publish); a URL is one already running.
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

    /// <summary>How long it took to listen and to be ready, as the bench prints it.</summary>
    public string Started { get; private set; } = "already running";

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
        else if (spec == "gateway" || spec.StartsWith("gateway:", StringComparison.Ordinal) || spec.StartsWith("gateway@", StringComparison.Ordinal))
        {
            // Not "gateway": that is the topology's own in the comparison and in the CPU readings.
            name = spec == "gateway" ? "gateway (a second one)" : spec;
            // gateway@PATH: another build (e.g. main before a change, a ReadyToRun or a Native AOT publish), else this tree's.
            var colon = spec.IndexOf(':', StringComparison.Ordinal);
            var path = spec.StartsWith("gateway@", StringComparison.Ordinal)
                ? Path.GetFullPath(spec["gateway@".Length..(colon < 0 ? spec.Length : colon)])
                : Path.Combine(LocalTopology.Root, "services", "LabMesh.Gateway", "bin", "Release", "net10.0", "LabMesh.Gateway.dll");
            if (!File.Exists(path))
            {
                throw new ArgumentException($"--candidate {spec}: {path} does not exist.");
            }

            spec = colon < 0 ? "gateway" : "gateway" + spec[colon..];
            // An assembly runs on the shared runtime; a native executable (Native AOT) is its own runtime.
            start = path.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? new ProcessStartInfo("dotnet") { ArgumentList = { path } } : new ProcessStartInfo(path);
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
            throw new ArgumentException($"--candidate takes nginx, gateway[@PATH][:N=V,...] or an http:// URL, not '{spec}'.");
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

        var listening = waited.Elapsed;
        // A LabMesh.Gateway is measured as deployed: from when its readiness says 200 (after its warm-up); a build
        // without a readiness endpoint (404: main before the warm-up) or nginx is ready when it listens, as deploy/local
        // took it then.
        var readiness = spec.StartsWith("gateway", StringComparison.Ordinal) ? await ReadyAsync(port + 1, waited, cancellationToken) : "no readiness endpoint";
        candidate.Started = F("listening {0:0.0} s after start, ready {1:0.0} s after start ({2})", listening.TotalSeconds, waited.Elapsed.TotalSeconds, readiness);
        return candidate;
    }

    /// <summary>GET /healthz/ready on the REST listener until it is not 503, for 60 s at most.</summary>
    private static async Task<string> ReadyAsync(int restPort, Stopwatch waited, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        while (true)
        {
            using var answer = await http.GetAsync(F("http://127.0.0.1:{0}/healthz/ready", restPort), cancellationToken);
            var body = (await answer.Content.ReadAsStringAsync(cancellationToken)).Trim();
            if (answer.StatusCode == System.Net.HttpStatusCode.NotFound)
            {
                return "no readiness endpoint: ready when listening";
            }

            if (answer.IsSuccessStatusCode)
            {
                return body;
            }

            if (waited.Elapsed > TimeSpan.FromSeconds(60))
            {
                throw new BenchFailedException($"the candidate is not ready 60 s after start: {(int)answer.StatusCode} {body}");
            }

            await Task.Delay(100, cancellationToken);
        }
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
