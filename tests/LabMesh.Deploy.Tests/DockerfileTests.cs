using LabMesh.Messaging.Storage;

namespace LabMesh.Deploy.Tests;

/// <summary>services/&lt;Project&gt;/Dockerfile: built from the repository root, run as a non-root user on a read-only root filesystem.</summary>
public sealed class DockerfileTests
{
    public const int Port = 8080;

    /// <summary>
    /// The images that are a Native AOT executable on the runtime-deps image (issue 22: memory, and a gateway ready without
    /// a JIT to warm): the gateway and every service, as deploy/local runs them (LABMESH_LOCAL_AOT's default).
    /// </summary>
    public static readonly string[] NativeAotProjects = ["LabMesh.Gateway", "LabMesh.ServiceRequest", "LabMesh.Requisition", "LabMesh.ResultsInterpretation", "LabMesh.Notification"];

    public static TheoryData<string> Projects => new(Repository.DeployableProjects);

    /// <summary>Every image compose builds: the services and the gateway.</summary>
    public static TheoryData<string> Images => new([.. Repository.DeployableProjects, Repository.Gateway]);

    [Fact]
    public void DeployableProjects_AreTheFourServices()
    {
        // Guards the discovery the other tests rely on: a rename would otherwise leave them checking nothing.
        Assert.Equal(
            ["LabMesh.Notification", "LabMesh.Requisition", "LabMesh.ResultsInterpretation", "LabMesh.ServiceRequest"],
            Repository.DeployableProjects);
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void Dockerfile_BuildsWithTheSdk_AndRunsOnTheAspNetRuntime_OrNativeOnRuntimeDeps(string project)
    {
        var dockerfile = Load(project);

        Assert.True(dockerfile.Stages.Count >= 2, $"{dockerfile} is not multi-stage.");
        var build = dockerfile.Stages[0];
        Assert.StartsWith("mcr.microsoft.com/dotnet/sdk:10.0", build.Image, StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(build.Name), $"{dockerfile}: the build stage has no name to copy from.");
        if (NativeAotProjects.Contains(project))
        {
            // The SDK's Native AOT image (the SDK and the C toolchain the ILCompiler links with) and the runtime-deps
            // image of the same Ubuntu, so the executable runs against the glibc and OpenSSL it was linked with.
            Assert.Equal("mcr.microsoft.com/dotnet/sdk:10.0-noble-aot", build.Image);
            Assert.Equal("mcr.microsoft.com/dotnet/runtime-deps:10.0-noble", dockerfile.Final.Image);
        }
        else
        {
            Assert.Equal("mcr.microsoft.com/dotnet/aspnet:10.0", dockerfile.Final.Image);
        }

        Assert.Contains(dockerfile.Final.All("COPY"), copy => copy.Words.Contains($"--from={build.Name}"));
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void Dockerfile_RunsAsANumericNonRootUser(string project)
    {
        var dockerfile = Load(project);

        var uid = UserId(dockerfile);

        Assert.True(uid > 0, $"{dockerfile} runs as root.");
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void Dockerfile_PublishesItsOwnProject_AndStartsItsAssembly(string project)
    {
        var dockerfile = Load(project);
        var publish = dockerfile.Stages[0].All("RUN").Select(run => run.Words).SingleOrDefault(words => words.Take(2).SequenceEqual(["dotnet", "publish"]));

        Assert.NotNull(publish);
        var published = publish.Skip(2).Single(word => word.EndsWith(".csproj", StringComparison.Ordinal));
        Assert.Equal(Repository.ProjectFile(project), published);
        Assert.True(Repository.Exists(published), $"{dockerfile} publishes {published}, which does not exist.");
        var output = publish[publish.ToList().IndexOf("-o") + 1];
        Assert.Contains(dockerfile.Final.All("COPY"), copy => copy.Words.Contains(output) || copy.Words.Contains(output + "/"));
        var entrypoint = Assert.Single(dockerfile.Final.All("ENTRYPOINT")).Words;
        if (NativeAotProjects.Contains(project))
        {
            // Published for the image's platform as a Native AOT executable, restored for the same (publish --no-restore
            // needs the runtime's ILCompiler package in the assets), and that executable is what starts.
            Assert.True(publish.Contains("-p:PublishAot=true"), $"{dockerfile}: {string.Join(' ', publish)} is not a Native AOT publish.");
            Assert.Equal("linux-x64", publish[publish.ToList().IndexOf("-r") + 1]);
            Assert.DoesNotContain("-p:UseAppHost=false", publish);
            if (publish.Contains("--no-restore"))
            {
                var restore = dockerfile.Stages[0].All("RUN").Select(run => run.Words).Single(words => words.Take(2).SequenceEqual(["dotnet", "restore"]));
                Assert.Contains("-p:PublishAot=true", restore);
                Assert.Equal("linux-x64", restore[restore.ToList().IndexOf("-r") + 1]);
            }

            Assert.Equal([$"{dockerfile.Final.WorkingDirectory.TrimEnd('/')}/{Repository.AssemblyName(published)}"], entrypoint);
        }
        else
        {
            Assert.DoesNotContain(publish, word => word.StartsWith("-p:PublishAot", StringComparison.Ordinal));
            Assert.Equal(["dotnet", Repository.AssemblyName(published) + ".dll"], entrypoint);
        }
    }

    [Theory]
    [MemberData(nameof(Images))]
    public void Dockerfile_CopiesEverythingTheBuildReads(string project)
    {
        var dockerfile = Load(project);
        var copied = dockerfile.Stages[0].All("COPY")
            .Select(copy => copy.Words.Where(w => !w.StartsWith("--", StringComparison.Ordinal)).ToList())
            .SelectMany(words => words.Take(words.Count - 1))
            .Select(source => source.TrimEnd('/'))
            .ToList();

        foreach (var source in copied)
        {
            Assert.True(Repository.Exists(source), $"{dockerfile} copies {source}, which is not in the repository.");
        }

        bool Covered(string path) => copied.Any(source => path == source || path.StartsWith(source + "/", StringComparison.Ordinal));
        var needed = new List<string> { "global.json", ".editorconfig" };
        foreach (var projectFile in Repository.ProjectClosure(Repository.ProjectFile(project)))
        {
            needed.Add(Path.GetDirectoryName(projectFile)!.Replace('\\', '/'));
            needed.AddRange(Repository.ProtobufDirectories(projectFile));
            // Directory.Build.props and the like, at the root and in services/: a build without them silently differs.
            needed.AddRange(Repository.DirectoryImports(projectFile));
        }

        Assert.All(needed, path => Assert.True(Covered(path), $"{dockerfile} does not copy {path}, which the build of {project} reads."));
    }

    [Theory]
    [MemberData(nameof(Projects))]
    public void Dockerfile_ListensOn8080_AndExposesIt(string project)
    {
        var dockerfile = Load(project);

        Assert.Equal([$"{Port}"], dockerfile.Final.All("EXPOSE").SelectMany(e => e.Words));
        var urls = dockerfile.Final.Environment["ASPNETCORE_URLS"];
        Assert.Equal(Port, new Uri(urls.Replace("+", "localhost", StringComparison.Ordinal)).Port);
        Assert.StartsWith("http://", urls, StringComparison.Ordinal); // h2c: the services speak plaintext HTTP/2 only
    }

    [Theory]
    [MemberData(nameof(Projects))]
    public void Dockerfile_DeclaresEveryPathTheServiceWrites_AsAVolume(string project)
    {
        var dockerfile = Load(project);
        var volumes = dockerfile.Final.All("VOLUME").SelectMany(v => v.Words).ToList();

        // The SQLite files (when no PostgreSQL is configured) and the runtime's diagnostics socket.
        Assert.Contains("/tmp", volumes);
        Assert.Contains(DataDirectory(dockerfile), volumes);
    }

    [Fact]
    public void DockerIgnore_KeepsBuildOutputOut_AndLetsTheSourcesIn()
    {
        var patterns = Repository.Read(".dockerignore").Split('\n')
            .Select(line => line.Trim())
            .Where(line => line.Length > 0 && !line.StartsWith('#'))
            .Select(line => line.TrimEnd('/'))
            .ToList();

        // Host obj/ folders hold project.assets.json with host paths, which would break the image's restore.
        Assert.Contains("**/bin", patterns);
        Assert.Contains("**/obj", patterns);
        foreach (var project in Repository.DeployableProjects.Append(Repository.Gateway))
        {
            var dockerfile = Load(project);
            foreach (var source in dockerfile.Stages[0].All("COPY").SelectMany(c => c.Words).Where(w => Repository.Exists(w.TrimEnd('/'))))
            {
                var top = source.TrimEnd('/').Split('/')[0];
                Assert.DoesNotContain(top, patterns);
                Assert.DoesNotContain(source.TrimEnd('/'), patterns);
            }
        }
    }

    internal static Dockerfile Load(string project)
    {
        var path = Dockerfile.PathFor(project);
        Assert.True(Repository.Exists(path), $"{project} has no {path}.");
        return Dockerfile.Load(path);
    }

    /// <summary>The numeric user id of the final stage's last USER (a name would fail: Kubernetes cannot check it is not root).</summary>
    internal static int UserId(Dockerfile dockerfile)
    {
        var user = dockerfile.Final.All("USER").LastOrDefault()?.Words.Single();
        Assert.False(user is null, $"{dockerfile} has no USER: it would run as root.");
        Assert.Matches(@"^\d+(:\d+)?$", user);
        return int.Parse(user.Split(':')[0], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Where the service puts SQLite files: StorageOptions' default, relative to the image's working directory.</summary>
    internal static string DataDirectory(Dockerfile dockerfile)
    {
        var configured = dockerfile.Final.Environment.GetValueOrDefault("LabMesh__Storage__DataDirectory") ?? new StorageOptions().DataDirectory;
        return configured.StartsWith('/') ? configured : $"{dockerfile.Final.WorkingDirectory.TrimEnd('/')}/{configured}";
    }
}
