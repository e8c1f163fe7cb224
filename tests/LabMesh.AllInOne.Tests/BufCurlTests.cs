using System.Text.Json;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using LabMesh.Security.Identity;
using LabMesh.Testing;
using NotificationV1 = LabMesh.Contracts.Notification.V1;
using RequisitionV1 = LabMesh.Contracts.Requisition.V1;
using ResultsV1 = LabMesh.Contracts.Results.V1;
using ServiceRequestV1 = LabMesh.Contracts.ServiceRequest.V1;

namespace LabMesh.AllInOne.Tests;

/// <summary>
/// What README.md's "Try it with grpcurl" promises, proved with <c>buf curl</c> (npm @bufbuild/buf), a client
/// nobody here wrote, through server reflection only: no proto file is given to it. Plaintext HTTP/2.
/// </summary>
/// <remarks>
/// buf has no <c>describe</c> (ReflectionClientTests describes through Grpc.Reflection's client), and
/// <c>buf curl</c> prints an error's details as type and base64 whatever the server serves: its error printer
/// decodes only the types compiled into buf. So the decoded-detail tests do what grpcurl does inside, with
/// buf: fetch the file of the detail's type by reflection (<c>buf curl</c> on
/// <c>grpc.reflection.v1.ServerReflection</c>, grpcurl's <c>file_containing_symbol</c> request), then decode
/// the detail with that file alone (<c>buf convert</c>).
/// </remarks>
public sealed class BufCurlTests(AllInOneHost mesh) : IClassFixture<AllInOneHost>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static readonly string[] LabMeshServices =
    [
        RequisitionV1.RequisitionService.Descriptor.FullName,
        ServiceRequestV1.ServiceRequestService.Descriptor.FullName,
        ResultsV1.ResultsInterpretationService.Descriptor.FullName,
        NotificationV1.NotificationService.Descriptor.FullName,
    ];

    [Theory]
    [InlineData("grpc-v1")]
    [InlineData("grpc-v1alpha")]
    public async Task ListServices_NamesTheFourServicesHealthAndReflection_WithoutAToken(string reflectProtocol)
    {
        var listed = await CurlAsync("--reflect-protocol", reflectProtocol, "--list-services", mesh.Address);

        Assert.True(listed.ExitCode == 0, listed.ToString());
        string[] expected =
        [
            .. LabMeshServices,
            "labmesh.audit.v1.AuditService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "grpc.reflection.v1alpha.ServerReflection",
        ];
        Assert.Equal(expected.Order(StringComparer.Ordinal), Lines(listed.Stdout).Order(StringComparer.Ordinal));
        mesh.Host.Logs.AssertNoErrors();
    }

    [Fact]
    public async Task ListMethods_NamesEveryMethodOfTheFourServices()
    {
        var listed = await CurlAsync("--list-methods", mesh.Address);

        Assert.True(listed.ExitCode == 0, listed.ToString());
        var methods = Lines(listed.Stdout).ToHashSet(StringComparer.Ordinal);
        ServiceDescriptor[] services =
        [
            RequisitionV1.RequisitionService.Descriptor,
            ServiceRequestV1.ServiceRequestService.Descriptor,
            ResultsV1.ResultsInterpretationService.Descriptor,
            NotificationV1.NotificationService.Descriptor,
        ];
        var expected = services.SelectMany(s => s.Methods).Select(m => $"{m.Service.FullName}/{m.Name}").ToList();
        Assert.All(expected, m => Assert.Contains(m, methods));
        Assert.Contains("grpc.health.v1.Health/Check", methods);
        mesh.Host.Logs.AssertNoErrors();
    }

    [Fact]
    public async Task JsonCall_InterpretMarkers_AnswersInJson()
    {
        // The README's example. The token goes with the call only: buf's reflection requests carry no header.
        var called = await CurlAsync(
            "-H", "authorization: Bearer " + TestCaller.Token("demo", CallerRole.Clinician),
            "-d", """{"results": [{"name": "Potassium", "slug": "potassium", "unit": "mEq/L", "numeric_value": 6.4, "min_range_value": 3.5, "max_range_value": 5.1}]}""",
            $"{mesh.Address}/labmesh.results.v1.ResultsInterpretationService/InterpretMarkers");

        Assert.True(called.ExitCode == 0, called.ToString());
        using var response = JsonDocument.Parse(called.Stdout);
        Assert.Equal("INTERPRETATION_CRITICAL", response.RootElement.GetProperty("interpretation").GetString());
        var marker = response.RootElement.GetProperty("results")[0];
        Assert.Equal("potassium", marker.GetProperty("slug").GetString());
        Assert.True(marker.GetProperty("reading").GetProperty("isAboveMaxRange").GetBoolean());
        mesh.Host.Logs.AssertNoErrors();
    }

    [Fact]
    public async Task InvalidArgument_ItsBadRequestDecodes_WithTheFileReflectionServes()
    {
        var (type, decoded) = await ErrorDetailAsync(
            "labmesh.results.v1.ResultsInterpretationService/InterpretMarkers",
            """{"results": [{"name": "", "numeric_value": 6.4}]}""",
            expectedCode: 3);

        Assert.Equal("google.rpc.BadRequest", type);
        var violation = decoded.RootElement.GetProperty("fieldViolations")[0];
        Assert.Equal("results[0].name", violation.GetProperty("field").GetString());
        Assert.Contains("is required", violation.GetProperty("description").GetString(), StringComparison.Ordinal);
        mesh.Host.Logs.AssertNoErrors();
    }

    [Fact]
    public async Task NotFound_ItsResourceInfoDecodes_WithTheFileReflectionServes()
    {
        var (type, decoded) = await ErrorDetailAsync(
            "labmesh.requisition.v1.RequisitionService/GetRequisition",
            """{"id": "no-such-requisition"}""",
            expectedCode: 5);

        Assert.Equal("google.rpc.ResourceInfo", type);
        Assert.Equal("requisition", decoded.RootElement.GetProperty("resourceType").GetString());
        Assert.Equal("no-such-requisition", decoded.RootElement.GetProperty("resourceName").GetString());
        mesh.Host.Logs.AssertNoErrors();
    }

    /// <summary>
    /// Calls <paramref name="method"/> as a clinician of team demo, expects it to fail with
    /// <paramref name="expectedCode"/> (buf exits with the code times 8) and one detail, fetches the file
    /// that declares the detail's type by reflection and decodes the detail with it (<c>buf convert</c>).
    /// </summary>
    private async Task<(string Type, JsonDocument Decoded)> ErrorDetailAsync(string method, string data, int expectedCode)
    {
        var failed = await CurlAsync("-H", "authorization: Bearer " + TestCaller.Token("demo", CallerRole.Clinician), "-d", data, $"{mesh.Address}/{method}");
        Assert.True(failed.ExitCode == expectedCode * 8, failed.ToString());
        using var error = JsonDocument.Parse(failed.Stderr);
        var detail = Assert.Single(error.RootElement.GetProperty("details").EnumerateArray());
        var type = detail.GetProperty("type").GetString()!;

        var reflected = await CurlAsync(
            "-d", JsonSerializer.Serialize(new Dictionary<string, string> { ["file_containing_symbol"] = type }),
            $"{mesh.Address}/grpc.reflection.v1.ServerReflection/ServerReflectionInfo");
        Assert.True(reflected.ExitCode == 0, reflected.ToString());
        using var answer = JsonDocument.Parse(reflected.Stdout);
        Assert.True(answer.RootElement.TryGetProperty("fileDescriptorResponse", out var files), $"No file for {type}: {reflected.Stdout}");
        var set = new FileDescriptorSet();
        set.File.AddRange(files.GetProperty("fileDescriptorProto").EnumerateArray().Select(f => FileDescriptorProto.Parser.ParseFrom(Base64(f.GetString()!))));

        var scratch = Directory.CreateTempSubdirectory("labmesh-buf-").FullName;
        try
        {
            var schema = Path.Combine(scratch, "reflected.binpb");
            var payload = Path.Combine(scratch, "detail.binpb");
            await File.WriteAllBytesAsync(schema, set.ToByteArray());
            await File.WriteAllBytesAsync(payload, Base64(detail.GetProperty("value").GetString()!));
            var converted = await Buf.RunAsync(Timeout, "convert", schema + "#format=binpb", "--type", type, "--from", payload + "#format=binpb", "--to", "-#format=json");
            Assert.True(converted.ExitCode == 0, converted.ToString());
            return (type, JsonDocument.Parse(converted.Stdout));
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    private static Task<BufResult> CurlAsync(params string[] arguments) =>
        Buf.RunAsync(Timeout, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--timeout", "30s", .. arguments]);

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    /// <summary>Standard base64, padded or not (buf prints error detail values unpadded).</summary>
    private static byte[] Base64(string text) => Convert.FromBase64String(text.PadRight(text.Length + ((4 - (text.Length % 4)) % 4), '='));
}
