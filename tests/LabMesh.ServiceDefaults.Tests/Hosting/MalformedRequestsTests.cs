using Google.Protobuf;
using Grpc.Core;
using LabMesh.Contracts.Notification.V1;
using LabMesh.Contracts.Requisition.V1;
using LabMesh.Security.Identity;
using LabMesh.Testing;

namespace LabMesh.ServiceDefaults.Tests.Hosting;

/// <summary>
/// Requests that are not well-formed gRPC messages get INVALID_ARGUMENT with a BadRequest, never
/// grpc-dotnet's UNKNOWN (bytes that do not parse) or INTERNAL (broken framing), and no error log.
/// Each test fails without MalformedRequests (the statuses are upstream's then).
/// </summary>
public sealed class MalformedRequestsTests(AllInOneHost mesh) : IClassFixture<AllInOneHost>
{
    private const string Unary = "/labmesh.requisition.v1.RequisitionService/GetRequisition";
    private const string ServerStreaming = "/labmesh.notification.v1.NotificationService/Subscribe";
    private static readonly byte[] Garbage = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F];

    public static TheoryData<string, string> Broken => new()
    {
        { "bytes that do not parse", Unary },
        { "bytes that do not parse", ServerStreaming },
        { "a frame cut short", Unary },
        { "a frame cut short", ServerStreaming },
        { "a header cut short", Unary },
        { "no message", Unary },
        { "no message", ServerStreaming },
        { "two messages", Unary },
        { "two messages", ServerStreaming },
        { "compressed flag 2", Unary },
        { "compressed without grpc-encoding", Unary },
    };

    [Theory]
    [MemberData(nameof(Broken))]
    public async Task BrokenRequest_IsInvalidArgumentWithBadRequest_AndNoErrorIsLogged(string what, string path)
    {
        var good = path == Unary
            ? new GetRequisitionRequest { Id = "req-none" }.ToByteArray()
            : new SubscribeRequest().ToByteArray();
        var body = what switch
        {
            "bytes that do not parse" => RawHttp2.Frame(Garbage),
            "a frame cut short" => RawHttp2.Frame(good)[..^2],
            "a header cut short" => [0, 0, 0],
            "no message" => [],
            "two messages" => [.. RawHttp2.Frame(good), .. RawHttp2.Frame(good)],
            "compressed flag 2" => RawHttp2.Frame(good, flag: 2),
            "compressed without grpc-encoding" => RawHttp2.Frame(good, flag: 1),
            _ => throw new ArgumentOutOfRangeException(nameof(what)),
        };
        using var raw = new RawHttp2();

        var response = await raw.PostAsync(mesh.Host.Address + path, body, Bearer());

        Assert.Equal((int)StatusCode.InvalidArgument, response.GrpcStatus);
        var violation = Assert.Single(response.BadRequest!.FieldViolations);
        Assert.Equal(response.GrpcMessage is null ? null : Uri.UnescapeDataString(response.GrpcMessage), violation.Description);
        mesh.Host.Logs.AssertNoErrors();
    }

    [Fact]
    public async Task DeclaredLengthOverTheLimit_IsResourceExhausted()
    {
        using var raw = new RawHttp2();

        var response = await raw.PostAsync(mesh.Host.Address + Unary, [0, 0x7F, 0xFF, 0xFF, 0xFF], Bearer());

        Assert.Equal((int)StatusCode.ResourceExhausted, response.GrpcStatus);
        mesh.Host.Logs.AssertNoErrors();
    }

    [Fact]
    public async Task WellFormedRequest_InSeveralPieces_IsAnswered()
    {
        // The framing check follows bytes across reads; a message split over DATA frames must still pass.
        using var channel = mesh.Host.CreateChannel();
        var client = new RequisitionService.RequisitionServiceClient(TestCaller.Invoker(channel, "team-raw"));
        var large = new GetRequisitionRequest { Id = new string('r', 60_000) };

        var error = await Assert.ThrowsAsync<RpcException>(() => client.GetRequisitionAsync(large, deadline: DateTime.UtcNow.AddSeconds(20)).ResponseAsync);

        // The id is too long: the service's own validation answered, so the message reached the handler whole.
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal("id", Assert.Single(error.GetDetail<Google.Rpc.BadRequest>()!.FieldViolations).Field);
        mesh.Host.Logs.AssertNoErrors();
    }

    private static (string, string)[] Bearer() =>
        [(AuthorizationInterceptor.AuthorizationHeader, "Bearer " + TestCaller.Token("team-raw", CallerRole.Clinician))];
}

/// <summary>The 4 MiB message limits, both ways, and gzip-compressed requests, on grpc-dotnet as LabMesh configures it.</summary>
public sealed class MessageLimitsAndCompressionTests(AllInOneHost mesh) : IClassFixture<AllInOneHost>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task GzipCompressedRequest_IsReadAndAnswered()
    {
        var message = new GetRequisitionRequest { Id = "req-gzip" }.ToByteArray();
        using var compressed = new MemoryStream();
        await using (var gzip = new System.IO.Compression.GZipStream(compressed, System.IO.Compression.CompressionLevel.Fastest, leaveOpen: true))
        {
            await gzip.WriteAsync(message);
        }

        using var raw = new RawHttp2();
        var response = await raw.PostAsync(mesh.Host.Address + "/labmesh.requisition.v1.RequisitionService/GetRequisition",
            RawHttp2.Frame(compressed.ToArray(), flag: 1),
            [(AuthorizationInterceptor.AuthorizationHeader, "Bearer " + TestCaller.Token("team-gzip", CallerRole.Clinician)), ("grpc-encoding", "gzip")]);

        // NOT_FOUND: the message was decompressed, parsed and looked up.
        Assert.Equal((int)StatusCode.NotFound, response.GrpcStatus);
        mesh.Host.Logs.AssertNoErrors();
    }

    [Fact]
    public async Task RequestOverFourMebibytes_IsResourceExhausted_FromTheServer_AndFromALabMeshClientBeforeSending()
    {
        var oversize = new GetRequisitionRequest { Id = new string('x', (4 * 1024 * 1024) + 16) };

        // A client without a send limit: the server refuses it.
        using var plain = Grpc.Net.Client.GrpcChannel.ForAddress(mesh.Host.Address);
        var server = await Assert.ThrowsAsync<RpcException>(() => new RequisitionService.RequisitionServiceClient(TestCaller.Invoker(plain, "team-big"))
            .GetRequisitionAsync(oversize, deadline: DateTime.UtcNow + Timeout).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, server.StatusCode);

        // A LabMesh channel refuses to send it at all.
        using var channel = mesh.Host.CreateChannel();
        var client = await Assert.ThrowsAsync<RpcException>(() => new RequisitionService.RequisitionServiceClient(TestCaller.Invoker(channel, "team-big"))
            .GetRequisitionAsync(oversize, deadline: DateTime.UtcNow + Timeout).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, client.StatusCode);
        mesh.Host.Logs.AssertNoErrors();
    }
}
