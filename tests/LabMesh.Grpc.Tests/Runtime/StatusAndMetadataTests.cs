using Google.Protobuf;
using Google.Rpc;
using Grpc.Core;
using LabMesh.Grpc.Tests.Echo;
using Status = Grpc.Core.Status;
using StatusCode = Grpc.Core.StatusCode;

namespace LabMesh.Grpc.Tests.Runtime;

public sealed class StatusAndMetadataTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Theory]
    [InlineData(StatusCode.InvalidArgument, "plain message")]
    [InlineData(StatusCode.NotFound, "100% sure: caf\u00e9 \u2603 \t\r\n end")]
    [InlineData(StatusCode.FailedPrecondition, "")]
    [InlineData(StatusCode.Unknown, "%41 is not decoded twice")]
    public async Task Unary_HandlerStatus_ReachesClientWithExactMessage(StatusCode code, string message)
    {
        await using var echo = await EchoServer.StartAsync();
        var ex = await Assert.ThrowsAsync<RpcException>(() =>
            echo.Client.UnaryAsync(new EchoRequest { FailWithCode = (int)code, FailWithMessage = message }).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(code, ex.StatusCode);
        Assert.Equal(message, ex.Status.Detail);
    }

    [Fact]
    public async Task ErrorBeforeAnyMessage_IsTrailersOnly_WithPercentEncodedMessage()
    {
        await using var echo = await EchoServer.StartAsync();
        using var raw = new RawHttp2();
        var request = new EchoRequest { FailWithCode = (int)StatusCode.NotFound, FailWithMessage = "caf\u00e9 100%" };
        var response = await raw.PostAsync(echo.Server.Address + "/labmesh.test.v1.Echo/Unary", RawHttp2.Frame(request.ToByteArray()));
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("5", response.Header("grpc-status"));
        Assert.Equal("caf%C3%A9 100%25", response.Header("grpc-message"));
        Assert.Empty(response.Body);
        Assert.Empty(response.Trailers);
    }

    [Fact]
    public async Task SuccessfulUnary_SendsStatusInTrailers()
    {
        await using var echo = await EchoServer.StartAsync();
        using var raw = new RawHttp2();
        var response = await raw.PostAsync(echo.Server.Address + "/labmesh.test.v1.Echo/Unary", RawHttp2.Frame(new EchoRequest { Text = "x" }.ToByteArray()));
        Assert.Equal("application/grpc", response.ContentType);
        Assert.Null(response.Header("grpc-status"));
        Assert.Equal("0", response.Trailer("grpc-status"));
        var parsed = EchoResponse.Parser.ParseFrom(response.Body.AsSpan(5).ToArray());
        Assert.Equal("x", parsed.Text);
    }

    [Fact]
    public async Task RichErrorDetails_RoundTripInStatusDetailsBin()
    {
        await using var server = await TestGrpcServer.StartAsync(null, app => Microsoft.AspNetCore.Builder.GrpcEndpointRouteBuilderExtensions.MapGrpcService<DetailedErrorService>(app));
        using var channel = server.CreateChannel();
        var client = new Echo.Echo.EchoClient(channel);
        var ex = await Assert.ThrowsAsync<RpcException>(() => client.UnaryAsync(new EchoRequest()).ResponseAsync.WaitAsync(Timeout));
        Assert.Equal(StatusCode.InvalidArgument, ex.StatusCode);
        var bytes = ex.Trailers.GetValueBytes("grpc-status-details-bin");
        Assert.NotNull(bytes);
        var details = Google.Rpc.Status.Parser.ParseFrom(bytes);
        Assert.Equal((int)StatusCode.InvalidArgument, details.Code);
        var badRequest = details.Details.Single().Unpack<BadRequest>();
        Assert.Equal("patient.birth_date", badRequest.FieldViolations.Single().Field);
    }

    [Fact]
    public async Task Metadata_AsciiAndBinary_TravelBothWays()
    {
        await using var echo = await EchoServer.StartAsync();
        var binary = new byte[] { 0, 1, 2, 250, 255 };
        var headers = new Metadata
        {
            { "x-echo-initial", "initial-value" },
            { "x-echo-trailing-bin", binary },
            { "x-plain", "a b c" },
            { "x-multi", "one" },
            { "x-multi", "two" },
        };
        var call = echo.Client.UnaryAsync(new EchoRequest { Text = "m" }, headers);
        var responseHeaders = await call.ResponseHeadersAsync.WaitAsync(Timeout);
        await call.ResponseAsync.WaitAsync(Timeout);

        Assert.Equal("initial-value", responseHeaders.GetValue("x-echo-initial"));
        Assert.Equal(binary, call.GetTrailers().GetValueBytes("x-echo-trailing-bin"));
        var seen = echo.Probe.LastRequestHeaders!;
        Assert.Equal("a b c", seen.GetValue("x-plain"));
        Assert.Equal(binary, seen.GetValueBytes("x-echo-trailing-bin"));
        // HTTP/2 clients may join repeated ASCII values with ", " (RFC 9110 5.3); order is kept either way.
        Assert.Equal("one, two", string.Join(", ", seen.GetAll("x-multi").Select(e => e.Value)));
        Assert.Equal(["x-echo-initial", "x-echo-trailing-bin", "x-multi", "x-plain"], seen.Select(e => e.Key).Distinct().Order());
    }

    [Fact]
    public async Task Metadata_TrailersOnlyError_CarriesCustomTrailers()
    {
        await using var echo = await EchoServer.StartAsync();
        var headers = new Metadata { { "x-echo-trailing-bin", new byte[] { 9, 8, 7 } } };
        var call = echo.Client.ServerStream(new EchoRequest { Count = 0, FailWithCode = (int)StatusCode.Aborted }, headers);
        var ex = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(Timeout));
        Assert.Equal(StatusCode.Aborted, ex.StatusCode);
        Assert.Equal(new byte[] { 9, 8, 7 }, ex.Trailers.GetValueBytes("x-echo-trailing-bin"));
    }

    [Fact]
    public void Metadata_RejectsInvalidKeysAndValues()
    {
        var metadata = new Metadata();
        Assert.Throws<ArgumentException>(() => metadata.Add("bad key", "v"));
        Assert.Throws<ArgumentException>(() => metadata.Add("x-bin", "text for a binary key"));
        Assert.Throws<ArgumentException>(() => metadata.Add("x-text", new byte[] { 1 }));
        Assert.Throws<ArgumentException>(() => metadata.Add("x-text", "line\nbreak"));
        metadata.Add("X-Upper", "v");
        Assert.Equal("x-upper", metadata.Single().Key);
    }

    private sealed class DetailedErrorService : Echo.Echo.EchoBase
    {
        public override Task<EchoResponse> Unary(EchoRequest request, ServerCallContext context)
        {
            var status = new Google.Rpc.Status
            {
                Code = (int)StatusCode.InvalidArgument,
                Message = "birth date is in the future",
                Details =
                {
                    Google.Protobuf.WellKnownTypes.Any.Pack(new BadRequest
                    {
                        FieldViolations = { new BadRequest.Types.FieldViolation { Field = "patient.birth_date", Description = "must not be in the future" } },
                    }),
                },
            };
            throw new RpcException(new Status(StatusCode.InvalidArgument, status.Message),
                new Metadata { { "grpc-status-details-bin", status.ToByteArray() } });
        }
    }
}
