using System.Diagnostics;
using System.Text.Json;

namespace LabMesh.Grpc.Tests.Reflection;

/// <summary>
/// Reflection as a third-party client sees it: python/reflection_client.py (Debian's grpcio and protobuf, no
/// generated code) lists, describes and calls a LabMesh server the way grpcurl does.
/// </summary>
public sealed class PythonReflectionClientTests
{
    private const string Python = "/usr/bin/python3";
    private static readonly TimeSpan ProcessTimeout = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData("v1")]
    [InlineData("v1alpha")]
    public async Task List_PrintsEveryService(string api)
    {
        await using var server = await ReflectionServiceTests.StartAsync();

        var result = await RunAsync(server, "--api", api, "list");

        result.AssertSucceeded();
        Assert.Equal(
            new[] { "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection", "labmesh.test.catalog.v1.Catalog" },
            result.Lines);
        Assert.Empty(server.Logs.Errors);
    }

    [Fact]
    public async Task Describe_Service_PrintsItsMethodsWithResolvedTypes()
    {
        await using var server = await ReflectionServiceTests.StartAsync();

        var health = await RunAsync(server, "describe", "grpc.health.v1.Health");
        var catalog = await RunAsync(server, "describe", "labmesh.test.catalog.v1.Catalog");

        health.AssertSucceeded();
        Assert.Equal(
            new[]
            {
                "grpc.health.v1.Health is a service:",
                "service Health {",
                "  rpc Check ( .grpc.health.v1.HealthCheckRequest ) returns ( .grpc.health.v1.HealthCheckResponse );",
                "  rpc Watch ( .grpc.health.v1.HealthCheckRequest ) returns ( stream .grpc.health.v1.HealthCheckResponse );",
                "}",
            },
            health.Lines);
        catalog.AssertSucceeded();
        Assert.Contains("  rpc Ping ( .google.protobuf.Empty ) returns ( .google.protobuf.Empty );", catalog.Lines);
        Assert.Contains("  rpc WatchItems ( .google.protobuf.Empty ) returns ( stream .labmesh.test.catalog.v1.Item );", catalog.Lines);
    }

    [Fact]
    public async Task Describe_NestedMessage_PrintsItsFields()
    {
        await using var server = await ReflectionServiceTests.StartAsync();

        var result = await RunAsync(server, "describe", "labmesh.test.catalog.v1.Item");

        result.AssertSucceeded();
        Assert.Contains("  .labmesh.test.catalog.v1.Item.Kind kind = 3;", result.Lines);
        Assert.Contains("  .google.protobuf.Duration shelf_life = 5;", result.Lines);
    }

    [Fact]
    public async Task Describe_MethodEnumAndField_PrintsWhatTheyAre()
    {
        await using var server = await ReflectionServiceTests.StartAsync();

        var method = await RunAsync(server, "describe", "labmesh.test.catalog.v1.Catalog.WatchItems");
        var enumType = await RunAsync(server, "describe", "grpc.health.v1.HealthCheckResponse.ServingStatus");
        var field = await RunAsync(server, "describe", "labmesh.test.catalog.v1.Item.shelf_life");

        method.AssertSucceeded();
        Assert.Equal("rpc WatchItems ( .google.protobuf.Empty ) returns ( stream .labmesh.test.catalog.v1.Item );", method.Lines[^1]);
        enumType.AssertSucceeded();
        Assert.Contains("  SERVICE_UNKNOWN = 3;", enumType.Lines);
        field.AssertSucceeded();
        Assert.Equal("labmesh.test.catalog.v1.Item.shelf_life is declared in catalog_types.proto", field.Lines.Single());
    }

    [Fact]
    public async Task Call_HealthCheckWithJsonBody_PrintsServing()
    {
        await using var server = await ReflectionServiceTests.StartAsync();

        var result = await RunAsync(server, "call", "grpc.health.v1.Health/Check", """{"service": ""}""");

        result.AssertSucceeded();
        using var json = JsonDocument.Parse(result.StandardOutput);
        Assert.Equal("SERVING", json.RootElement.GetProperty("status").GetString());
        Assert.Empty(server.Logs.Errors);
    }

    [Fact]
    public async Task Call_WithWellKnownTypesInJson_PrintsTheJsonResponse()
    {
        await using var server = await ReflectionServiceTests.StartAsync();

        var result = await RunAsync(
            server, "call", "labmesh.test.catalog.v1.Catalog/GetItem", """{"id": "42", "ifModifiedSince": "2024-05-01T12:00:00Z"}""");

        result.AssertSucceeded();
        using var json = JsonDocument.Parse(result.StandardOutput);
        var item = json.RootElement.GetProperty("item");
        Assert.Equal("42", item.GetProperty("id").GetString());
        Assert.Equal("KIND_BOOK", item.GetProperty("kind").GetString());
        Assert.Equal("86400s", item.GetProperty("shelfLife").GetString());
        Assert.Equal("4200", item.GetProperty("cents").GetString());
        Assert.Equal(13, item.GetProperty("dimensions").GetProperty("widthCm").GetDouble());
        Assert.Equal("AVAILABILITY_SOLD_OUT", json.RootElement.GetProperty("availability").GetString());
    }

    [Fact]
    public async Task Describe_UnknownSymbol_FailsWithNotFound()
    {
        await using var server = await ReflectionServiceTests.StartAsync();

        var result = await RunAsync(server, "describe", "no.such.Service");

        Assert.Equal(1, result.ExitCode);
        Assert.StartsWith("ERROR 5 ", result.StandardError, StringComparison.Ordinal);
    }

    private static async Task<ProcessResult> RunAsync(TestGrpcServer server, params string[] arguments)
    {
        Assert.True(File.Exists(Python), $"{Python} is missing: apt-get install -y python3-grpcio python3-protobuf.");
        var start = new ProcessStartInfo(Python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(FindScript());
        start.ArgumentList.Add($"127.0.0.1:{server.Port}");
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }
        // grpcio honours proxy variables even for loopback; the test talks to its own server directly.
        start.Environment.Remove("http_proxy");
        start.Environment.Remove("https_proxy");
        start.Environment.Remove("HTTP_PROXY");
        start.Environment.Remove("HTTPS_PROXY");
        start.Environment["no_proxy"] = "127.0.0.1,localhost";

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(ProcessTimeout);
        }
        catch (TimeoutException)
        {
            process.Kill(entireProcessTree: true);
            throw;
        }
        return new ProcessResult(process.ExitCode, await stdout.WaitAsync(ProcessTimeout), await stderr.WaitAsync(ProcessTimeout));
    }

    private static string FindScript()
    {
        // The script lives in the test project's source folder: walk up from bin/<configuration>/<tfm>/.
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            var candidate = Path.Combine(directory.FullName, "python", "reflection_client.py");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }
        throw new FileNotFoundException("python/reflection_client.py not found above " + AppContext.BaseDirectory);
    }

    private sealed record ProcessResult(int ExitCode, string StandardOutput, string StandardError)
    {
        public string[] Lines => [.. StandardOutput.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r'))];

        public void AssertSucceeded() =>
            Assert.True(ExitCode == 0, $"reflection_client.py exited with {ExitCode}: {StandardError}");
    }
}
