using Grpc.Health.V1;
using Grpc.Net.Client;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Contracts.Results.V1;
using LabMesh.Testing;

namespace LabMesh.ResultsInterpretation.Tests;

/// <summary>
/// The ResultsInterpretation service as its Native AOT executable (published by deploy/local's lib.sh, <c>publish_aot</c>,
/// into artifacts/aot when a source is newer; tools/test.sh publishes it before the tests), a child process on its own
/// loopback ports (gRPC h2c and REST), with SQLite, calling ServiceRequest and Requisition hosted in this process on
/// theirs, as deployed.
/// </summary>
public sealed class NativeAotResults : IAsyncLifetime
{
    public const string Service = "resultsinterpretation";

    // A first publish on a loaded 2-core machine takes minutes; a current executable is not published again.
    private static readonly TimeSpan PublishTimeout = TimeSpan.FromMinutes(20);
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    private MeshService? _serviceRequests;
    private MeshService? _requisitions;
    private ChildProcess? _process;
    private GrpcChannel? _channel;
    private GrpcChannel? _requisitionChannel;

    /// <summary>The executable that runs (lib.sh's <c>aot_executable</c>).</summary>
    public string Executable { get; private set; } = "";

    public ChildProcess Process => _process ?? throw new InvalidOperationException("The executable has not started.");

    public string Address { get; private set; } = "";

    public string RestAddress { get; private set; } = "";

    public ServiceHost Requisitions => _requisitions?.Host ?? throw new InvalidOperationException("Not started.");

    public GrpcChannel Channel => _channel ?? throw new InvalidOperationException("Not started.");

    public ResultsInterpretationService.ResultsInterpretationServiceClient ResultsClient(string team) => new(TestCaller.Invoker(Channel, team));

    public RequisitionService.RequisitionServiceClient RequisitionClient(string team) =>
        new(TestCaller.Invoker(_requisitionChannel ?? throw new InvalidOperationException("Not started."), team));

    public async Task InitializeAsync()
    {
        Executable = await PublishAsync();

        _serviceRequests = await MeshService.StartAsync(MeshHosts.StartServiceRequestsAsync, await TestSettings.CreateAsync(Backend.Sqlite));
        var requisitionSettings = await TestSettings.CreateAsync(Backend.Sqlite);
        requisitionSettings["LabMesh:Services:ServiceRequest"] = _serviceRequests.Host.Address;
        _requisitions = await MeshService.StartAsync(MeshHosts.StartRequisitionsAsync, requisitionSettings);
        _requisitionChannel = _requisitions.Host.CreateChannel();

        var port = FreePort.Next();
        var restPort = FreePort.Next();
        Address = $"http://127.0.0.1:{port}";
        RestAddress = $"http://127.0.0.1:{restPort}";
        var settings = new Dictionary<string, string?>(TestCaller.HostSettings)
        {
            ["LabMesh:Services:ServiceRequest"] = _serviceRequests.Host.Address,
            ["LabMesh:Services:Requisition"] = _requisitions.Host.Address,
            ["LabMesh:Services:CallTimeout"] = "00:00:05",
        };
        foreach (var (key, value) in await TestSettings.CreateAsync(Backend.Sqlite))
        {
            settings[key] = value;
        }

        // Settings as environment variables (the PEM key has line breaks), as deploy/local gives them.
        var environment = settings.ToDictionary(s => s.Key.Replace(":", "__", StringComparison.Ordinal), s => s.Value ?? "");
        environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        environment["DOTNET_ENVIRONMENT"] = "Production";
        _process = ChildProcess.Start(Executable, ["--urls", Address, "--LabMesh:Rest:Url", RestAddress],
            Directory.CreateTempSubdirectory("labmesh-aot-results-").FullName, environment);
        _channel = GrpcChannel.ForAddress(Address);
        var health = new Health.HealthClient(_channel);
        await Eventually.HoldsAsync(
            async () =>
            {
                if (Process.HasExited)
                {
                    throw new InvalidOperationException($"{Executable} exited:\n{Process.Describe()}");
                }

                try
                {
                    var answer = await health.CheckAsync(new HealthCheckRequest { Service = ResultsInterpretationService.Descriptor.FullName },
                        deadline: DateTime.UtcNow.AddSeconds(2));
                    return answer.Status == HealthCheckResponse.Types.ServingStatus.Serving;
                }
                catch (Grpc.Core.RpcException)
                {
                    return false;
                }
            },
            StartTimeout, () => $"{Executable} to serve on {Address}:\n{Process.Describe()}", TimeSpan.FromMilliseconds(200));
    }

    /// <summary>Publishes the executable when a source is newer (lib.sh, one publish at a time) and says where it is.</summary>
    private static async Task<string> PublishAsync()
    {
        const string Script = """source "$1" && publish_aot "$2" >&2 && aot_executable "$2" """;
        await using var publish = ChildProcess.Start("bash", ["-c", Script, "lib.sh", Path.Combine(Repository.Root, "deploy", "local", "lib.sh"), Service],
            Repository.Root, standardInput: false);
        var exitCode = await publish.WaitForExitAsync(PublishTimeout);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"lib.sh could not publish {Service} as Native AOT (exit {exitCode}):\n{publish.Describe()}");
        }

        var executable = publish.StandardOutput.Last(line => line.Length > 0).Trim();
        return File.Exists(executable) ? executable : throw new FileNotFoundException("lib.sh names no executable", executable);
    }

    public async Task DisposeAsync()
    {
        _channel?.Dispose();
        _requisitionChannel?.Dispose();
        if (_process is not null)
        {
            await _process.DisposeAsync();
        }

        if (_requisitions is not null)
        {
            await _requisitions.DisposeAsync();
        }

        if (_serviceRequests is not null)
        {
            await _serviceRequests.DisposeAsync();
        }
    }
}
