using Grpc.Net.Client;
using LabMesh.Contracts.Common.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Security.Identity;
using LabMesh.Testing;

namespace LabMesh.ServiceDefaults.Tests.Hosting;

/// <summary>
/// What a replica maps into memory, read from /proc/PID/maps (Linux, as the replicas run) of real replica processes (Requisition calling
/// ServiceRequest through its peer client): after start-up and calls, Grpc.Net.ClientFactory and
/// Microsoft.Extensions.Http are not among it (PeerClients builds the peer clients on their channel; bench/README.md,
/// idle memory). System.Linq.Expressions still is: Dapper's first query loads it (its DapperRow is an
/// IDynamicMetaObjectProvider), though no expression is compiled any more (GrpcActivation).
/// </summary>
public sealed class ReplicaAssembliesTests
{
    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(90);

    private static readonly string[] NotLoaded = ["Grpc.Net.ClientFactory.dll", "Microsoft.Extensions.Http.dll"];

    [Fact]
    public async Task AReplicaAfterStartAndCallsThroughItsPeerClient_MapsNoClientFactory()
    {
        await using var serviceRequest = await Replica.StartAsync("LabMesh.ServiceRequest.dll", new Dictionary<string, string>());
        await using var requisition = await Replica.StartAsync(
            "LabMesh.Requisition.dll", new Dictionary<string, string> { ["LabMesh__Services__ServiceRequest"] = serviceRequest.Address });

        using var channel = GrpcChannel.ForAddress(requisition.Address);
        var client = new RequisitionService.RequisitionServiceClient(TestCaller.InvokerAs(channel, "assemblies-team", CallerRole.Clinician));
        // Placing the order creates its service requests on the ServiceRequest replica: a call through the peer client.
        var created = await CreateAsync(client, "assemblies", place: true);
        Assert.NotEmpty(created.Requisition.ServiceRequests);
        var status = await client.GetRequisitionStatusAsync(new GetRequisitionStatusRequest { Id = created.Requisition.Id }, deadline: DateTime.UtcNow.AddSeconds(30));
        Assert.Equal(created.Requisition.Id, status.Status.Id);

        // The reading is of the right thing: the replica that called its peer maps grpc-dotnet's client.
        Assert.Contains("Grpc.Net.Client.dll", await requisition.MappedAssembliesAsync());
        foreach (var replica in new[] { requisition, serviceRequest })
        {
            Assert.Empty(NotLoaded.Intersect(await replica.MappedAssembliesAsync()));
        }
    }

    /// <summary>
    /// A replica's working directory is its content root and holds its SQLite files (<c>data/</c>): with configuration
    /// reload on, the host kept an inotify watch on it and every directory under it, and each database write woke the
    /// watcher (HostArgs.WithoutConfigReload). After start and a write, the process holds no inotify watch at all.
    /// </summary>
    [Fact]
    public async Task AReplicaAfterStartAndAWrite_WatchesNoDirectory()
    {
        await using var serviceRequest = await Replica.StartAsync("LabMesh.ServiceRequest.dll", new Dictionary<string, string>());
        await using var requisition = await Replica.StartAsync(
            "LabMesh.Requisition.dll", new Dictionary<string, string> { ["LabMesh__Services__ServiceRequest"] = serviceRequest.Address });

        using var channel = GrpcChannel.ForAddress(requisition.Address);
        var client = new RequisitionService.RequisitionServiceClient(TestCaller.InvokerAs(channel, "watches-team", CallerRole.Clinician));
        await CreateAsync(client, "watches", place: false);

        Assert.True(Directory.Exists(Path.Combine(requisition.WorkingDirectory, "data")), "the replica's SQLite directory is under its working directory");
        Assert.Equal(0, requisition.InotifyWatches());
        Assert.Equal(0, serviceRequest.InotifyWatches());
    }

    private static async Task<CreateRequisitionResponse> CreateAsync(RequisitionService.RequisitionServiceClient client, string prefix, bool place)
    {
        var request = new CreateRequisitionRequest
        {
            RequestId = prefix + "-1",
            Patient = new Patient { Id = prefix + "-patient", GivenName = "Test", FamilyName = "Patient", BirthDate = "1970-01-01", Sex = "unknown" },
            OrderingProvider = new Provider { Id = prefix + "-provider", Name = "Test Provider" },
            Lab = "LabCorp",
            Modality = TestModality.Testkit,
            Place = place,
        };
        request.Tests.Add(new OrderedTest { Code = "BMP", PartnerId = prefix + "-partner" });
        return await client.CreateRequisitionAsync(request, deadline: DateTime.UtcNow.AddSeconds(30));
    }

    /// <summary>A service replica process (Development, its SQLite files in a directory of its own) trusting the test's signing key.</summary>
    private sealed class Replica : IAsyncDisposable
    {
        private readonly DirectoryInfo _directory;
        private readonly ChildProcess _process;

        private Replica(DirectoryInfo directory, ChildProcess process, int port)
        {
            _directory = directory;
            _process = process;
            Address = $"http://127.0.0.1:{port}";
        }

        public string Address { get; }

        public string WorkingDirectory => _directory.FullName;

        /// <summary>The inotify watches the process holds, over all its inotify descriptors (one fdinfo line per watch).</summary>
        public int InotifyWatches() =>
            new DirectoryInfo($"/proc/{_process.Id}/fd").GetFileSystemInfos()
                .Where(fd => fd.LinkTarget == "anon_inode:inotify")
                .Sum(fd => File.ReadLines($"/proc/{_process.Id}/fdinfo/{fd.Name}").Count(l => l.StartsWith("inotify wd:", StringComparison.Ordinal)));

        public static async Task<Replica> StartAsync(string assembly, IReadOnlyDictionary<string, string> settings)
        {
            var port = FreePort.Next();
            var directory = Directory.CreateTempSubdirectory("labmesh-assemblies-");
            var environment = new Dictionary<string, string>(settings)
            {
                ["ASPNETCORE_ENVIRONMENT"] = "Development",
                ["DOTNET_ENVIRONMENT"] = "Development",
            };
            foreach (var (key, value) in TestCaller.HostSettings)
            {
                environment[key.Replace(":", "__", StringComparison.Ordinal)] = value!;
            }

            var process = ChildProcess.Start("dotnet", [Path.Combine(AppContext.BaseDirectory, assembly), "--urls", $"http://127.0.0.1:{port}"], directory.FullName, environment);
            var replica = new Replica(directory, process, port);
            try
            {
                await process.WaitForLineAsync(l => l.Contains("Now listening on", StringComparison.Ordinal), StartTimeout, assembly + " listening");
            }
            catch
            {
                await replica.DisposeAsync();
                throw;
            }

            return replica;
        }

        /// <summary>The file names of the .dll files the process maps.</summary>
        public async Task<IReadOnlySet<string>> MappedAssembliesAsync() =>
            (await File.ReadAllLinesAsync($"/proc/{_process.Id}/maps"))
                .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(fields => fields.Length >= 6 && fields[^1].EndsWith(".dll", StringComparison.Ordinal))
                .Select(fields => Path.GetFileName(fields[^1]))
                .ToHashSet(StringComparer.Ordinal);

        public async ValueTask DisposeAsync()
        {
            await _process.DisposeAsync();
            _directory.Delete(recursive: true);
        }
    }
}
